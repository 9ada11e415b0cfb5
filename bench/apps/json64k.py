"""A 64 KB JSON document serialised with json.dumps on every request.

    pounce bench.apps.json64k:app

The serialisation is app cost, the same on every server; the server's share
is moving a 64 KB body (larger than one socket write on loopback).
"""

import json

from bench.apps._lifespan import lifespan

# 512 records of 128 bytes each: 65,533 bytes (64 KB) once serialised.
_RECORD_PAD = 61
DATA = [
    {"id": i, "name": f"user-{i:05d}", "active": i % 3 != 0, "score": i * 7 % 1000, "note": "n" * _RECORD_PAD}
    for i in range(512)
]
SIZE = len(json.dumps(DATA, separators=(",", ":")).encode())


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    body = json.dumps(DATA, separators=(",", ":")).encode()
    await send({
        "type": "http.response.start",
        "status": 200,
        "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
    })
    await send({"type": "http.response.body", "body": body})
