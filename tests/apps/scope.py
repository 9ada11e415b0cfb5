"""Raw ASGI app that answers every HTTP request with its scope as JSON.

bytes become latin-1 strings and tuples become lists, so the test sees
exactly which bytes the server put in the scope.  Lifespan is supported so
the scope's "state" key can be checked too.
"""

import json

from tests.apps._support import respond, simple_lifespan


def _jsonable(value):
    if isinstance(value, bytes):
        return value.decode("latin-1")
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    return repr(value)


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    out = _jsonable(scope)
    # Record the Python types too: a str where bytes belong would pass the
    # JSON comparison otherwise.
    out["_types"] = {k: type(v).__name__ for k, v in scope.items()}
    out["_header_types"] = sorted({f"{type(k).__name__},{type(v).__name__}" for k, v in scope["headers"]})
    await respond(send, 200, json.dumps(out).encode(), content_type=b"application/json")
