"""Raw ASGI app for the deadline, backpressure and connection-limit tests."""

from __future__ import annotations

from tests.apps._support import query, record


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    q = query(scope)
    token = q.get("token", "")
    path = scope["path"]
    if path == "/body":
        # Wait for the whole body; record how it ended.
        total = 0
        while True:
            msg = await receive()
            if msg["type"] == "http.disconnect":
                record(token, f"disconnect after {total}")
                return
            total += len(msg.get("body", b""))
            if not msg.get("more_body"):
                break
        record(token, f"body {total}")
        body = str(total).encode()
    elif path == "/flood":
        # Stream up to `chunks` x `size` bytes (64 KiB) to a client that may never read.
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"x" * int(q.get("size", "65536"))
        n = int(q.get("chunks", "2000"))
        for i in range(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
            record(token, f"sent {i + 1}")
        await send({"type": "http.response.body", "body": b""})
        record(token, "done")
        return
    else:
        body = b"ok"
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [(b"content-type", b"text/plain")],
        }
    )
    await send({"type": "http.response.body", "body": body})
