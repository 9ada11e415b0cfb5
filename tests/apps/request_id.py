"""Raw ASGI app for the --request-id tests: it tells what it was given.

HTTP, every path answers JSON {"id": scope["extensions"].get(
"pounce.request_id", None), "has": whether the key is there at all,
"header": the request's X-Request-ID values as the scope carries them,
"worker": extensions["pounce.worker"], "pid"}, except:

  /own      the same, with the app's own "x-request-id: app-own" header
  /stream   the same JSON, sent in two pieces without a Content-Length
  /body     reads the whole body first
  /slow     ?s=SECONDS: sleeps first
  /raise    raises before answering (the server answers 500)

WebSocket: /deny closes before accepting (403), /refuse denies with a
websocket.http.response (409); /own accepts with "X-Request-ID: ws-own";
otherwise accepts, sends the same JSON as text, and closes.
"""

import asyncio
import json
import os

from tests.apps._support import query, read_body, simple_lifespan

RID = b"x-request-id"


def _info(scope) -> bytes:
    ext = scope.get("extensions") or {}
    return json.dumps(
        {
            "id": ext.get("pounce.request_id"),
            "has": "pounce.request_id" in ext,
            "header": [v.decode("latin-1") for k, v in scope["headers"] if k == RID],
            "worker": ext.get("pounce.worker"),
            "pid": os.getpid(),
        }
    ).encode()


async def _websocket(scope, receive, send) -> None:
    await receive()  # websocket.connect
    if scope["path"] == "/deny":
        await send({"type": "websocket.close", "code": 1000})
        return
    if scope["path"] == "/refuse":
        await send({"type": "websocket.http.response.start", "status": 409, "headers": []})
        await send({"type": "websocket.http.response.body", "body": _info(scope)})
        return
    headers = [(b"X-Request-ID", b"ws-own")] if scope["path"] == "/own" else []
    await send({"type": "websocket.accept", "headers": headers})
    await send({"type": "websocket.send", "text": _info(scope).decode()})
    await send({"type": "websocket.close", "code": 1000})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    if scope["type"] == "websocket":
        return await _websocket(scope, receive, send)
    path = scope["path"]
    if path == "/body":
        await read_body(receive)
    elif path == "/slow":
        await asyncio.sleep(float(query(scope).get("s", "1")))
    elif path == "/raise":
        raise RuntimeError("boom (expected by the test)")
    body = _info(scope)
    headers = [(b"content-type", b"application/json")]
    if path == "/own":
        headers.append((RID, b"app-own"))
    if path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body[:5], "more_body": True})
        await send({"type": "http.response.body", "body": body[5:]})
        return
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
