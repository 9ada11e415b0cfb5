"""The ASGI HTTP interface as the app sees it: the scope, receive() and
send() (ASGI 3.0, HTTP spec), checked through real connections."""

import hashlib
import json
import os
import re
import socket
import struct
import sys
import time
import uuid

import httpx
import pytest

from tests.server import TLS, ConnectionClosed, build_request, read_record, wait_record

SCOPE_APP = "tests.apps.scope:app"
ASGI_APP = "tests.apps.asgi_http:app"


@pytest.fixture(scope="module")
def scope_server(module_server_factory):
    return module_server_factory(SCOPE_APP)


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory(ASGI_APP)


@pytest.fixture
def token():
    return uuid.uuid4().hex


def raw_scope(server, raw: bytes):
    with server.connect() as c:
        c.send(raw)
        resp = c.read_response()
        assert resp.status == 200, resp.body
        return json.loads(resp.body), c.local_port


# -- scope ------------------------------------------------------------------------------


def test_scope_carries_the_request_exactly(scope_server):
    raw = (
        b"GET /caf%C3%A9/x%2Fy?a=1&b=%20 HTTP/1.1\r\n"
        b"Host: 127.0.0.1\r\n"
        b"X-Dup: 1\r\n"
        b"X-Upper: MiXeD Value\r\n"
        b"x-dup: 2\r\n"
        b"\r\n"
    )
    scope, local_port = raw_scope(scope_server, raw)
    assert scope["type"] == "http"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["http_version"] == "1.1"
    assert scope["method"] == "GET"
    assert scope["scheme"] == ("https" if TLS else "http")
    # Percent-decoded, then UTF-8 decoded; %2F decodes too (raw_path keeps it).
    assert scope["path"] == "/café/x/y"
    assert scope["raw_path"] == "/caf%C3%A9/x%2Fy"
    assert scope["query_string"] == "a=1&b=%20"
    assert scope.get("root_path", "") == ""
    # Names lower-cased, values untouched, order and duplicates kept.
    assert scope["headers"] == [
        ["host", "127.0.0.1"],
        ["x-dup", "1"],
        ["x-upper", "MiXeD Value"],
        ["x-dup", "2"],
    ]
    assert scope["client"] == ["127.0.0.1", local_port]
    assert scope["server"] == ["127.0.0.1", scope_server.port]
    types = scope["_types"]
    assert (types["path"], types["raw_path"], types["query_string"]) == ("str", "bytes", "bytes")
    assert scope["_header_types"] == ["bytes,bytes"]
    assert types["client"] == "tuple" and types["server"] == "tuple"


def test_scope_http10_and_other_methods(scope_server):
    scope, _ = raw_scope(scope_server, b"GET /x HTTP/1.0\r\n\r\n")
    assert scope["http_version"] == "1.0"
    assert scope["headers"] == []
    scope, _ = raw_scope(scope_server, build_request("PATCH", "/p?", body=b"{}"))
    assert scope["method"] == "PATCH"
    assert scope["path"] == "/p"
    assert scope["query_string"] == ""


@pytest.mark.pounce_only("uvicorn does not implement http.response.pathsend")
def test_scope_advertises_pathsend(scope_server):
    scope, _ = raw_scope(scope_server, build_request("GET", "/"))
    assert "http.response.pathsend" in scope["extensions"]


def test_root_path_option(server_factory):
    srv = server_factory(SCOPE_APP, "--root-path", "/mount")
    with srv.connect() as c:
        resp = c.request("GET", "/x")
        scope = json.loads(resp.body)
        assert scope["root_path"] == "/mount"
        # As uvicorn does and current Starlette routing expects: path and
        # raw_path are the full path, root_path included.
        assert scope["path"] == "/mount/x"
        assert scope["raw_path"] == "/mount/x"


@pytest.mark.pounce_only("the names Pounce gives request Tasks on CPython 3.11")
def test_request_runs_in_a_named_asyncio_task(server):
    """Each request runs in its own asyncio.Task.  CPython 3.11 formats a
    Task's default name eagerly, so there Pounce names request Tasks itself
    (pounce-W-N, unique per worker); 3.12+ keep asyncio's "Task-N"."""
    with server.connect() as c:
        names = []
        for _ in range(3):
            c.send(build_request("GET", "/task"))
            out = json.loads(c.read_response().body)
            assert out["task"] is True
            names.append(out["name"])
    assert len(set(names)) == 3, names
    pattern = r"pounce-\d+-\d+" if sys.version_info < (3, 12) else r"Task-\d+"
    assert all(re.fullmatch(pattern, n) for n in names), names


