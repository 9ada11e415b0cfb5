"""Raw ASGI app for tests/test_metrics.py.

/status/N      -> status N, body "x" (none for 1xx/204/304, as HTTP says)
/hold?token=T  -> records "start" under T, then waits (asyncio) until the
                  test creates "<T>.release" in the record directory (30 s max)
/big?size=N    -> N (default 20 000) bytes of compressible text/plain
/              -> 200 "ok"
WebSocket /echo: accept, echo each message until the client closes.
"""

from __future__ import annotations

import asyncio
import os
import time
from pathlib import Path

from tests.apps._support import query, record, simple_lifespan
from tests.server import RECORD_ENV

BIG = ("pounce metrics " * 1400).encode()[:20000]


def _released(token: str) -> bool:
    directory = os.environ.get(RECORD_ENV)
    return not directory or (Path(directory) / f"{token}.release").exists()


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    if scope["type"] == "websocket":
        await receive()  # websocket.connect
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            out = {"type": "websocket.send"}
            if msg.get("text") is not None:
                out["text"] = msg["text"]
            else:
                out["bytes"] = msg["bytes"]
            await send(out)
    path = scope["path"]
    status, body, ctype = 200, b"ok", b"text/plain"
    if path.startswith("/status/"):
        status = int(path.rsplit("/", 1)[1])
        body = b"" if status in (204, 304) else b"x"
    elif path == "/hold":
        token = query(scope).get("token", "")
        record(token, "start")
        deadline = time.monotonic() + 30
        while token and not _released(token) and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
    elif path == "/big":
        size = int(query(scope).get("size", len(BIG)))
        body = (BIG * (size // len(BIG) + 1))[:size]
    headers = [(b"content-type", ctype)]
    if status not in (204, 304):
        headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
