"""A streamed response: 100 body messages of 100 bytes, no Content-Length.

    pounce bench.apps.stream100:app

HTTP/1.1 servers send it with chunked transfer coding; measures the cost of
one send() and one chunk on the wire, 100 times per request.
"""

from bench.apps._lifespan import lifespan

CHUNKS = 100
CHUNK = {"type": "http.response.body", "body": b"y" * 100, "more_body": True}
LAST = {"type": "http.response.body", "body": b"", "more_body": False}
START = {"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/plain")]}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await send(START)
    for _ in range(CHUNKS):
        await send(CHUNK)
    await send(LAST)
