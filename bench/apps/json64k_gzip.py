"""The json64k app behind Starlette's GZipMiddleware: what a uvicorn user
does to get compressed responses (uvicorn itself never compresses).

    uvicorn bench.apps.json64k_gzip:app
    pounce bench.apps.json64k_gzip:app      (Pounce is measured on /raw...)

Same body as bench/apps/json64k.py.  Paths:

    /              json.dumps per request, GZipMiddleware as users write it:
                   compresslevel 9 (Starlette's default)
    /level6        the same at compresslevel 6, Pounce's gzip level
    /static        the body serialised once at import, GZipMiddleware level 9:
                   no app cost, so the compression cost shows
    /static/level6 the same at compresslevel 6
    /raw           json.dumps per request, no middleware (the server compresses)
    /raw/static    the static body, no middleware

minimum_size is Starlette's default (500 bytes); the body is 64 KB either way.
Without Accept-Encoding: gzip the middleware passes the body through: the
identity baseline, middleware overhead included.
"""

import json

from starlette.middleware.gzip import GZipMiddleware

from bench.apps._lifespan import lifespan
from bench.apps.json64k import DATA
from bench.apps.json64k import app as json64k

BODY = json.dumps(DATA, separators=(",", ":")).encode()
_LENGTH = str(len(BODY)).encode()


async def static(scope, receive, send):
    # A new message each time: GZipMiddleware edits the headers list in place.
    await send({"type": "http.response.start", "status": 200,
                "headers": [(b"content-type", b"application/json"), (b"content-length", _LENGTH)]})
    await send({"type": "http.response.body", "body": BODY})


_ROUTES = {
    "/": GZipMiddleware(json64k),
    "/level6": GZipMiddleware(json64k, compresslevel=6),
    "/static": GZipMiddleware(static),
    "/static/level6": GZipMiddleware(static, compresslevel=6),
    "/raw": json64k,
    "/raw/static": static,
}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    return await _ROUTES.get(scope["path"], _ROUTES["/"])(scope, receive, send)
