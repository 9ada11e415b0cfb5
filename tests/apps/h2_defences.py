"""Raw ASGI app for tests/test_http2_defences.py (hostile HTTP/2 clients).

    /                      200 "ok"
    /big?size=N&chunk=C    N bytes in sends of C bytes (a zero-window reader
                           makes send() wait; records "sent" or "error" under
                           ?token=)
    /wait?token=T&s=S      records "start", waits S seconds or until the
                           client goes away (http.disconnect), then answers
    /echo?token=T          reads the body, recording "body N" per message and
                           "disconnect" if receive() returns http.disconnect;
                           answers with the body
"""

from __future__ import annotations

import asyncio

from tests.apps._support import query, record


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        from tests.apps._support import simple_lifespan

        await simple_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path, q = scope["path"], query(scope)
    token = q.get("token", "")
    if path == "/big":
        size, chunk = int(q.get("size", "1048576")), int(q.get("chunk", "65536"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        piece = b"b" * chunk
        left = size
        try:
            while left > 0:
                n = min(chunk, left)
                left -= n
                await send({"type": "http.response.body",
                            "body": piece if n == chunk else piece[:n], "more_body": left > 0})
        except Exception as e:  # a send() that raises is recorded, not hidden
            record(token, f"error {type(e).__name__}")
            raise
        record(token, "sent")
        return
    if path == "/wait":
        record(token, "start")
        try:
            msg = await asyncio.wait_for(_until_disconnect(receive), float(q.get("s", "2")))
            record(token, msg)
        except asyncio.TimeoutError:
            record(token, "timeout")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", b"4")]})
        await send({"type": "http.response.body", "body": b"wait"})
        return
    if path == "/echo":
        chunks = []
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                record(token, "disconnect")
                return
            chunks.append(msg.get("body", b""))
            record(token, f"body {len(msg.get('body', b''))}")
            if not msg.get("more_body"):
                break
        body = b"".join(chunks)
        record(token, "complete")
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(len(body)).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


async def _until_disconnect(receive) -> str:
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return "disconnect"
