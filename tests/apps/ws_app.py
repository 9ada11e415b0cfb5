"""Raw ASGI WebSocket apps for the WebSocket tests (no framework).

WebSocket paths (most take ?token=T; events are recorded under T with
tests.apps._support.record, one line each):

  /echo           accept, echo every message with its type (text as text,
                  bytes as bytes); records "disconnect CODE" at the end
  /scope          accept, send the scope as JSON text, then close 1000
  /subprotocol    accept with the first offered of chat.v2, chat.v1 (none if
                  neither); send the chosen one (or "") as text
  /headers        accept with extra response headers x-ws-app: yes and a
                  set-cookie; send "hello"
  /close          ?code=&reason=  accept, then close with that code/reason
                  (no code: a bare websocket.close, which means 1000); if
                  that send raises, records "raised NAME: MSG" and closes 1000
  /reject         websocket.close before accept (the server answers 403)
  /deny           websocket.http.response.start 401 + body "denied"
                  (x-deny header) instead of accepting; ?stream=1: 429 with
                  the body "slow down" in several more_body parts
  /send-after-close   accept, close 1000, then send: records "raised NAME: MSG"
                  or "no-error"; with ?wait=1 it waits for the client's
                  disconnect first, then sends
  /disconnect     accept, record "accepted", wait for websocket.disconnect,
                  record "disconnect CODE ELAPSED" (seconds since accept)
  /large          ?size=N&text=0|1  accept, send one message of N bytes
                  (pattern data), then echo like /echo
  /concurrent     ?n=&size=  accept, two tasks send n messages of `size`
                  bytes each at the same time ("A 17 ..." / "B 3 ..."), then
                  close 1000 and record "sent"
  /flood          accept, send 64 KiB messages until send() raises (the
                  client stops reading, then vanishes); records "flooding",
                  then "raised NAME SECONDS-SINCE-LAST-SUCCESSFUL-SEND"
  /boom           ?when=before|after  raise an exception before or after
                  accepting
  /return         accept, send "bye", return without websocket.close
  /noread         ?s=  accept, sleep s seconds without receive(), close 1000
  /sleep          accept and wait for the disconnect without sending
                  (keepalive and shutdown tests); records "disconnect CODE"

HTTP paths:
  /browser        the page the browser test loads (it opens a WebSocket back
                  to /subprotocol and writes the outcome into #result)
  anything else   "ok"
"""

from __future__ import annotations

import asyncio
import json
import time

from tests.apps._support import query, record, respond, simple_lifespan

PAGE = r"""<!doctype html>
<html><head><meta charset="utf-8"><title>ws</title></head>
<body><pre id="result">pending</pre>
<script>
(function () {
  const out = document.getElementById("result");
  const log = [];
  function done(status) {
    out.textContent = JSON.stringify({status: status, log: log, extensions: ws.extensions,
                                      protocol: ws.protocol, page: location.protocol});
  }
  const big = "pounce ".repeat(20000) + "é€😀";
  const bin = new Uint8Array(70000);
  for (let i = 0; i < bin.length; i++) bin[i] = (i * 7 + 3) & 255;
  // The app speaks first (the subprotocol it chose), then echoes.
  const steps = [
    null,
    () => ws.send("hello ünïcode 😀"),
    () => ws.send(bin.buffer),
    () => ws.send(big),
  ];
  const expect = [
    (m) => m === "chat.v1" && ws.protocol === "chat.v1",
    (m) => typeof m === "string" && m === "hello ünïcode 😀",
    (m) => m instanceof ArrayBuffer && m.byteLength === bin.length &&
           new Uint8Array(m).every((v, i) => v === bin[i]),
    (m) => typeof m === "string" && m === big,
  ];
  // wss:// from an https:// page (POUNCE_TEST_TLS=1), ws:// from http://.
  const scheme = location.protocol === "https:" ? "wss://" : "ws://";
  const ws = new WebSocket(scheme + location.host + "/subprotocol?token=" +
                           encodeURIComponent(location.hash.slice(1)), ["chat.v1"]);
  ws.binaryType = "arraybuffer";
  let i = 0;
  let failed = null;
  ws.onopen = () => { log.push("open"); };
  ws.onmessage = (ev) => {
    const ok = expect[i](ev.data);
    log.push((ok ? "ok " : "BAD ") + i);
    if (!ok) { failed = "mismatch"; ws.close(1000); return; }
    i += 1;
    // Done only once the closing handshake has finished (onclose below):
    // the test kills the browser as soon as #result changes.
    if (i < steps.length) steps[i](); else ws.close(1000, "bye");
  };
  ws.onerror = () => { log.push("error"); };
  ws.onclose = (ev) => {
    log.push("close " + ev.code);
    if (failed) done(failed);
    else if (i < steps.length) done("closed early");
    else done(ev.wasClean && ev.code === 1000 ? "ok" : "unclean close");
  };
})();
</script></body></html>
"""


