"""Raw ASGI app of tests/test_http2.py: what HTTP/2 adds to tests/apps/asgi_http.py.

Routes it adds (every other path goes to tests.apps.asgi_http:app, which
has /, /echo, /big, /stream, /wait-disconnect, /pathsend, /raise-before...):

  /scope                the request's scope as JSON (tests.apps.scope)
  /sleep?s=&id=         sleeps s seconds, then answers JSON with id, how many
                        /sleep requests were in flight at its start and at
                        its peak, the task's id and the client address
  /status?code=         an empty response with that status (204, 304)
  /upload               reads the body in the messages the server gives,
                        answers their count, total length and sha256
  /chunks?n=&size=&delay_ms=  n body messages of size bytes each, a pause
                        between them (a streamed response)
  /record-client?token=&i=  records scope["client"], scope["http_version"]
                        and i (one JSON line per request) and answers "ok"
  /conn-headers?case=   answers with Connection, Keep-Alive and X-Kept fields
                        (as written, or lower-cased with case=lower)
  /page?token=          the page of tests/test_http2_browser.py: its script
                        fetch()es /record-client?token=&i= 50 times at once,
                        then writes into #result how many answered "ok" and
                        each fetch's nextHopProtocol (Resource Timing)

Module globals are read and written by the worker's event loop thread only.
"""

import asyncio
import hashlib
import json

from tests.apps import asgi_http, scope as scope_app
from tests.apps._support import query, record, respond, respond_json, simple_lifespan

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>h2</title></head>
<body><pre id="result">pending</pre>
<script>
const token = new URLSearchParams(location.search).get("token");
const urls = Array.from({length: 50}, (_, i) => `/record-client?token=${token}&i=${i}`);
Promise.all(urls.map((u) => fetch(u, {cache: "no-store"}).then((r) => r.text())))
  .then((bodies) => {
    const byName = new Map(performance.getEntriesByType("resource")
      .map((e) => [new URL(e.name).pathname + new URL(e.name).search, e.nextHopProtocol]));
    document.getElementById("result").textContent = JSON.stringify({
      ok: bodies.filter((b) => b === "ok").length,
      protocols: urls.map((u) => byName.get(u) || "missing"),
      page: performance.getEntriesByType("navigation")[0].nextHopProtocol,
    });
  })
  .catch((e) => {
    document.getElementById("result").textContent = JSON.stringify({error: String(e)});
  });
</script></body></html>
"""

# /sleep requests in flight now, and the most seen at once (one event loop).
_inflight = [0, 0]


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    path = scope["path"]
    q = query(scope)
    if path == "/scope":
        return await scope_app.app(scope, receive, send)
    if path == "/sleep":
        _inflight[0] += 1
        at_start = _inflight[0]
        _inflight[1] = max(_inflight[1], _inflight[0])
        try:
            await asyncio.sleep(float(q.get("s", "0.2")))
        finally:
            _inflight[0] -= 1
        client = scope.get("client")
        return await respond_json(send, {
            "id": q.get("id"), "at_start": at_start, "peak": _inflight[1],
            "task": id(asyncio.current_task()), "client": list(client) if client else None,
            "http_version": scope["http_version"]})
    if path == "/status":
        code = int(q["code"])
        await send({"type": "http.response.start", "status": code,
                    "headers": [(b"etag", b'"v1"')] if code == 304 else []})
        return await send({"type": "http.response.body", "body": b""})
    if path == "/upload":
        h, n, total = hashlib.sha256(), 0, 0
        while True:
            msg = await receive()
            if msg["type"] != "http.request":
                break
            body = msg.get("body", b"")
            h.update(body)
            n += 1
            total += len(body)
            if not msg.get("more_body", False):
                break
        return await respond_json(send, {"messages": n, "len": total, "sha256": h.hexdigest()})
    if path == "/chunks":
        n, size = int(q.get("n", "10")), int(q.get("size", "10"))
        delay = float(q.get("delay_ms", "0")) / 1000
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"application/octet-stream")]})
        for i in range(n):
            piece = (b"%d:" % i).ljust(size, b".")[:size]
            await send({"type": "http.response.body", "body": piece, "more_body": True})
            if delay:
                await asyncio.sleep(delay)
        return await send({"type": "http.response.body", "body": b""})
    if path == "/record-client":
        client = scope.get("client") or ["?", 0]
        record(q.get("token", ""), json.dumps([client[0], client[1], scope["http_version"],
                                               q.get("i")]))
        return await respond(send, 200, b"ok", [(b"access-control-allow-origin", b"*")])
    if path == "/conn-headers":  # fields HTTP/2 has no place for, and one it keeps
        hs = [(b"Connection", b"close"), (b"Keep-Alive", b"timeout=5"), (b"X-Kept", b"Yes")]
        if q.get("case") == "lower":
            hs = [(k.lower(), v) for k, v in hs]
        return await respond(send, 200, b"ok", hs)
    if path == "/page":
        return await respond(send, 200, PAGE, [(b"cache-control", b"no-store")],
                             content_type=b"text/html; charset=utf-8")
    return await asgi_http.app(scope, receive, send)
