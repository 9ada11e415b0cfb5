"""Raw ASGI app for the receive/send tests (ASGI HTTP spec, version 3.0).

Routes take their parameters from the query string; `token` names the
record file (see _support.record) where the app reports what it saw when
the test cannot learn it from the response.
"""

import asyncio
import hashlib
import os
import types
from pathlib import Path

from tests.apps._support import RECORD_ENV, query, read_body, record, respond, respond_json, simple_lifespan

_PATTERN = bytes(range(256)) * 4096  # 1 MiB, cheap to slice


def pattern(n: int) -> bytes:
    reps, rest = divmod(n, len(_PATTERN))
    return _PATTERN * reps + _PATTERN[:rest]


async def _gate(token: str, timeout: float) -> bool:
    """Wait until the test creates <record dir>/<token>.go."""
    gate = Path(os.environ.get(RECORD_ENV, "/nonexistent")) / f"{token}.go"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not gate.exists():
        if loop.time() > deadline:
            return False
        await asyncio.sleep(0.01)
    return True


async def _misuse(case, token, receive, send):
    """Make one wrong send() call; report what it raised in the response."""
    start = {"type": "http.response.start", "status": 200, "headers": []}
    try:
        if case == "body_before_start":
            await send({"type": "http.response.body", "body": b"early"})
        elif case == "start_twice":
            await send(start)
            await send(start)
        elif case == "unknown_type":
            await send({"type": "http.response.bogus"})
        elif case == "header_str":
            await send({"type": "http.response.start", "status": 200, "headers": [("x-a", "b")]})
        elif case == "header_crlf":
            await send(
                {"type": "http.response.start", "status": 200,
                 "headers": [(b"x-a", b"a\r\nX-Injected: 1")]}
            )
        elif case == "status_str":
            await send({"type": "http.response.start", "status": "200", "headers": []})
        elif case == "body_after_complete":
            await respond(send, 200, b"complete")
            await send({"type": "http.response.body", "body": b"late"})
        else:
            raise AssertionError(case)
    except Exception as exc:  # noqa: BLE001 - reporting exactly what was raised
        outcome = f"caught {type(exc).__name__}"
    else:
        outcome = "no error"
    record(token, outcome)
    if case == "start_twice":
        await send({"type": "http.response.body", "body": outcome.encode()})
    elif case == "header_crlf":
        # Whether the refused start counts as sent is the server's choice;
        # the test only needs the record and that nothing was injected.
        try:
            await respond(send, 200, outcome.encode())
        except RuntimeError:
            pass
    elif case != "body_after_complete":
        await respond(send, 200, outcome.encode())


class _Key(str):
    """A str subclass as a message key (/message-shapes)."""


