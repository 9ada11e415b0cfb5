"""POST echo: reads the whole request body and sends it back.

    pounce bench.apps.echo10k:app

Driven with a 10 KB POST body (bench/wrk/post10k.lua): measures the
receive() path, request body framing and a 10 KB write.
"""

from bench.apps._lifespan import lifespan


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    chunks = []
    more = True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    body = b"".join(chunks)
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [
            (b"content-type", b"application/octet-stream"),
            (b"content-length", str(len(body)).encode()),
        ],
    })
    await send({"type": "http.response.body", "body": body})
