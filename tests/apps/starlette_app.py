"""A Starlette app exercising what real apps use; see test_frameworks.py
for the contract (the FastAPI and Django apps serve the same URLs)."""

import asyncio
import hashlib
from contextlib import asynccontextmanager

from starlette.applications import Starlette
from starlette.background import BackgroundTask
from starlette.responses import JSONResponse, StreamingResponse
from starlette.routing import Route

from tests.apps._support import record


@asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan"}


async def json_get(request):
    return JSONResponse({"hello": "world", "framework": "starlette"})


async def json_post(request):
    data = await request.json()
    return JSONResponse({"received": data, "keys": sorted(data)})


async def item(request):
    return JSONResponse(
        {"item_id": request.path_params["item_id"], "q": request.query_params.get("q")}
    )


async def upload(request):
    async with request.form() as form:
        f = form["file"]
        data = await f.read()
        return JSONResponse(
            {
                "name": form["name"],
                "filename": f.filename,
                "size": len(data),
                "sha256": hashlib.sha256(data).hexdigest(),
            }
        )


async def stream(request):
    async def lines():
        for i in range(10):
            yield f"line {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(lines(), media_type="text/plain")


async def state(request):
    return JSONResponse({"greeting": request.state.greeting})


async def background(request):
    token = request.query_params["token"]
    task = BackgroundTask(record, token, "background-done")
    return JSONResponse({"queued": True}, background=task)


async def wait_disconnect(request):
    token = request.query_params["token"]
    record(token, "started")
    for _ in range(200):
        if await request.is_disconnected():
            record(token, "disconnected")
            break
        await asyncio.sleep(0.05)
    else:
        record(token, "timeout")
    return JSONResponse({})


app = Starlette(
    routes=[
        Route("/json", json_get, methods=["GET"]),
        Route("/json", json_post, methods=["POST"]),
        Route("/items/{item_id:int}", item),
        Route("/upload", upload, methods=["POST"]),
        Route("/stream", stream),
        Route("/state", state),
        Route("/background", background),
        Route("/wait-disconnect", wait_disconnect),
    ],
    lifespan=lifespan,
)