@pytest.mark.parametrize("shape", ["literal", "runtime-keys", "str-subclass", "extra-keys",
                                   "dict-subclass", "mapping"])
def test_response_messages_of_every_shape(server, shape):
    """A message is read the same whatever its shape: a dict of the interned
    literal keys (read in one pass), keys that are equal but not the same
    objects, str subclasses, extra keys, a dict subclass, a read-only
    mapping."""
    with server.connect() as c:
        c.send(build_request("GET", f"/message-shapes?shape={shape}"))
        resp = c.read_response()
    assert resp.status == 201, (shape, resp.status, resp.body)
    assert resp.body == b"one-two", shape
    assert resp.header("x-shape") == shape


@pytest.mark.pounce_only("send(message=...) is a valid call of uvicorn's Python send")
def test_send_takes_exactly_one_message(server):
    """send is the request object itself (no bound method per request):
    called with anything but one positional message it raises TypeError,
    as the bound method did."""
    with server.connect() as c:
        c.send(build_request("GET", "/send-calls"))
        resp = c.read_response()
    assert resp.status == 200, resp.body
    out = json.loads(resp.body)
    assert out["callable"] is True
    assert len(out["errors"]) == 3, out


# -- receive() --------------------------------------------------------------------------


def test_body_arrives_in_several_messages(server):
    with server.connect() as c:
        c.send(build_request("POST", "/body-messages", [("Content-Length", "15")]))
        for piece in (b"hello", b"world", b"!!!!!"):
            c.send(piece)
            time.sleep(0.15)
        out = json.loads(c.read_response().body)
    assert out["body"] == "helloworld!!!!!"
    msgs = out["msgs"]
    assert len(msgs) >= 2, "a body sent in pauses should reach the app in pieces"
    assert all(m["type"] == "http.request" for m in msgs)
    assert all(m["more_body"] for m in msgs[:-1])
    assert not msgs[-1].get("more_body", False)
    assert sum(m["len"] for m in msgs) == 15


def test_chunked_body_arrives_in_several_messages(server):
    with server.connect() as c:
        c.send(build_request("POST", "/body-messages", [("Transfer-Encoding", "chunked")]))
        for piece in (b"5\r\nhello\r\n", b"5\r\nworld\r\n", b"0\r\n\r\n"):
            c.send(piece)
            time.sleep(0.15)
        out = json.loads(c.read_response().body)
    assert out["body"] == "helloworld"
    assert len(out["msgs"]) >= 2
    assert not out["msgs"][-1].get("more_body", False)


def test_disconnect_after_response_completed(server, token, record_dir):
    # ASGI: receive() after the response was sent returns http.disconnect,
    # even though the (keep-alive) connection is still open.
    with server.connect() as c:
        resp = c.request("GET", f"/disconnect-after?token={token}")
        assert resp.body == b"done"
        lines = wait_record(record_dir, token, "http.", timeout=3)
        assert lines == ["http.disconnect"]


def _abort(c) -> None:
    """Close with a RST (SO_LINGER 0): the client is gone for good."""
    c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    c.close()


def test_disconnect_when_client_resets_mid_request(server, token, record_dir):
    # A RST (EPOLLHUP/EPOLLERR) is proof the client is gone: the app waiting
    # in receive() gets http.disconnect at once.
    c = server.connect()
    c.send(build_request("GET", f"/wait-disconnect?token={token}"))
    wait_record(record_dir, token, "started")
    start = time.monotonic()
    _abort(c)
    lines = wait_record(record_dir, token, "http.disconnect")
    assert "timeout" not in lines
    assert time.monotonic() - start < 3


@pytest.mark.pounce_only("uvicorn reports a FIN as http.disconnect")
def test_disconnect_when_client_closes_learned_from_failed_write(server, token, record_dir):
    # A client that close()s sends only a FIN, which looks like a half-close;
    # the first write that reaches its closed socket draws a RST, and the
    # app's receive() then says http.disconnect.
    c = server.connect()
    c.send(build_request("GET", f"/stream-until-disconnect?token={token}"))
    c.read_until(b"\r\n\r\n")
    c.close()
    lines = wait_record(record_dir, token, "http.", timeout=8)
    assert lines[-1].startswith("http.disconnect after "), lines
    assert int(lines[-1].split()[-2]) < 1000, lines


