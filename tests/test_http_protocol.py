"""HTTP/1.1 connection handling, driven with raw sockets (RFC 9112).

One server for the module: every test opens its own connections.
"""

import socket
import time

import pytest

from tests.server import ConnectionClosed, assert_serving, build_request, get

APP = "tests.apps.protocol:app"


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory(APP)


def evil_hits(server) -> int:
    return int(get(server, "/evil-hits").body)


# -- persistence (RFC 9112 §9.3) ---------------------------------------------------


def test_keep_alive_serves_several_requests_on_one_connection(server):
    with server.connect() as c:
        for i in range(5):
            resp = c.request("GET", "/")
            assert (resp.status, resp.body) == (200, b"Hello, world!")
            assert resp.header("content-length") == "13"
            resp = c.request("POST", "/echo", body=b"body %d" % i)
            assert (resp.status, resp.body) == (200, b"body %d" % i)
        assert not c.eof


def test_pipelined_responses_come_back_in_request_order(server):
    # The first request is the slowest, so a server that answers whatever is
    # ready first would reorder them (RFC 9112 §9.3.2 requires request order).
    reqs = (
        build_request("GET", "/delay?ms=300&id=first")
        + build_request("POST", "/echo", body=b"second-body")
        + build_request("GET", "/delay?ms=0&id=third")
    )
    with server.connect() as c:
        c.send(reqs)
        bodies = [c.read_response().body for _ in range(3)]
        assert bodies == [b"first", b"second-body", b"third"]
        # The connection is still usable afterwards.
        assert c.request("GET", "/").body == b"Hello, world!"


def test_http10_closes_by_default(server):
    with server.connect() as c:
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"Hello, world!")
        assert c.wait_closed(), "HTTP/1.0 without keep-alive must be closed"


@pytest.mark.pounce_only("uvicorn closes HTTP/1.0 connections even with Connection: keep-alive")
def test_http10_keep_alive_is_honoured(server):
    with server.connect() as c:
        for _ in range(2):
            c.send(b"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n")
            resp = c.read_response()
            assert (resp.status, resp.body) == (200, b"Hello, world!")
            # A 1.0 client assumes close unless told otherwise.
            assert (resp.header("connection") or "").lower() == "keep-alive"
        c.send(b"GET / HTTP/1.0\r\n\r\n")
        assert c.read_response().status == 200
        assert c.wait_closed()


@pytest.mark.pounce_only("uvicorn sends chunked coding to HTTP/1.0 clients")
def test_http10_streaming_response_is_close_delimited(server):
    # HTTP/1.0 has no chunked coding (RFC 9112 §7): the body ends at close.
    with server.connect() as c:
        c.send(b"GET /stream?n=4 HTTP/1.0\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 200
        assert not resp.chunked
        assert resp.body == b"part0;part1;part2;part3;"


def test_client_connection_close_is_honoured(server):
    with server.connect() as c:
        c.send(build_request("GET", "/", [("Connection", "close")]))
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"Hello, world!")
        assert c.wait_closed()


def test_app_connection_close_closes_after_response(server):
    with server.connect() as c:
        resp = c.request("GET", "/close")
        assert (resp.status, resp.body) == (200, b"bye")
        assert (resp.header("connection") or "").lower() == "close"
        assert c.wait_closed()


def test_streaming_response_without_length_is_chunked(server):
    with server.connect() as c:
        resp = c.request("GET", "/stream?n=3")
        assert resp.chunked
        assert resp.body == b"part0;part1;part2;"
        assert c.request("GET", "/").status == 200


# -- bodiless responses (RFC 9110 §9.3.2, §15.3.5, §15.4.5) -----------------------


def test_head_has_headers_but_no_body(server):
    with server.connect() as c:
        c.send(build_request("HEAD", "/") + build_request("GET", "/"))
        head = c.read_response("HEAD")
        assert head.status == 200
        assert head.header("content-length") == "13"
        # If the HEAD response carried a body, it would be read as the next
        # status line here.
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"Hello, world!")


def test_head_of_streaming_response_has_no_body(server):
    with server.connect() as c:
        c.send(build_request("HEAD", "/stream?n=3") + build_request("GET", "/"))
        assert c.read_response("HEAD").status == 200
        assert c.read_response().body == b"Hello, world!"


