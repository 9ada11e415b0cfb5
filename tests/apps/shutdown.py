"""Raw ASGI app for the graceful-shutdown tests.

  /       "ok" at once
  /slow   ?s=SECONDS&token=T: records "started", sleeps, records "finished",
          answers "done"
"""

import asyncio

from tests.apps._support import query, record, respond, simple_lifespan


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    q = query(scope)
    if scope["path"] == "/slow":
        token = q.get("token", "")
        record(token, "started")
        await asyncio.sleep(float(q.get("s", "1")))
        record(token, "finished")
        await respond(send, 200, b"done")
    else:
        await respond(send, 200, b"ok")