# -- half-close: a FIN ends the client's sending, not its reading (RFC 9112 §9.6) ----


def _half_close_exchange(server, data: bytes, *, trickle: bool = False) -> bytes:
    """Send `data` (one byte per send with a pause when trickling), shut the
    write side, and read until the server closes.  Returns all it sent."""
    with server.connect(timeout=10) as c:
        if trickle:
            for i in range(len(data)):
                c.send(data[i:i + 1])
                time.sleep(0.002)
        else:
            c.send(data)
        c.sock.shutdown(socket.SHUT_WR)
        return c.read_to_eof()


PROBE = b"HTTP/1.1 100 Continue\r\n\r\n"


def _responses(raw: bytes, probes: int = 0) -> list[tuple[int, bytes]]:
    """Split a byte stream of Content-Length responses into (status, body),
    after exactly `probes` interim 100 responses at its start."""
    assert raw[:len(PROBE) * probes] == PROBE * probes, raw[:300]
    raw = raw[len(PROBE) * probes:]
    out = []
    while raw:
        head, sep, rest = raw.partition(b"\r\n\r\n")
        assert sep, raw[:300]
        lines = head.split(b"\r\n")
        status = int(lines[0].split()[1])
        assert status >= 200, raw[:300]
        length = next(int(ln.split(b":", 1)[1]) for ln in lines[1:]
                      if ln.lower().startswith(b"content-length:"))
        out.append((status, rest[:length]))
        assert len(rest) >= length, raw[:300]
        raw = rest[length:]
    return out


@pytest.mark.tcp_only("a TLS client cannot half-close (Python's SSLSocket.shutdown drops the session)")
@pytest.mark.pounce_only("uvicorn may drop the answer to a half-closed request")
@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "bytewise"])
@pytest.mark.parametrize("kind", ["get", "length-body", "chunked-body", "http10"])
def test_half_closed_request_gets_its_response(server, kind, trickle):
    # Whole: the FIN comes with the request, and an app that answers at once
    # races it (the bug lost 198 of 200 on 3.11), so try many times.  Byte
    # by byte the FIN comes last, while the app (which thinks 50 ms) works.
    target = "/echo?delay=0.05" if trickle else "/echo"
    if kind == "get":
        req, want = build_request("GET", target), b""
    elif kind == "length-body":
        req, want = build_request("POST", target, body=b"hello half-close"), b"hello half-close"
    elif kind == "chunked-body":
        req = build_request("POST", target, [("Transfer-Encoding", "chunked")]) + \
            b"5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        want = b"hello world"
    else:
        req, want = build_request("GET", "/", version="HTTP/1.0"), b"ok"
        if trickle:
            req = build_request("POST", target, body=b"1.0", version="HTTP/1.0")
            want = b"1.0"
    for _ in range(3 if trickle else 40):
        raw = _half_close_exchange(server, req, trickle=trickle)
        assert _responses(raw) == [(200, want)], raw[:300]


