"""10 KB response body (10240 bytes), one send: measures the write path.

    pounce bench.apps.body10k:app
"""

from bench.apps._lifespan import lifespan

BODY = b"x" * 10240
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"application/octet-stream"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
BODY_MSG = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await send(START)
    await send(BODY_MSG)
