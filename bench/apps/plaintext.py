"""13-byte plaintext response, the TechEmpower "plaintext" shape.

    pounce bench.apps.plaintext:app

Also the app of the keep-alive, pipelined and multi-worker plaintext runs.
"""

from bench.apps._lifespan import lifespan

BODY = b"Hello, world!"
# Built once: the app should cost as little as possible so the server dominates.
START = {
    "type": "http.response.start",
    "status": 200,
    "headers": [
        (b"content-type", b"text/plain"),
        (b"content-length", str(len(BODY)).encode()),
    ],
}
BODY_MSG = {"type": "http.response.body", "body": BODY}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    await send(START)
    await send(BODY_MSG)
