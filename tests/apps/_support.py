"""Small helpers the test apps share (raw ASGI, no framework)."""

from __future__ import annotations

import json
import os
from pathlib import Path
from urllib.parse import parse_qs

from tests.server import RECORD_ENV


def record(token: str, event: str) -> None:
    """Append `event` as a line to the record file `token`, where the test
    (another process) polls for it.  A no-op without a token."""
    directory = os.environ.get(RECORD_ENV)
    if not directory or not token:
        return
    # Tokens come from the test; keep them to one path component.
    safe = "".join(ch for ch in token if ch.isalnum() or ch in "-_.")
    with open(Path(directory) / safe, "a") as f:
        f.write(event + "\n")


async def simple_lifespan(receive, send) -> None:
    """A lifespan that completes startup and shutdown and does nothing else."""
    while True:
        msg = await receive()
        if msg["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif msg["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return


def query(scope) -> dict[str, str]:
    qs = parse_qs(scope.get("query_string", b"").decode("latin-1"))
    return {k: v[0] for k, v in qs.items()}


async def read_body(receive) -> tuple[bytes, list[dict]]:
    """Read the whole request body; also return the messages seen (without
    their bodies) so tests can check more_body framing."""
    chunks, msgs = [], []
    while True:
        msg = await receive()
        msgs.append({k: v for k, v in msg.items() if k != "body"} | {"len": len(msg.get("body", b""))})
        if msg["type"] != "http.request":
            break
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            break
    return b"".join(chunks), msgs


async def respond(send, status: int, body: bytes = b"", headers=(), content_type=b"text/plain"):
    hs = [(b"content-type", content_type), (b"content-length", str(len(body)).encode())]
    hs.extend(headers)
    await send({"type": "http.response.start", "status": status, "headers": hs})
    await send({"type": "http.response.body", "body": body})


async def respond_json(send, obj, status: int = 200):
    await respond(send, status, json.dumps(obj).encode(), content_type=b"application/json")