class _Msg(dict):
    """A dict subclass as a message (/message-shapes)."""


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    path = scope["path"]
    q = query(scope)
    token = q.get("token", "")

    if path == "/":
        await respond(send, 200, b"ok")

    elif path == "/task":
        task = asyncio.current_task()
        await respond_json(send, {"name": task.get_name(), "task": isinstance(task, asyncio.Task)})

    elif path == "/message-shapes":
        # The same response sent as messages of every shape an app may use:
        # keys made at run time (equal str objects that are not the
        # interned names), str subclasses, extra keys, a dict subclass, a
        # read-only mapping, a missing more_body; the server must read each
        # exactly as a plain dict of literals.
        shape = q.get("shape", "")
        k = (lambda name: "".join(list(name))) if shape == "runtime-keys" else \
            (lambda name: _Key(name)) if shape == "str-subclass" else (lambda name: name)
        start = {k("type"): "http.response.start", k("status"): 201,
                 k("headers"): [(b"content-type", b"text/plain"), (b"x-shape", shape.encode())]}
        parts = [{k("type"): "http.response.body", k("body"): b"one-", k("more_body"): True},
                 {k("type"): "http.response.body", k("body"): b"two"}]
        if shape == "extra-keys":
            start["x-extra"] = 1
            parts[0]["x-extra"] = None
        wrap = {"dict-subclass": _Msg, "mapping": types.MappingProxyType}.get(shape, dict)
        await send(wrap(start))
        for part in parts:
            await send(wrap(part))

    elif path == "/send-calls":
        # send() is called with one positional message; any other call is a
        # TypeError, and the response still goes out afterwards.
        errors = []
        for args, kwargs in (((), {}), (({"type": "x"}, {"type": "y"}), {}),
                             ((), {"message": {"type": "x"}})):
            try:
                send(*args, **kwargs)
            except TypeError as e:
                errors.append(str(e))
        await respond_json(send, {"errors": errors, "callable": callable(send)})

    elif path == "/body-messages":
        body, msgs = await read_body(receive)
        await respond_json(send, {"len": len(body), "body": body.decode("latin-1"), "msgs": msgs})

    elif path == "/echo":
        body, _ = await read_body(receive)
        if "delay" in q:  # the app thinks: a FIN sent after the request arrives meanwhile
            await asyncio.sleep(float(q["delay"]))
        await respond(send, 200, body, [(b"x-sha256", hashlib.sha256(body).hexdigest().encode())])

    elif path == "/big":
        await respond(send, 200, pattern(int(q["n"])))

    elif path == "/disconnect-after":
        await respond(send, 200, b"done")
        try:
            msg = await asyncio.wait_for(receive(), 5)
            record(token, msg["type"])
        except asyncio.TimeoutError:
            record(token, "timeout")

    elif path == "/wait-disconnect":
        # Reads until http.disconnect (or `timeout` seconds), then answers
        # with what it saw when `answer` is set.
        record(token, "started")
        seen = []
        try:
            while True:
                msg = await asyncio.wait_for(receive(), float(q.get("timeout", "10")))
                seen.append(f"{msg['type']} {len(msg.get('body', b''))}")
                record(token, seen[-1])
                if msg["type"] == "http.disconnect":
                    break
        except asyncio.TimeoutError:
            seen.append("timeout")
            record(token, "timeout")
        if q.get("answer"):
            await respond(send, 200, ",".join(seen).encode())

    elif path == "/listen-then-respond":
        # Django's pattern: listen for http.disconnect while the view works,
        # then answer.  Records whether the listener heard anything before
        # the response went out.
        body, _ = await read_body(receive)
        heard = []

        async def listen():
            heard.append((await receive())["type"])

        listener = asyncio.ensure_future(listen())
        await asyncio.sleep(float(q.get("think", "0.3")))
        record(token, f"before-response {heard[0] if heard else 'nothing'}")
        await respond(send, 200, b"answer:" + body)
        try:
            await asyncio.wait_for(listener, 5)
            record(token, f"after-response {heard[0]}")
        except asyncio.TimeoutError:
            record(token, "after-response timeout")

    elif path == "/stream-until-disconnect":
        # Streams a chunk every few ms and learns of the client's departure
        # only from receive(); records when it did.
        await read_body(receive)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        got = asyncio.ensure_future(receive())
        for i in range(int(q.get("n", "2000"))):
            if got.done():
                break
            await send({"type": "http.response.body", "body": b"x" * 1024, "more_body": True})
            await asyncio.sleep(0.005)
        if got.done():
            record(token, f"{got.result()['type']} after {i} chunks")
        else:
            got.cancel()
            record(token, "no disconnect")
            await send({"type": "http.response.body", "body": b""})

    elif path == "/stream-gated":
        n = int(q.get("n", "100"))
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain")]})
        await send({"type": "http.response.body", "body": b"chunk 0\n", "more_body": True})
        record(token, "first-sent")
        record(token, "gate-open" if await _gate(token, 5) else "gate-timeout")
        for i in range(1, n):
            if i == n - 1:
                record(token, "last-sent")
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i,
                        "more_body": i < n - 1})

    elif path == "/stream":
        n, delay = int(q.get("n", "100")), float(q.get("delay_ms", "1")) / 1000
        await send({"type": "http.response.start", "status": 200, "headers": []})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i, "more_body": True})
            await asyncio.sleep(delay)
        await send({"type": "http.response.body", "body": b""})

    elif path == "/pathsend":
        file_path = q["path"]
        size = os.path.getsize(file_path)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-length", str(size).encode())]})
        await send({"type": "http.response.pathsend", "path": file_path})

    elif path == "/misuse":
        await _misuse(q["case"], token, receive, send)

    elif path == "/raise-before":
        raise ValueError(q.get("msg", "boom"))

    elif path == "/raise-after":
        headers = [(b"content-length", b"100")] if q.get("cl") else []
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})
        raise ValueError("boom after start")

    elif path == "/return-after-start":
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"partial", "more_body": True})

    elif path == "/no-response":
        return

    else:
        await respond(send, 404, b"not found")
