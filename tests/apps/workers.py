"""Raw ASGI app for the worker and supervisor tests.

/        -> {"worker": id, "pid": pid, "version": VERSION}
/slow    -> the same after sleeping ?t= seconds
/crash   -> takes its worker down (os._exit in a process, SystemExit in a thread)
"""

from __future__ import annotations

import asyncio
import json
import os
import threading

from tests.apps._support import query, simple_lifespan

VERSION = "v1"


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    q = query(scope)
    if scope["path"] == "/slow":
        await asyncio.sleep(float(q.get("t", "1")))
    if scope["path"] == "/crash":
        if threading.current_thread() is threading.main_thread():
            os._exit(17)  # a worker process dies
        raise SystemExit(17)  # a worker thread dies
    body = json.dumps(
        {
            "worker": scope["extensions"]["pounce.worker"],
            "pid": os.getpid(),
            "thread": threading.get_ident(),
            "version": VERSION,
        }
    ).encode()
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"application/json")],
        }
    )
    await send({"type": "http.response.body", "body": body})