@pytest.mark.parametrize("code", [204, 304])
def test_204_and_304_have_no_body(server, code):
    with server.connect() as c:
        c.send(build_request("GET", f"/status?code={code}") + build_request("GET", "/"))
        resp = c.read_response()
        assert resp.status == code
        # RFC 9112 §6.1: no Transfer-Encoding in 204; RFC 9110 §8.6: no
        # Content-Length in 204.
        assert resp.header("transfer-encoding") is None
        if code == 204:
            assert resp.header("content-length") is None
        assert c.read_response().body == b"Hello, world!"


@pytest.mark.pounce_only("uvicorn sends the body the app wrongly gives a 204")
def test_body_sent_by_app_for_204_is_dropped(server):
    with server.connect() as c:
        c.send(build_request("GET", "/status?code=204&body=1") + build_request("GET", "/"))
        assert c.read_response().status == 204
        assert c.read_response().body == b"Hello, world!"


# -- request bodies ---------------------------------------------------------------


def test_chunked_request_with_extensions_and_trailers(server):
    body = (
        b"5;name=value\r\nhello\r\n"
        b'6;a=b;c="quoted ext"\r\n world\r\n'
        b"1\r\n!\r\n"
        b"0\r\nX-Trailer: yes\r\nX-Other: 1\r\n\r\n"
    )
    with server.connect() as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")], body))
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"hello world!")
        # The trailer section was consumed, not parsed as a request.
        assert c.request("GET", "/").body == b"Hello, world!"


def test_chunked_request_split_across_packets(server):
    with server.connect() as c:
        c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")]))
        for piece in (b"3\r", b"\nabc", b"\r\n", b"4\r\ndefg\r\n0", b"\r\n\r\n"):
            time.sleep(0.02)
            c.send(piece)
        assert c.read_response().body == b"abcdefg"


def test_unread_body_is_never_parsed_as_a_request(server):
    before = evil_hits(server)
    smuggled = b"GET /evil HTTP/1.1\r\nHost: x\r\n\r\n"
    with server.connect() as c:
        c.send(build_request("POST", "/noread", body=smuggled) + build_request("GET", "/"))
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"noread")
        # Either the server drained the body and answers the next request,
        # or it closed the connection; it must not serve /evil.
        try:
            nxt = c.read_response()
        except ConnectionClosed:
            pass
        else:
            assert nxt.body == b"Hello, world!"
    assert evil_hits(server) == before


def test_unread_chunked_body_is_never_parsed_as_a_request(server):
    before = evil_hits(server)
    smuggled = b"GET /evil HTTP/1.1\r\nHost: x\r\n\r\n"
    body = b"%x\r\n%s\r\n0\r\n\r\n" % (len(smuggled), smuggled)
    with server.connect() as c:
        c.send(
            build_request("POST", "/noread", [("Transfer-Encoding", "chunked")], body)
            + build_request("GET", "/")
        )
        assert c.read_response().body == b"noread"
        try:
            nxt = c.read_response()
        except ConnectionClosed:
            pass
        else:
            assert nxt.body == b"Hello, world!"
    assert evil_hits(server) == before


@pytest.mark.tcp_only("the server's RST after 256 KiB of unread body races the client's (slower, encrypting) send")
def test_large_unread_body_does_not_desynchronise(server):
    body = b"x" * (1 << 20)
    with server.connect() as c:
        c.send(build_request("POST", "/noread", body=body) + build_request("GET", "/"))
        assert c.read_response().body == b"noread"
        try:
            nxt = c.read_response()
        except ConnectionClosed:
            pass
        else:
            assert nxt.body == b"Hello, world!"
    assert_serving(server)


# -- Expect: 100-continue (RFC 9110 §10.1.1) --------------------------------------


def test_100_continue_sent_when_app_reads_body(server):
    with server.connect() as c:
        c.send(build_request("POST", "/echo", [("Expect", "100-continue"), ("Content-Length", "5")]))
        interim = c.read_response()
        assert interim.status == 100
        assert interim.raw_head.startswith(b"HTTP/1.1 100 Continue\r\n")
        c.send(b"hello")
        resp = c.read_response()
        assert (resp.status, resp.body) == (200, b"hello")
        assert c.request("GET", "/").status == 200