@pytest.mark.tcp_only("a TLS client cannot half-close (Python's SSLSocket.shutdown drops the session)")
@pytest.mark.pounce_only("uvicorn may drop the answers to a half-closed connection")
@pytest.mark.parametrize("trickle", [False, True], ids=["whole", "bytewise"])
def test_half_closed_pipeline_gets_every_response(server, trickle):
    # The last one thinks, so the FIN arrives while it is with the app.
    reqs = (build_request("GET", "/") + build_request("POST", "/echo", body=b"two")
            + build_request("GET", "/big?n=300000")
            + build_request("POST", "/echo?delay=0.05", body=b"four"))
    raw = _half_close_exchange(server, reqs, trickle=trickle)
    got = _responses(raw)
    assert [s for s, _ in got] == [200, 200, 200, 200]
    assert got[0][1] == b"ok" and got[1][1] == b"two" and got[3][1] == b"four"
    assert got[2][1] == bytes(range(256)) * (300000 // 256) + bytes(range(300000 % 256))


@pytest.mark.tcp_only("a TLS client cannot half-close (Python's SSLSocket.shutdown drops the session)")
@pytest.mark.pounce_only("uvicorn reports a FIN as http.disconnect")
@pytest.mark.parametrize("version", ["HTTP/1.1", "HTTP/1.0"])
def test_half_close_is_not_a_disconnect(server, token, record_dir, version):
    # Django listens for http.disconnect while its view runs and drops the
    # view when it hears one: a FIN must not say it.  The listener hears
    # http.disconnect once the response is complete (ASGI).  To learn
    # whether the client left or only half-closed, an HTTP/1.1 client gets
    # one 100 Continue (a closed socket answers it with a RST); HTTP/1.0
    # has no interim responses, so it gets none.
    raw = _half_close_exchange(server, build_request(
        "POST", f"/listen-then-respond?token={token}", body=b"x", version=version))
    assert _responses(raw, probes=int(version == "HTTP/1.1")) == [(200, b"answer:x")]
    lines = wait_record(record_dir, token, "after-response")
    assert lines == ["before-response nothing", "after-response http.disconnect"]


@pytest.mark.tcp_only("a TLS client cannot half-close (Python's SSLSocket.shutdown drops the session)")
@pytest.mark.pounce_only("uvicorn reports a FIN as http.disconnect")
def test_half_closed_client_still_reads_a_late_answer(server, token):
    # The app waits for the client (which sent FIN) for a while, then
    # answers: the answer arrives, and no disconnect was reported.
    raw = _half_close_exchange(
        server, build_request("GET", f"/wait-disconnect?token={token}&timeout=0.5&answer=1"))
    assert _responses(raw, probes=1) == [(200, b"http.request 0,timeout")]


def test_disconnect_when_client_closes_while_app_waits(server, token, record_dir):
    # A client that close()s sends only a FIN; the probe (100 Continue) that
    # the waiting app's receive() causes draws a RST from the closed socket,
    # so the app hears http.disconnect promptly (as with uvicorn).
    c = server.connect()
    c.send(build_request("GET", f"/wait-disconnect?token={token}"))
    wait_record(record_dir, token, "started")
    start = time.monotonic()
    c.close()
    lines = wait_record(record_dir, token, "http.disconnect")
    assert "timeout" not in lines
    assert time.monotonic() - start < 3


@pytest.mark.tcp_only("a TLS client cannot half-close (Python's SSLSocket.shutdown drops the session)")
@pytest.mark.pounce_only("Pounce's lingering close after a half-close")
def test_half_closed_large_response_to_slow_reader(server):
    # The response does not fit in the socket buffers: it must survive the
    # FIN while it is still being written, read slowly.
    with server.connect(timeout=10) as c:
        c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 16384)
        c.send(build_request("GET", "/big?n=4000000"))
        c.sock.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        raw = c.read_to_eof()
    got = _responses(raw)
    assert len(got) == 1 and got[0][0] == 200 and len(got[0][1]) == 4000000


def test_disconnect_while_body_incomplete(server, token, record_dir):
    c = server.connect()
    c.send(build_request("POST", f"/wait-disconnect?token={token}", [("Content-Length", "100")]))
    c.send(b"0123456789")
    wait_record(record_dir, token, "started")
    time.sleep(0.2)
    c.close()
    lines = wait_record(record_dir, token, "http.disconnect")
    got = sum(int(line.split()[1]) for line in lines if line.startswith("http.request"))
    assert got == 10
    # Body messages before the disconnect said more_body; no fake completion.
    assert lines[-1] == "http.disconnect 0"


# -- send(): streaming and size -----------------------------------------------------------


def test_streaming_first_chunk_arrives_before_last_is_sent(server, token, record_dir):
    # The app sends chunk 0, then waits for the test to see it (a gate file)
    # before sending the rest: a server that buffers the response makes the
    # read below time out.
    expected = b"".join(b"chunk %d\n" % i for i in range(100))
    with httpx.Client(timeout=3) as client:
        # identity: the raw bytes are compared (compression has its own tests)
        with client.stream("GET", f"{server.url}/stream-gated?token={token}",
                           headers={"Accept-Encoding": "identity"}) as resp:
            assert resp.status_code == 200
            got = b""
            it = resp.iter_raw()
            while b"chunk 0\n" not in got:
                got += next(it)
            assert "last-sent" not in read_record(record_dir, token)
            (record_dir / f"{token}.go").touch()
            for piece in it:
                got += piece
    assert got == expected
    assert "gate-open" in read_record(record_dir, token)


def test_streaming_100_chunks(server):
    with server.connect() as c:
        resp = c.request("GET", "/stream?n=100&delay_ms=1")
    assert resp.chunked
    assert resp.body == b"".join(b"chunk %d\n" % i for i in range(100))


