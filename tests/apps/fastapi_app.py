"""A FastAPI app serving the same URLs as starlette_app (see
test_frameworks.py), written the way FastAPI users write them."""

import asyncio
import hashlib
from contextlib import asynccontextmanager

from fastapi import BackgroundTasks, FastAPI, File, Form, Request, UploadFile
from fastapi.responses import StreamingResponse
from pydantic import BaseModel

from tests.apps._support import record


@asynccontextmanager
async def lifespan(app):
    yield {"greeting": "hello from lifespan"}


app = FastAPI(lifespan=lifespan)


class Payload(BaseModel):
    name: str
    count: int
    tags: list[str] = []


@app.get("/json")
async def json_get():
    return {"hello": "world", "framework": "fastapi"}


@app.post("/json")
async def json_post(payload: Payload):
    data = payload.model_dump()
    return {"received": data, "keys": sorted(data)}


@app.get("/items/{item_id}")
async def item(item_id: int, q: str | None = None):
    return {"item_id": item_id, "q": q}


@app.post("/upload")
async def upload(name: str = Form(...), file: UploadFile = File(...)):
    data = await file.read()
    return {
        "name": name,
        "filename": file.filename,
        "size": len(data),
        "sha256": hashlib.sha256(data).hexdigest(),
    }


@app.get("/stream")
async def stream():
    async def lines():
        for i in range(10):
            yield f"line {i}\n"
            await asyncio.sleep(0.01)

    return StreamingResponse(lines(), media_type="text/plain")


@app.get("/state")
async def state(request: Request):
    return {"greeting": request.state.greeting}


@app.get("/background")
async def background(token: str, tasks: BackgroundTasks):
    tasks.add_task(record, token, "background-done")
    return {"queued": True}


@app.get("/wait-disconnect")
async def wait_disconnect(request: Request, token: str):
    record(token, "started")
    for _ in range(200):
        if await request.is_disconnected():
            record(token, "disconnected")
            break
        await asyncio.sleep(0.05)
    else:
        record(token, "timeout")
    return {}
