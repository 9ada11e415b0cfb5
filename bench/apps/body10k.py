"""10 KB response body (10240 bytes), one send: measures the write path.

    pounce bench.apps.body10k:app
"""

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
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    await send(START)
    await send(BODY_MSG)
