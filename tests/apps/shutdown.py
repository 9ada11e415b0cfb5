"""Raw ASGI app for the graceful-shutdown tests.

  /       "ok" at once
  /slow   ?s=SECONDS&token=T: records "started", sleeps, records "finished",
          answers "done"
"""

import asyncio

from tests.apps._support import query, record, respond


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    q = query(scope)
    if scope["path"] == "/slow":
        token = q.get("token", "")
        record(token, "started")
        await asyncio.sleep(float(q.get("s", "1")))
        record(token, "finished")
        await respond(send, 200, b"done")
    else:
        await respond(send, 200, b"ok")