# uvicorn keeps the connection open and eats the next request as the unsent
# body: the desynchronisation this test exists to catch.
@pytest.mark.pounce_only("uvicorn desynchronises after an unread Expect body")
@pytest.mark.parametrize("code", [413, 401])
def test_no_100_continue_when_app_rejects_without_reading(server, code):
    with server.connect() as c:
        c.send(
            build_request(
                "POST", f"/reject?code={code}", [("Expect", "100-continue"), ("Content-Length", "10")]
            )
        )
        resp = c.read_response()
        assert resp.status == code, "no 100 Continue may precede a final answer the app gave unread"
        # The client never sends the body.  The next request on this
        # connection must be answered as a request, or the connection closed;
        # a server waiting for 10 body bytes would swallow it (desync).
        try:
            c.send(build_request("GET", "/"))
            nxt = c.read_response()
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError):
            pass
        else:
            assert (nxt.status, nxt.body) == (200, b"Hello, world!")


def test_rejected_expect_body_sent_anyway_is_not_a_request(server):
    # Clients that time out waiting for 100 send the body anyway.  Whatever
    # the server does with the connection, the body is never a request.
    before = evil_hits(server)
    smuggled = b"GET /evil HTTP/1.1\r\nHost: x\r\n\r\n"
    with server.connect() as c:
        c.send(
            build_request(
                "POST",
                "/reject?code=413",
                [("Expect", "100-continue"), ("Content-Length", str(len(smuggled)))],
            )
        )
        assert c.read_response().status == 413
        try:
            c.send(smuggled)
            c.sock.settimeout(1.0)
            c.read_response()
        except (ConnectionClosed, BrokenPipeError, ConnectionResetError, TimeoutError):
            pass
    time.sleep(0.1)
    assert evil_hits(server) == before
    assert_serving(server)


# -- logging and sockets ------------------------------------------------------------------


@pytest.mark.pounce_only("uvicorn passes CONNECT to the app; the access-log format is Pounce's")
@pytest.mark.parametrize("version", ["1.1", "1.0"])
def test_connect_is_refused_and_never_tunnelled(server, version):
    # RFC 9110 §9.3.6: a 2xx to CONNECT makes the connection a tunnel (no
    # Content-Length, no more HTTP parsing).  Pounce does not tunnel: 501,
    # Connection: close, the app is never called, and what follows on the
    # connection is never parsed as a request.
    before = evil_hits(server)
    with server.connect() as c:
        c.send(
            f"CONNECT example.com:443 HTTP/{version}\r\nHost: example.com:443\r\n\r\n".encode()
            + b"GET /evil HTTP/1.1\r\nHost: x\r\n\r\n"
        )
        resp = c.read_response()
        assert resp.status == 501
        assert resp.header("connection") == "close"
        assert c.wait_closed(), "a refused CONNECT must close the connection"
    assert evil_hits(server) == before
    server.wait_log(r'"CONNECT example\.com:443 HTTP/1\.[01]" 501 ')
    # A method is case-sensitive (RFC 9110 §9.1): "connect" is some other
    # method, which the app answers like any other.
    with server.connect() as c:
        assert c.request("connect", "/").status != 501


@pytest.mark.pounce_only("the access-log format is Pounce's")
def test_access_log_line_per_response(server):
    with server.connect() as c:
        port = c.local_port
        c.request("GET", "/?x=1")
        c.request("POST", "/echo", body=b"abc")
    server.wait_log(rf'127\.0\.0\.1:{port} - "GET /\?x=1 HTTP/1\.1" 200 13 [\d.]+ms')
    server.wait_log(rf'127\.0\.0\.1:{port} - "POST /echo HTTP/1\.1" 200 3 [\d.]+ms')


@pytest.mark.tcp_only("its client speaks plain HTTP over the socket")
def test_unix_socket(server_factory, tmp_path):
    path = str(tmp_path / "pounce.sock")
    srv = server_factory(APP, "--uds", path)
    assert srv.uds == path
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(build_request("GET", "/", [("Connection", "close")]))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200 ")
    assert data.endswith(b"\r\n\r\nHello, world!")