def test_10mb_request_and_response_bodies(server):
    body = os.urandom(10 * 1024 * 1024)
    with httpx.Client(timeout=30) as client:
        resp = client.post(f"{server.url}/echo", content=body)
        assert resp.status_code == 200
        assert resp.headers["x-sha256"] == hashlib.sha256(body).hexdigest()
        assert resp.content == body


def test_10mb_response(server):
    n = 10 * 1024 * 1024 + 7
    with httpx.Client(timeout=30) as client:
        resp = client.get(f"{server.url}/big?n={n}", headers={"Accept-Encoding": "identity"})
    assert resp.status_code == 200
    assert int(resp.headers["content-length"]) == n
    assert len(resp.content) == n
    assert resp.content[:256] == bytes(range(256))
    assert resp.content[-7:] == bytes(range(7))


@pytest.mark.pounce_only("uvicorn does not implement http.response.pathsend")
def test_pathsend_sends_the_file(server, tmp_path):
    data = os.urandom(300_000)
    f = tmp_path / "payload.bin"
    f.write_bytes(data)
    with httpx.Client(timeout=10) as client:
        resp = client.get(f"{server.url}/pathsend", params={"path": str(f)})
    assert resp.status_code == 200
    assert resp.content == data


# -- send(): misuse raises in the app --------------------------------------------------------


@pytest.mark.parametrize(
    "case",
    [
        "body_before_start",
        "start_twice",
        "unknown_type",
        pytest.param(
            "header_str",
            marks=pytest.mark.pounce_only("uvicorn raises TypeError for str headers, then counts the start as sent"),
        ),
        pytest.param(
            "status_str",
            marks=pytest.mark.pounce_only("uvicorn raises TypeError for a str status, then counts the start as sent"),
        ),
    ],
)
def test_wrong_message_raises_runtime_error(server, case, token):
    with server.connect() as c:
        resp = c.request("GET", f"/misuse?case={case}&token={token}")
    assert resp.status == 200
    assert resp.body == b"caught RuntimeError"


def test_header_injection_is_refused(server, token, record_dir):
    # RFC 9110 §5.5: CR/LF in a field value would split the response.
    with server.connect() as c:
        c.send(build_request("GET", f"/misuse?case=header_crlf&token={token}"))
        try:
            resp = c.read_response()
        except ConnectionClosed as e:
            seen = e.partial
        else:
            seen = resp.raw_head + resp.body
    assert b"X-Injected" not in seen
    assert wait_record(record_dir, token, "caught")[0].startswith("caught ")


def test_body_after_complete_raises(server, token, record_dir):
    with server.connect() as c:
        resp = c.request("GET", f"/misuse?case=body_after_complete&token={token}")
        assert resp.body == b"complete"
    assert wait_record(record_dir, token, "caught") == ["caught RuntimeError"]


# -- app failures ---------------------------------------------------------------------------


def test_exception_before_start_is_500_with_traceback_logged(server):
    marker = f"boom-{uuid.uuid4().hex}"
    with server.connect() as c:
        resp = c.request("GET", f"/raise-before?msg={marker}")
        assert resp.status == 500
        # The server recovered: the connection (or a new one) still works.
        try:
            assert c.request("GET", "/").status == 200
        except ConnectionClosed:
            pass
    server.wait_log(r"Traceback \(most recent call last\)(.|\n)*ValueError: " + marker)


def test_exception_after_start_closes_connection(server):
    with server.connect() as c:
        c.send(build_request("GET", "/raise-after"))
        head = c.read_until(b"\r\n\r\n")
        assert head.startswith(b"HTTP/1.1 200")
        rest = c.read_to_eof()
        # The chunked body must not be terminated: the client has to see that
        # the response is incomplete.
        assert not rest.endswith(b"0\r\n\r\n")
        assert b"partial" in rest


def test_exception_after_start_with_length_closes_short(server):
    with server.connect() as c:
        c.send(build_request("GET", "/raise-after?cl=1"))
        head = c.read_until(b"\r\n\r\n")
        assert b"content-length: 100" in head.lower()
        rest = c.read_to_eof()
        assert rest == b"partial"


def test_return_after_start_without_final_body_closes(server):
    with server.connect() as c:
        c.send(build_request("GET", "/return-after-start"))
        c.read_until(b"\r\n\r\n")
        rest = c.read_to_eof()
        assert not rest.endswith(b"0\r\n\r\n")


def test_no_response_is_500(server):
    with server.connect() as c:
        resp = c.request("GET", "/no-response")
    assert resp.status == 500
