"""Raw ASGI app for the worker and supervisor tests.

/        -> {"worker": id, "pid": pid, "thread": ident, "version": VERSION,
             "loop": "module.Class" of the running event loop}
/slow    -> the same after sleeping ?t= seconds (asyncio.sleep: the worker
            keeps serving other connections meanwhile)
/hold    -> records "start <worker>" under ?token=, then waits (asyncio, the
            worker keeps serving) until the test creates the file
            "<token>.release" in the record directory (at most 30 s)
/block   -> the same, but blocks its worker's event loop while it waits
            (time.sleep), so that worker accepts nothing meanwhile: a
            connection made then can only be served by another worker
/crash   -> takes its worker down (os._exit in a process, SystemExit in a thread)
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from pathlib import Path

from tests.apps._support import query, record, simple_lifespan
from tests.server import RECORD_ENV

VERSION = "v1"
#: Longest a /hold or /block request waits for its release file.
HOLD_MAX = 30.0


def _released(token: str) -> bool:
    directory = os.environ.get(RECORD_ENV)
    return not directory or (Path(directory) / f"{token}.release").exists()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    q = query(scope)
    worker = scope["extensions"]["pounce.worker"]
    if scope["path"] == "/slow":
        await asyncio.sleep(float(q.get("t", "1")))
    if scope["path"] in ("/hold", "/block"):
        token = q.get("token", "")
        record(token, f"start {worker}")
        deadline = time.monotonic() + HOLD_MAX
        while token and not _released(token) and time.monotonic() < deadline:
            if scope["path"] == "/hold":
                await asyncio.sleep(0.01)
            else:
                time.sleep(0.01)
    if scope["path"] == "/crash":
        if threading.current_thread() is threading.main_thread():
            os._exit(17)  # a worker process dies
        raise SystemExit(17)  # a worker thread dies
    loop = type(asyncio.get_running_loop())
    body = json.dumps(
        {
            "worker": worker,
            "pid": os.getpid(),
            "thread": threading.get_ident(),
            "version": VERSION,
            "loop": f"{loop.__module__}.{loop.__qualname__}",
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
