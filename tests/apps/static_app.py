"""The app behind the static-file tests (tests/test_static.py).

Every request that reaches it is answered 200 with "app:<path>?<query>", so
a test can tell an app answer from a static one and see which path the app
got.  /slow?ms=N waits N milliseconds first (pipelining: a slow app answer
between static ones must still come back in order).
"""

import asyncio

from tests.apps._support import query, respond, simple_lifespan


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    path = scope["path"]
    if path == "/slow":
        await asyncio.sleep(int(query(scope).get("ms", "0")) / 1000)
    qs = scope["query_string"].decode("latin-1")
    await respond(send, 200, f"app:{path}?{qs}".encode("utf-8", "surrogateescape"),
                  [(b"x-from", b"app")])
