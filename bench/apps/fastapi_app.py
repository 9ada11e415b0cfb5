"""A FastAPI app: routing, a typed path parameter and a JSON response.

    pounce bench.apps.fastapi_app:app

The benchmark requests /users/42 (validated as int, returned through a
pydantic response model), with other routes ahead of it in the table.
"""

from fastapi import FastAPI
from fastapi.responses import PlainTextResponse
from pydantic import BaseModel

app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)


class User(BaseModel):
    id: int
    name: str
    active: bool
    roles: list[str]


@app.get("/", response_class=PlainTextResponse)
async def index():
    return "Hello, world!"


@app.get("/health")
async def health():
    return {"status": "ok"}


@app.get("/items")
async def list_items():
    return {"items": []}


@app.get("/items/{item_id}")
async def item(item_id: int):
    return {"id": item_id}


@app.get("/users/{user_id}", response_model=User)
async def user(user_id: int):
    return User(id=user_id, name=f"user-{user_id}", active=True, roles=["reader", "writer"])
