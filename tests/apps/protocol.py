"""Raw ASGI app for the HTTP/1.1 protocol and limits tests.

Routes (anything else is 404):
  /             "Hello, world!" with Content-Length
  /echo         reads the whole body and sends it back
  /delay        ?ms=N&id=X: sleeps N ms, answers X (pipelining order)
  /close        answers with "Connection: close" set by the app
  /status       ?code=N[&body=1]: bodiless status; body=1 makes the app
                (wrongly) send a body the server must drop
  /noread       answers without reading the request body
  /reject       ?code=N: answers N without reading the body (Expect tests)
  /stream       ?n=N: N chunks, no Content-Length
  /evil         must never be reached: the tests smuggle it in bodies
  /evil-hits    how often /evil was served in this process
"""

import asyncio

from tests.apps._support import query, read_body, respond, simple_lifespan

# Test-only process state: the tests read it back through /evil-hits.
_evil_hits = [0]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    path = scope["path"]
    q = query(scope)
    if path == "/":
        await respond(send, 200, b"Hello, world!")
    elif path == "/echo":
        body, msgs = await read_body(receive)
        await respond(send, 200, body, [(b"x-messages", str(len(msgs)).encode())])
    elif path == "/delay":
        await asyncio.sleep(int(q.get("ms", "0")) / 1000)
        await respond(send, 200, q.get("id", "").encode())
    elif path == "/close":
        await respond(send, 200, b"bye", [(b"connection", b"close")])
    elif path == "/status":
        code = int(q["code"])
        headers = [(b"etag", b'"v1"')] if code == 304 else []
        await send({"type": "http.response.start", "status": code, "headers": headers})
        await send({"type": "http.response.body", "body": b"oops" if q.get("body") else b""})
    elif path == "/noread":
        await respond(send, 200, b"noread")
    elif path == "/reject":
        await respond(send, int(q.get("code", "413")), b"rejected")
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(int(q.get("n", "3"))):
            await send({"type": "http.response.body", "body": b"part%d;" % i, "more_body": True})
        await send({"type": "http.response.body", "body": b""})
    elif path == "/evil":
        _evil_hits[0] += 1
        await respond(send, 200, b"EVIL")
    elif path == "/evil-hits":
        await respond(send, 200, str(_evil_hits[0]).encode())
    else:
        await respond(send, 404, b"not found")
