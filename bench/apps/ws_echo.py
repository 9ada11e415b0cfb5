"""WebSocket apps of bench/ws_bench.py, raw ASGI (no framework cost).

    pounce bench.apps.ws_echo:app
    uvicorn bench.apps.ws_echo:app --ws websockets

Paths of the websocket scope:

    /echo   every message is sent back as it came (text as text, bytes as bytes)
    /sub    a broadcast subscriber: only receives
    /pub    a broadcast publisher: each message it sends is sent to every
            subscriber, one `await send()` after the other (the loop most
            chat/notification apps write)

Any HTTP request gets 200 "ok" (the harness's readiness probe).

The subscriber set is module state, so it is per process: the benchmark runs
one worker.  (In thread mode several workers would share it; a real app would
need a lock or a per-worker hub there.)
"""

from bench.apps._lifespan import lifespan

SUBSCRIBERS = set()


async def _echo(receive, send):
    while True:
        msg = await receive()
        if msg["type"] != "websocket.receive":
            return
        if msg.get("text") is not None:
            await send({"type": "websocket.send", "text": msg["text"]})
        else:
            await send({"type": "websocket.send", "bytes": msg["bytes"]})


async def _subscriber(receive, send):
    SUBSCRIBERS.add(send)
    try:
        while (await receive())["type"] == "websocket.receive":
            pass
    finally:
        SUBSCRIBERS.discard(send)


async def _publisher(receive, send):
    while True:
        msg = await receive()
        if msg["type"] != "websocket.receive":
            return
        out = {"type": "websocket.send", "text": msg.get("text"), "bytes": msg.get("bytes")}
        for sub in list(SUBSCRIBERS):
            try:
                await sub(out)
            except Exception:  # that subscriber went away: drop it, keep the others
                SUBSCRIBERS.discard(sub)


async def app(scope, receive, send):
    kind = scope["type"]
    if kind == "lifespan":
        return await lifespan(receive, send)
    if kind == "http":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"), (b"content-length", b"2")]})
        await send({"type": "http.response.body", "body": b"ok"})
        return
    if (await receive())["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    path = scope["path"]
    if path == "/sub":
        await _subscriber(receive, send)
    elif path == "/pub":
        await _publisher(receive, send)
    else:
        await _echo(receive, send)
