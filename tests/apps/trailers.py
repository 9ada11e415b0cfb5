"""The ASGI http.response.trailers extension, as tests/test_trailers.py drives
it: the path picks what the app sends, ?token= where it records what its
send() calls did ("ok" or "error: <message>")."""

from __future__ import annotations

import json

from tests.apps._support import query, record, simple_lifespan

BIG = b"pounce trailers compress me " * 400  # 11200 bytes, compressible


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await simple_lifespan(receive, send)
        return
    path = scope["path"]
    token = query(scope).get("token", "")

    async def step(name, msg):
        """send(msg), recording whether it raised."""
        try:
            await send(msg)
        except Exception as e:  # noqa: BLE001 - the test reads what happened
            record(token, f"{name}: error: {e}")
            return False
        record(token, f"{name}: ok")
        return True

    def start(trailers=True, headers=()):
        msg = {"type": "http.response.start", "status": 200,
               "headers": [(b"content-type", b"text/plain"), *headers]}
        if trailers is not None:
            msg["trailers"] = trailers
        return msg

    def body(data, more=False):
        return {"type": "http.response.body", "body": data, "more_body": more}

    def trailers(headers, more=False):
        return {"type": "http.response.trailers", "headers": headers, "more_trailers": more}

    if path == "/scope":
        data = json.dumps({
            "offered": "http.response.trailers" in scope["extensions"],
            "value": scope["extensions"].get("http.response.trailers"),
            "http_version": scope["http_version"],
        }).encode()
        await send(start(trailers=None, headers=[(b"content-length", str(len(data)).encode())]))
        await send(body(data))
    elif path == "/basic":
        await step("start", start())
        await step("body1", body(b"hel", more=True))
        await step("body2", body(b"lo"))
        await step("trailers", trailers([(b"x-checksum", b"abc"), (b"grpc-status", b"0")]))
    elif path == "/several":
        await step("start", start())
        await step("body", body(b"data"))
        await step("t1", trailers([(b"a", b"1")], more=True))
        # Content-Length and Set-Cookie must never be trailers: dropped.
        await step("t2", trailers([(b"Content-Length", b"5"), (b"b", b"2"),
                                   (b"set-cookie", b"s=1")], more=True))
        await step("t3", trailers([], more=True))
        await step("t4", trailers([(b"c", b"3 ; x")]))
    elif path == "/bad":
        await step("start", start())
        await step("body", body(b"x"))
        await step("t1", trailers([(b"ok", b"1")], more=True))
        await step("bad-name", trailers([(b"good", b"2"), (b"bad name", b"v")]))
        await step("bad-value", trailers([(b"x", b"a\r\nInjected: 1")]))
        await step("not-bytes", trailers([("str", "str")]))
        await step("last", trailers([(b"final", b"yes")]))
    elif path == "/not-asked":
        await step("start", start(trailers=False))
        await step("body", body(b"plain"))
        await step("trailers", trailers([(b"a", b"1")]))
    elif path == "/early":
        await step("start", start())
        await step("trailers-early", trailers([(b"a", b"1")]))
        await step("body", body(b"late"))
        await step("trailers", trailers([(b"a", b"2")]))
        await step("trailers-after", trailers([(b"a", b"3")]))
        await step("body-after", body(b"more"))
    elif path == "/second-body":
        await step("start", start())
        await step("body", body(b"one"))
        await step("body-again", body(b"two"))
        await step("trailers", trailers([(b"a", b"1")]))
    elif path == "/before-start":
        await step("trailers", trailers([(b"a", b"1")]))
        await send(start(trailers=None, headers=[(b"content-length", b"2")]))
        await send(body(b"no"))
    elif path == "/length":
        # A declared length leaves no room for trailers on HTTP/1.1.
        await step("start", start(headers=[(b"content-length", b"6")]))
        await step("body", body(b"sized!"))
        await step("trailers", trailers([(b"a", b"1")]))
    elif path == "/empty":
        await step("start", start())
        await step("body", body(b""))
        await step("trailers", trailers([(b"a", b"1")]))
    elif path == "/big":
        await step("start", start())
        await step("body1", body(BIG[:5000], more=True))
        await step("body2", body(BIG[5000:]))
        await step("trailers", trailers([(b"x-sum", b"11200")]))
    elif path == "/big-one":
        # The whole body in one final message (the encoder sized for it).
        await step("start", start())
        await step("body", body(BIG))
        await step("trailers", trailers([(b"x-sum", b"11200")]))
    elif path == "/no-headers":
        # http.response.start with no "headers" key at all
        await step("start", {"type": "http.response.start", "status": 200, "trailers": True})
        await step("body", body(b"bare"))
        await step("trailers", trailers([(b"a", b"1")]))
    elif path == "/pathsend":
        # A file is the whole body and ends the response: trailers dropped.
        await step("start", start())
        await step("pathsend", {"type": "http.response.pathsend", "path": __file__})
        await step("trailers", trailers([(b"a", b"1")]))
    elif path == "/unfinished":
        await step("start", start())
        await step("body", body(b"no end"))
        # returns without the trailers: the response must not look complete
    else:
        await send(start(trailers=None, headers=[(b"content-length", b"2")]))
        await send(body(b"ok"))