async def _accept(receive, send, **extra):
    msg = await receive()
    assert msg["type"] == "websocket.connect", msg
    await send({"type": "websocket.accept", **extra})


async def _echo_loop(receive, send, token):
    while True:
        msg = await receive()
        if msg["type"] == "websocket.disconnect":
            record(token, f"disconnect {msg.get('code')}")
            return
        out = {"type": "websocket.send"}
        if msg.get("text") is not None:
            out["text"] = msg["text"]
        else:
            out["bytes"] = msg["bytes"]
        await send(out)


def _pattern(n: int) -> bytes:
    block = bytes(range(256)) * 16
    return (block * (n // len(block) + 1))[:n]


async def _scope_json(scope) -> str:
    def enc(v):
        if isinstance(v, bytes):
            return v.decode("latin-1")
        if isinstance(v, (list, tuple)):
            return [enc(x) for x in v]
        if isinstance(v, dict):
            return {k: enc(x) for k, x in v.items()}
        return v

    keep = {k: v for k, v in scope.items() if k not in ("app", "state", "extensions")}
    out = enc(keep)
    out["has_state"] = "state" in scope
    out["extensions"] = sorted((scope.get("extensions") or {}).keys())
    return json.dumps(out)


async def websocket(scope, receive, send):
    path = scope["path"]
    q = query(scope)
    token = q.get("token", "")

    if path == "/echo":
        await _accept(receive, send)
        await _echo_loop(receive, send, token)
    elif path == "/scope":
        await _accept(receive, send)
        await send({"type": "websocket.send", "text": await _scope_json(scope)})
        await send({"type": "websocket.close", "code": 1000})
    elif path == "/subprotocol":
        offered = scope.get("subprotocols") or []
        chosen = next((p for p in ("chat.v2", "chat.v1") if p in offered), None)
        await _accept(receive, send, subprotocol=chosen)
        await send({"type": "websocket.send", "text": chosen or ""})
        await _echo_loop(receive, send, token)
    elif path == "/headers":
        await _accept(
            receive, send, headers=[(b"x-ws-app", b"yes"), (b"set-cookie", b"session=abc; Path=/")]
        )
        await send({"type": "websocket.send", "text": "hello"})
        await _echo_loop(receive, send, token)
    elif path == "/close":
        await _accept(receive, send)
        msg = {"type": "websocket.close"}
        if "code" in q:
            msg["code"] = int(q["code"])
        if "reason" in q:
            msg["reason"] = q["reason"]
        try:
            await send(msg)
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            record(token, f"raised {type(exc).__name__}: {exc}")
            await send({"type": "websocket.close", "code": 1000})
        else:
            record(token, "closed")
    elif path == "/reject":
        msg = await receive()
        assert msg["type"] == "websocket.connect", msg
        await send({"type": "websocket.close"})
    elif path == "/deny":
        msg = await receive()
        assert msg["type"] == "websocket.connect", msg
        body = b"denied"
        if q.get("stream") == "1":
            start = {"type": "websocket.http.response.start", "status": 429,
                     "headers": [(b"content-type", b"text/plain")]}
            await send(start)
            for part in (b"slow ", b"down"):
                await send({"type": "websocket.http.response.body", "body": part, "more_body": True})
            await send({"type": "websocket.http.response.body", "body": b""})
            return
        await send(
            {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [
                    (b"content-type", b"text/plain"),
                    (b"content-length", str(len(body)).encode()),
                    (b"x-deny", b"1"),
                ],
            }
        )
        await send({"type": "websocket.http.response.body", "body": body})
    elif path == "/send-after-close":
        await _accept(receive, send)
        if q.get("wait") == "1":
            msg = await receive()
            record(token, f"got {msg['type']} {msg.get('code')}")
        else:
            await send({"type": "websocket.close", "code": 1000})
        t0 = time.monotonic()
        try:
            # A hang here is the bug the test looks for; the test bounds it.
            await send({"type": "websocket.send", "text": "too late"})
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            record(token, f"raised {type(exc).__name__}: {exc} after {time.monotonic() - t0:.3f}")
        else:
            record(token, "no-error")
    elif path == "/disconnect":
        await _accept(receive, send)
        t0 = time.monotonic()
        record(token, "accepted")
        while True:
            msg = await receive()
            if msg["type"] == "websocket.disconnect":
                record(token, f"disconnect {msg.get('code')} {time.monotonic() - t0:.3f}")
                return
    elif path == "/large":
        await _accept(receive, send)
        data = _pattern(int(q.get("size", "1048576")))
        if q.get("text") == "1":
            await send({"type": "websocket.send", "text": data.decode("latin-1")})
        else:
            await send({"type": "websocket.send", "bytes": data})
        await _echo_loop(receive, send, token)
    elif path == "/concurrent":
        await _accept(receive, send)
        n, size = int(q.get("n", "50")), int(q.get("size", "65536"))

        async def sender(tag):
            for i in range(n):
                head = f"{tag} {i} ".encode()
                await send({"type": "websocket.send", "bytes": head + tag.encode() * (size - len(head))})

        await asyncio.gather(sender("A"), sender("B"))
        record(token, "sent")
        await send({"type": "websocket.close", "code": 1000})
    elif path == "/flood":
        # Send until the client's disappearance makes send() raise.
        await _accept(receive, send)
        chunk = b"f" * 65536
        record(token, "flooding")
        t_last = time.monotonic()
        try:
            while True:
                await send({"type": "websocket.send", "bytes": chunk})
                t_last = time.monotonic()
        except Exception as exc:  # noqa: BLE001 - recorded for the test
            record(token, f"raised {type(exc).__name__} {time.monotonic() - t_last:.3f}")
    elif path == "/boom":
        # ?when=before: raise before accepting; after: raise after accepting
        msg = await receive()
        if q.get("when") == "after":
            await send({"type": "websocket.accept"})
        raise RuntimeError("boom (expected by the test)")
    elif path == "/return":
        # Accept, send one message, then return without closing.
        await _accept(receive, send)
        await send({"type": "websocket.send", "text": "bye"})
    elif path == "/noread":
        # Accept, then do not call receive() for ?s= seconds (the server
        # must stop reading the socket instead of buffering without bound).
        await _accept(receive, send)
        await asyncio.sleep(float(q.get("s", "3")))
        await send({"type": "websocket.close", "code": 1000})
    elif path == "/sleep":
        await _accept(receive, send)
        record(token, "accepted")
        msg = await receive()
        record(token, f"disconnect {msg.get('code')}")
    else:
        await send({"type": "websocket.close", "code": 1008})


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await simple_lifespan(receive, send)
    elif scope["type"] == "websocket":
        await websocket(scope, receive, send)
    elif scope["path"] == "/browser":
        await respond(send, 200, PAGE.encode(), content_type=b"text/html; charset=utf-8")
    else:
        await respond(send, 200, b"ok")
