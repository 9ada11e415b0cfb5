"""A Starlette app: routing, a path parameter and a JSON response.

    pounce bench.apps.starlette_app:app

The benchmark requests /users/42.  Other routes sit before it in the table,
so the router does real matching work, as in a small real service.
"""

from starlette.applications import Starlette
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import Route


async def index(request):
    return PlainTextResponse("Hello, world!")


async def health(request):
    return JSONResponse({"status": "ok"})


async def list_items(request):
    return JSONResponse({"items": []})


async def item(request):
    return JSONResponse({"id": int(request.path_params["item_id"])})


async def user(request):
    user_id = request.path_params["user_id"]
    return JSONResponse({"id": user_id, "name": f"user-{user_id}", "active": True, "roles": ["reader", "writer"]})


app = Starlette(routes=[
    Route("/", index),
    Route("/health", health),
    Route("/items", list_items),
    Route("/items/{item_id:int}", item),
    Route("/users/{user_id:int}", user),
])
