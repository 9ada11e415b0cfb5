"""Starlette and FastAPI apps, unchanged, for tests/test_http2.py: the same
routes in both, nothing in them knows about HTTP/2.

  GET  /json              {"hello": "world", "framework": NAME}
  POST /json              echoes a JSON object
  GET  /items/<int>?q=    {"item_id": int, "q": str|null}
  POST /form              urlencoded form -> {"fields": {...}}
  POST /body              raw body -> {"len": n, "sha256": hex}
  GET  /stream            10 lines, a StreamingResponse
  GET  /file?path=        FileResponse (Starlette sends it with pathsend when
                          the scope offers http.response.pathsend)
  GET  /boom              raises: the server answers 500
"""

import hashlib

from fastapi import FastAPI, Request
from starlette.applications import Starlette
from starlette.responses import FileResponse, JSONResponse, StreamingResponse
from starlette.routing import Route


async def _lines():
    for i in range(10):
        yield f"line {i}\n"


def _handlers(name):
    async def json_get(request: Request):
        return JSONResponse({"hello": "world", "framework": name})

    async def json_post(request: Request):
        return JSONResponse({"received": await request.json()})

    async def item(request: Request):
        return JSONResponse({"item_id": int(request.path_params["item_id"]),
                             "q": request.query_params.get("q")})

    async def form(request: Request):
        data = await request.form()
        return JSONResponse({"fields": dict(data)})

    async def body(request: Request):
        data = await request.body()
        return JSONResponse({"len": len(data), "sha256": hashlib.sha256(data).hexdigest()})

    async def stream(request: Request):
        return StreamingResponse(_lines(), media_type="text/plain")

    async def file(request: Request):
        return FileResponse(request.query_params["path"], media_type="application/octet-stream")

    async def boom(request: Request):
        raise RuntimeError("boom over h2")

    return [
        Route("/json", json_get, methods=["GET"]),
        Route("/json", json_post, methods=["POST"]),
        Route("/items/{item_id:int}", item),
        Route("/form", form, methods=["POST"]),
        Route("/body", body, methods=["POST"]),
        Route("/stream", stream),
        Route("/file", file),
        Route("/boom", boom),
    ]


starlette_app = Starlette(routes=_handlers("starlette"))

fastapi_app = FastAPI()


@fastapi_app.get("/json")
async def fa_json_get():
    return {"hello": "world", "framework": "fastapi"}


@fastapi_app.post("/json")
async def fa_json_post(payload: dict):
    return {"received": payload}


@fastapi_app.get("/items/{item_id}")
async def fa_item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@fastapi_app.post("/form")
async def fa_form(request: Request):
    return {"fields": dict(await request.form())}


@fastapi_app.post("/body")
async def fa_body(request: Request):
    data = await request.body()
    return {"len": len(data), "sha256": hashlib.sha256(data).hexdigest()}


@fastapi_app.get("/stream")
async def fa_stream():
    return StreamingResponse(_lines(), media_type="text/plain")


@fastapi_app.get("/file")
async def fa_file(path: str):
    return FileResponse(path, media_type="application/octet-stream")


@fastapi_app.get("/boom")
async def fa_boom():
    raise RuntimeError("boom over h2")
