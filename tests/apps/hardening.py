"""Raw ASGI app for the hardening tests (corpus, hostile clients, soak).

    any path, default   read the whole body, answer 200 with the body echoed
                        (Content-Length), so a test sees exactly where the
                        server thought the request ended
    /stream?n=K&size=S  K chunks of S bytes, streamed (chunked on HTTP/1.1)
    /big?size=N         one body of N bytes (the never-reading client test)
    /flood?size=S&n=K   stream K chunks of S bytes to a client that may never
                        read (sends after a disconnect are discarded)
"""

from __future__ import annotations

from tests.apps._support import query


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path == "/stream":
        q = query(scope)
        n, size = int(q.get("n", "4")), int(q.get("size", "100"))
        await send({"type": "http.response.start", "status": 200, "headers": []})
        chunk = b"s" * size
        for _ in range(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    if path == "/big":
        size = int(query(scope).get("size", "1048576"))
        body = b"b" * size
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        await send({"type": "http.response.body", "body": body})
        return
    if path == "/flood":
        q = query(scope)
        size, n = int(q.get("size", "65536")), int(q.get("n", "200"))
        chunk = b"f" * size
        await send({"type": "http.response.start", "status": 200, "headers": []})
        # Each send() waits once the per-connection buffer is full.
        for _ in range(n):
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
        return
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] != "http.request":
            return  # disconnected mid-request
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body"):
            break
    body = b"".join(chunks)
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
