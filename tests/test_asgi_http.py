"""The ASGI HTTP interface as the app sees it: the scope, receive() and
send() (ASGI 3.0, HTTP spec), checked through real connections."""

import hashlib
import json
import os
import time
import uuid

import httpx
import pytest

from tests.server import ConnectionClosed, build_request, read_record, wait_record

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
    assert scope["scheme"] == "http"
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


def test_disconnect_when_client_goes_away_mid_request(server, token, record_dir):
    c = server.connect()
    c.send(build_request("GET", f"/wait-disconnect?token={token}"))
    wait_record(record_dir, token, "started")
    c.close()
    lines = wait_record(record_dir, token, "http.disconnect")
    assert "timeout" not in lines


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
