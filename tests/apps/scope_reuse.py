"""Raw ASGI app for tests/test_scope_reuse.py: answers with what it saw of
its scope and its task as JSON, then changes every mutable part of the
scope, so the next request shows whether anything leaked (the server shares
immutable scope parts between requests: the client tuple, header names,
header (name, value) pairs and path/raw_path it made for an earlier request).

With the query string ``keep`` it also keeps this request's header pairs and
path objects; with ``compare`` it says, per header name, whether the pair it
got is the very object kept (``same``), and the same for path and raw_path.
"""

import asyncio
import json

from tests.apps._support import respond, simple_lifespan

KEPT: dict = {}


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    task = asyncio.current_task()
    ext = scope["extensions"]
    seen = {
        "is_task": isinstance(task, asyncio.Task),
        "task_loop_is_running_loop": task is not None and task.get_loop() is asyncio.get_running_loop(),
        "keys": list(scope),
        "asgi": scope["asgi"],
        "extensions": {k: (v if isinstance(v, (dict, int, str)) else repr(v)) for k, v in ext.items()},
        "client": list(scope["client"]) if scope["client"] else None,
        "client_type": type(scope["client"]).__name__,
        "headers": [[k.decode("latin-1"), v.decode("latin-1")] for k, v in scope["headers"]],
        "path": scope["path"],
        "raw_path": scope["raw_path"].decode("latin-1"),
    }
    if scope["query_string"] == b"keep":
        KEPT.clear()
        KEPT.update(pairs={p[0]: p for p in scope["headers"]}, path=scope["path"], raw=scope["raw_path"])
    elif scope["query_string"] == b"compare":
        seen["same"] = {p[0].decode(): p is KEPT["pairs"].get(p[0]) for p in scope["headers"]}
        seen["same_path"] = scope["path"] is KEPT["path"]
        seen["same_raw_path"] = scope["raw_path"] is KEPT["raw"]
    body = json.dumps(seen).encode()
    scope["asgi"]["leak"] = 1
    for v in ext.values():
        if isinstance(v, dict):
            v["leak"] = 1
    ext["leak"] = 1
    scope["headers"].append((b"leak", b"1"))
    scope["leak"] = 1
    await respond(send, 200, body, content_type=b"application/json")
