"""13-byte plaintext response, the TechEmpower "plaintext" shape.

    pounce bench.apps.plaintext:app
"""

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
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(BODY_MSG)
