"""One large streamed response: 64 MiB in 1024 body messages of 64 KiB.

    pounce bench.apps.stream64m:app

The HTTP/2 bench's large-body workload (bench/h2_bench.py): with
Content-Length, so that a truncated transfer shows; the chunk is built once,
so the server's framing, flow control and copies are what is measured.
"""

from bench.apps._lifespan import lifespan

CHUNK_SIZE = 64 * 1024
CHUNKS = 1024
SIZE = CHUNK_SIZE * CHUNKS
START = {"type": "http.response.start", "status": 200,
         "headers": [(b"content-type", b"application/octet-stream"),
                     (b"content-length", str(SIZE).encode())]}
CHUNK = {"type": "http.response.body", "body": b"z" * CHUNK_SIZE, "more_body": True}
LAST = {"type": "http.response.body", "body": b"z" * CHUNK_SIZE, "more_body": False}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await send(START)
    for _ in range(CHUNKS - 1):
        await send(CHUNK)
    await send(LAST)
