"""Raw ASGI app for the load-shedding and health-check tests.

Every call of the app (HTTP or WebSocket) except /count adds one to a
per-process counter, so the tests can tell whether the server called the
app at all (run it with --workers 1).

  /count   the counter, as text (not counted itself)
  /slow    ?s=SECONDS: sleeps, then answers "done"
  /body    reads the whole request body, answers its length
  other    "hello"
  websocket: accepts, echoes one text message, closes
"""

import asyncio

from tests.apps._support import query, respond, simple_lifespan

calls = 0


async def app(scope, receive, send):
    global calls
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    if scope["type"] == "http" and scope["path"] == "/count":
        return await respond(send, 200, str(calls).encode())
    calls += 1
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        msg = await receive()
        if msg["type"] == "websocket.receive":
            await send({"type": "websocket.send", "text": msg.get("text") or ""})
            await send({"type": "websocket.close", "code": 1000})
        return
    q = query(scope)
    if scope["path"] == "/slow":
        await asyncio.sleep(float(q.get("s", "1")))
        await respond(send, 200, b"done")
    elif scope["path"] == "/body":
        size = 0
        while True:
            msg = await receive()
            size += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        await respond(send, 200, str(size).encode())
    else:
        await respond(send, 200, b"hello")
