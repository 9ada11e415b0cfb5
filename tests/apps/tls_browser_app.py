"""App of tests/test_tls_browser.py: a page served over https that opens a
wss:// WebSocket back to the same server.

  GET /        the page.  Its script fetches /scope, opens
               wss://<location.host>/ws, sends "hello", reads the echo,
               closes with 1000 and writes the outcome as JSON into #result
  GET /scope   {"scheme": scope["scheme"], "tls": <the ASGI TLS extension's
               keys, or null>} as JSON
  /ws          WebSocket: echoes the first text message as
               "<text> over <scope scheme>", then waits for the close

Plain ASGI, no framework, so it runs unchanged under uvicorn.
"""

from __future__ import annotations

import json

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>tls</title></head>
<body><pre id="result">pending</pre>
<script>
const out = {page: location.protocol, log: []};
function done(status) {
  out.status = status;
  document.getElementById("result").textContent = JSON.stringify(out);
}
fetch("/scope").then((r) => r.json()).then((scope) => {
  out.http = scope;
  // The same origin as the page: wss:// on an https:// page (a ws:// socket
  // from an https:// page is blocked as mixed content).
  const ws = new WebSocket("wss://" + location.host + "/ws");
  ws.onopen = () => { out.log.push("open"); ws.send("hello"); };
  ws.onmessage = (e) => { out.echo = e.data; ws.close(1000, "bye"); };
  ws.onerror = () => { out.log.push("error"); };
  ws.onclose = (e) => { out.log.push("close " + e.code); done(out.echo ? "ok" : "no echo"); };
}).catch((e) => done("fetch failed: " + e));
</script></body></html>
"""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        while True:
            msg = await receive()
            if msg["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif msg["type"] == "lifespan.shutdown":
                await send({"type": "lifespan.shutdown.complete"})
                return
    if scope["type"] == "websocket":
        msg = await receive()
        if msg["type"] != "websocket.connect":
            return
        await send({"type": "websocket.accept"})
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                return
            if msg.get("text") is not None:
                await send({"type": "websocket.send", "text": f"{msg['text']} over {scope['scheme']}"})
    if scope["type"] != "http":
        return
    if scope["path"] == "/scope":
        tls = (scope.get("extensions") or {}).get("tls")
        body = json.dumps({"scheme": scope["scheme"],
                           "tls": sorted(tls) if isinstance(tls, dict) else None}).encode()
        ctype = b"application/json"
    elif scope["path"] == "/":
        body, ctype = PAGE, b"text/html; charset=utf-8"
    else:
        body, ctype = b"not found", b"text/plain"
    await send({"type": "http.response.start", "status": 200 if body != b"not found" else 404,
                "headers": [(b"content-type", ctype), (b"content-length", str(len(body)).encode())]})
    await send({"type": "http.response.body", "body": body})
