"""Raw ASGI apps for the lifespan tests.

Each records what happened to the file named by $POUNCE_TEST_LIFESPAN_TOKEN
in the record directory, so the test can check order after the server is
gone.

  app              full lifespan support; puts state in scope["state"]
  failing_app      answers startup with lifespan.startup.failed
  raising_app      raises while handling lifespan.startup
  no_lifespan_app  raises for any non-HTTP scope, as many simple apps do
"""

import asyncio
import os

from tests.apps._support import record, respond, respond_json


def _token() -> str:
    return os.environ.get("POUNCE_TEST_LIFESPAN_TOKEN", "")


async def _http(scope, receive, send):
    record(_token(), f"http {scope['path']}")
    if scope["path"] == "/state":
        state = scope.get("state")
        if state is None:
            await respond_json(send, None)
            return
        snapshot = {k: v for k, v in state.items() if isinstance(v, (str, int, list))}
        # Mutate this request's copy; the next request must not see it.
        state["mutated"] = True
        state["greeting"] = "changed"
        await respond_json(send, snapshot)
    else:
        await respond(send, 200, b"ok")


async def app(scope, receive, send):
    if scope["type"] == "http":
        return await _http(scope, receive, send)
    assert scope["type"] == "lifespan"
    record(_token(), "lifespan-scope")
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            # Slow startup: requests must still wait for it.
            await asyncio.sleep(0.2)
            if "state" in scope:
                scope["state"]["greeting"] = "hello"
                scope["state"]["pid"] = os.getpid()
            record(_token(), "startup")
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            record(_token(), "shutdown")
            await send({"type": "lifespan.shutdown.complete"})
            return


async def failing_app(scope, receive, send):
    if scope["type"] == "http":
        return await _http(scope, receive, send)
    msg = await receive()
    assert msg["type"] == "lifespan.startup"
    await send({"type": "lifespan.startup.failed", "message": f"database unreachable {_token()}"})


async def raising_app(scope, receive, send):
    if scope["type"] == "http":
        return await _http(scope, receive, send)
    msg = await receive()
    assert msg["type"] == "lifespan.startup"
    raise RuntimeError(f"startup exploded {_token()}")


async def no_lifespan_app(scope, receive, send):
    if scope["type"] != "http":
        record(_token(), f"rejected {scope['type']}")
        raise RuntimeError(f"this app only speaks http, not {scope['type']}")
    await _http(scope, receive, send)
