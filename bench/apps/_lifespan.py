"""Lifespan handling shared by the raw ASGI bench apps (one copy, not eight)."""


async def lifespan(receive, send):
    """Answer startup and shutdown; return when the server shuts down."""
    while True:
        message = await receive()
        if message["type"] == "lifespan.startup":
            await send({"type": "lifespan.startup.complete"})
        elif message["type"] == "lifespan.shutdown":
            await send({"type": "lifespan.shutdown.complete"})
            return
