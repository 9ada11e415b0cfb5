"""Starlette and FastAPI WebSocket endpoints, written the way their docs
show, for tests/test_websocket.py.  Both apps serve the same paths:

  /ws/echo             text: "echo: " + message; records "disconnect CODE"
                       (from WebSocketDisconnect) under ?token=
  /ws/json             receive_json → {"got": ..., "framework": NAME}
  /ws/bytes            receive_bytes → the bytes reversed
  /ws/items/{item_id}  ?q=  accept with the first offered subprotocol, send
                       {"item_id": int, "q": str|null, "subprotocol": ...},
                       then close 4001 "done"
  /ws/deny             a denial response: 403 "nope" (send_denial_response)
  /ws/reject           close 1008 before accept (the server answers 403)
"""

from __future__ import annotations

from fastapi import FastAPI, WebSocket as FWebSocket, WebSocketDisconnect as FDisconnect
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect

from tests.apps._support import record


def _endpoints(name: str):
    async def echo(ws: WebSocket):
        token = ws.query_params.get("token", "")
        await ws.accept()
        try:
            while True:
                text = await ws.receive_text()
                await ws.send_text("echo: " + text)
        except WebSocketDisconnect as exc:
            record(token, f"disconnect {exc.code}")

    async def json_ep(ws: WebSocket):
        await ws.accept()
        try:
            while True:
                data = await ws.receive_json()
                await ws.send_json({"got": data, "framework": name})
        except WebSocketDisconnect:
            pass

    async def bytes_ep(ws: WebSocket):
        await ws.accept()
        try:
            while True:
                data = await ws.receive_bytes()
                await ws.send_bytes(data[::-1])
        except WebSocketDisconnect:
            pass

    async def deny(ws: WebSocket):
        await ws.send_denial_response(PlainTextResponse("nope", status_code=403))

    async def reject(ws: WebSocket):
        await ws.close(code=1008)

    return echo, json_ep, bytes_ep, deny, reject


# -- Starlette -------------------------------------------------------------------

_s_echo, _s_json, _s_bytes, _s_deny, _s_reject = _endpoints("starlette")


async def _s_items(ws: WebSocket):
    offered = ws.scope.get("subprotocols") or []
    sub = offered[0] if offered else None
    await ws.accept(subprotocol=sub)
    await ws.send_json(
        {"item_id": ws.path_params["item_id"], "q": ws.query_params.get("q"), "subprotocol": sub}
    )
    await ws.close(code=4001, reason="done")


starlette_app = Starlette(
    routes=[
        WebSocketRoute("/ws/echo", _s_echo),
        WebSocketRoute("/ws/json", _s_json),
        WebSocketRoute("/ws/bytes", _s_bytes),
        WebSocketRoute("/ws/items/{item_id:int}", _s_items),
        WebSocketRoute("/ws/deny", _s_deny),
        WebSocketRoute("/ws/reject", _s_reject),
    ]
)

# -- FastAPI ---------------------------------------------------------------------

fastapi_app = FastAPI()
_, _f_json, _f_bytes, _f_deny, _f_reject = _endpoints("fastapi")
fastapi_app.add_api_websocket_route("/ws/json", _f_json)
fastapi_app.add_api_websocket_route("/ws/bytes", _f_bytes)
fastapi_app.add_api_websocket_route("/ws/deny", _f_deny)
fastapi_app.add_api_websocket_route("/ws/reject", _f_reject)


@fastapi_app.websocket("/ws/echo")
async def _f_echo_route(websocket: FWebSocket, token: str = ""):
    await websocket.accept()
    try:
        while True:
            text = await websocket.receive_text()
            await websocket.send_text("echo: " + text)
    except FDisconnect as exc:
        record(token, f"disconnect {exc.code}")


@fastapi_app.websocket("/ws/items/{item_id}")
async def _f_items(websocket: FWebSocket, item_id: int, q: str | None = None):
    offered = websocket.scope.get("subprotocols") or []
    sub = offered[0] if offered else None
    await websocket.accept(subprotocol=sub)
    await websocket.send_json({"item_id": item_id, "q": q, "subprotocol": sub})
    await websocket.close(code=4001, reason="done")
