"""The PROXY protocol (--proxy-protocol): v1 and v2 headers before HTTP.

Two kinds of tests.  Raw sockets talk to Pounce directly with headers made
here (whole, byte by byte, with requests in the same write, malformed ones),
and a real HAProxy, started by the tests with its own configuration, sends
`send-proxy`, `send-proxy-v2` (with PROXY-LOCAL health checks) and
`send-proxy-v2-ssl` from a TLS frontend.  Every peer here is on loopback, so
the clients that matter connect from 127.0.0.2: Pounce's socket peer is then
127.0.0.1 (HAProxy, or the test itself for raw headers naming other
addresses) while the client it reports is the one the header names.
"""

from __future__ import annotations

import json
import shutil
import socket
import ssl
import struct
import subprocess
import signal
import time
from pathlib import Path

import pytest

from tests.server import RawConn, build_request, shared_certs
from tests.ws_client import WSClient, accept_for, handshake_request, new_key

pytestmark = pytest.mark.pounce_only("--proxy-protocol is Pounce's")

APP = "tests.apps.scope:app"
SIG = b"\r\n\r\n\x00\r\nQUIT\n"


def v2(cmd: int, fam: int, block: bytes) -> bytes:
    return SIG + bytes([0x20 | cmd, fam]) + struct.pack(">H", len(block)) + block


def inet(src: str, sport: int, dst: str = "127.0.0.1", dport: int = 80) -> bytes:
    return socket.inet_aton(src) + socket.inet_aton(dst) + struct.pack(">HH", sport, dport)


def inet6(src: str, sport: int, dst: str = "::1", dport: int = 80) -> bytes:
    return (
        socket.inet_pton(socket.AF_INET6, src)
        + socket.inet_pton(socket.AF_INET6, dst)
        + struct.pack(">HH", sport, dport)
    )


def tlv(kind: int, value: bytes) -> bytes:
    return bytes([kind]) + struct.pack(">H", len(value)) + value


GET = build_request("GET", "/", [("Host", "x")])
GET_CLOSE = build_request("GET", "/", [("Host", "x"), ("Connection", "close")])


def scope_of(resp) -> dict:
    assert resp.status == 200, resp
    return json.loads(resp.body)


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(APP, "--proxy-protocol", "--header-timeout", "1")


def ask(srv, data: bytes, *, bytewise: bool = False) -> dict:
    """Send data (a header and a GET) and return the scope of the answer."""
    with RawConn(srv.host, srv.port) as c:
        if bytewise:
            for i in range(len(data)):
                c.send(data[i : i + 1])
                time.sleep(0.002)
        else:
            c.send(data)
        return scope_of(c.read_response())


def refused(srv, data: bytes, timeout: float = 3.0) -> None:
    """The server closes without a byte of answer."""
    with RawConn(srv.host, srv.port) as c:
        try:
            c.send(data)
        except OSError:
            return  # reset already: closed, and nothing came back
        assert c.wait_closed(timeout)


# ---- v1 ------------------------------------------------------------------


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_v1_tcp4(srv, bytewise):
    s = ask(srv, b"PROXY TCP4 203.0.113.7 192.0.2.1 4242 443\r\n" + GET, bytewise=bytewise)
    assert s["client"] == ["203.0.113.7", 4242]
    assert s["scheme"] == "http"
    # scope["server"] stays Pounce's own listening address.
    assert s["server"] == ["127.0.0.1", srv.port]
    srv.wait_log(r'203\.0\.113\.7:4242 - "GET / HTTP/1\.1" 200')


def test_v1_tcp6(srv):
    s = ask(srv, b"PROXY TCP6 2001:db8::7 2001:db8::1 65535 80\r\n" + GET)
    assert s["client"] == ["2001:db8::7", 65535]
    srv.wait_log(r'\[2001:db8::7\]:65535 - "GET / HTTP/1\.1" 200')


def test_v1_unknown_keeps_socket_peer(srv):
    with RawConn(srv.host, srv.port) as c:
        c.send(b"PROXY UNKNOWN whatever follows\r\n" + GET)
        s = scope_of(c.read_response())
        assert s["client"] == ["127.0.0.1", c.local_port]


def test_v1_header_alone_then_request(srv):
    """The header in one write, the request later: nothing is lost between."""
    with RawConn(srv.host, srv.port) as c:
        c.send(b"PROXY TCP4 198.51.100.9 192.0.2.1 1000 80\r\n")
        time.sleep(0.05)
        c.send(GET[:5])
        time.sleep(0.05)
        c.send(GET[5:])
        assert scope_of(c.read_response())["client"] == ["198.51.100.9", 1000]


@pytest.mark.parametrize(
    "data",
    [
        GET,  # no header at all: closed, never answered 400
        b"proxy TCP4 1.2.3.4 5.6.7.8 1 2\r\n" + GET,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 01 2\r\n" + GET,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 65536\r\n" + GET,
        b"PROXY TCP4 1.2.3.4  5.6.7.8 1 2\r\n" + GET,
        b"PROXY TCP4 ::1 5.6.7.8 1 2\r\n" + GET,
        b"PROXY TCP6 1.2.3.4 ::1 1 2\r\n" + GET,
        b"PROXY UDP4 1.2.3.4 5.6.7.8 1 2\r\n" + GET,
        b"PROXY TCP4 1.2.3.4 5.6.7.8 1 2\n" + GET,
        b"PROXY UNKNOWN " + b"x" * 100 + b"\r\n" + GET,  # longer than 107 bytes
    ],
    ids=[
        "http",
        "lowercase",
        "leading-zero",
        "port-range",
        "double-space",
        "v6-in-tcp4",
        "v4-in-tcp6",
        "udp",
        "bare-lf",
        "too-long",
    ],
)
def test_v1_malformed_closes(srv, data):
    refused(srv, data)


# ---- v2 ------------------------------------------------------------------


@pytest.mark.parametrize("bytewise", [False, True], ids=["whole", "bytewise"])
def test_v2_tcp4(srv, bytewise):
    s = ask(srv, v2(1, 0x11, inet("192.0.2.55", 5555)) + GET, bytewise=bytewise)
    assert s["client"] == ["192.0.2.55", 5555]
    assert s["scheme"] == "http"


def test_v2_tcp6(srv):
    s = ask(srv, v2(1, 0x21, inet6("2001:db8::55", 80)) + GET)
    assert s["client"] == ["2001:db8::55", 80]


def test_v2_unix_source_has_no_client(srv):
    block = b"/run/a.sock".ljust(108, b"\0") + b"/run/b.sock".ljust(108, b"\0")
    s = ask(srv, v2(1, 0x31, block) + GET)
    assert s["client"] is None


@pytest.mark.parametrize(
    "cmd,fam", [(0, 0x00), (0, 0x11), (1, 0x00)], ids=["local", "local-inet", "unspec"]
)
def test_v2_local_and_unspec_keep_socket_peer(srv, cmd, fam):
    block = inet("192.0.2.99", 9) if fam else b""
    with RawConn(srv.host, srv.port) as c:
        c.send(v2(cmd, fam, block) + GET)
        assert scope_of(c.read_response())["client"] == ["127.0.0.1", c.local_port]


def test_v2_tlvs_skipped_and_ssl(srv):
    skipped = tlv(0x01, b"h2") + tlv(0x02, b"example.com") + tlv(0x04, b"") + tlv(0xEE, b"\x01")
    s = ask(srv, v2(1, 0x11, inet("192.0.2.1", 1) + skipped) + GET)
    assert (s["client"], s["scheme"]) == (["192.0.2.1", 1], "http")
    # PP2_TYPE_SSL with PP2_CLIENT_SSL, a PP2_SUBTYPE_SSL_VERSION inside.
    ssl_tlv = tlv(0x20, b"\x01" + b"\0\0\0\0" + tlv(0x21, b"TLSv1.3"))
    s = ask(srv, v2(1, 0x11, inet("192.0.2.1", 2) + ssl_tlv) + GET)
    assert (s["client"], s["scheme"]) == (["192.0.2.1", 2], "https")
    # PP2_TYPE_SSL without the client bit: not TLS.
    s = ask(srv, v2(1, 0x11, inet("192.0.2.1", 3) + tlv(0x20, b"\x02\0\0\0\0")) + GET)
    assert s["scheme"] == "http"


@pytest.mark.parametrize("ssl_bit", [True, False], ids=["wss", "ws"])
def test_v2_ssl_websocket_scheme(server_factory, ssl_bit):
    srv = server_factory("tests.apps.ws_app:app", "--proxy-protocol")
    block = inet("192.0.2.4", 4) + (tlv(0x20, b"\x01\0\0\0\0") if ssl_bit else b"")
    key = new_key()
    with RawConn(srv.host, srv.port) as c:
        c.send(v2(1, 0x11, block) + handshake_request("/scope", key=key))
        resp = c.read_response()
        assert resp.status == 101 and resp.header("sec-websocket-accept") == accept_for(key)
        _, text = WSClient(c, resp).read_message()
    s = json.loads(text)
    assert (s["client"], s["scheme"]) == (["192.0.2.4", 4], "wss" if ssl_bit else "ws")


@pytest.mark.parametrize(
    "data",
    [
        SIG[:-1] + b"X" + bytes([0x21, 0x11, 0, 12]) + inet("192.0.2.1", 1),
        v2(1, 0x12, inet("192.0.2.1", 1)),  # UDP
        v2(1, 0x22, inet6("2001:db8::1", 1)),  # UDP6
        SIG + bytes([0x11, 0x11, 0, 12]) + inet("192.0.2.1", 1),  # version 1
        SIG + bytes([0x22, 0x11, 0, 12]) + inet("192.0.2.1", 1),  # command 2
        v2(1, 0x11, inet("192.0.2.1", 1)[:11]),  # short block
        v2(1, 0x11, inet("192.0.2.1", 1) + b"\x04\x00"),  # truncated TLV
        v2(1, 0x11, inet("192.0.2.1", 1) + b"\x04\x00\x05ab"),  # TLV past the end
        v2(1, 0x11, inet("192.0.2.1", 1) + tlv(0x20, b"\x01")),  # short SSL TLV
        v2(1, 0x11, inet("192.0.2.1", 1) + tlv(0x04, b"x" * 4100)),  # over the 4 KiB cap
    ],
    ids=[
        "signature",
        "dgram",
        "dgram6",
        "version",
        "command",
        "short-block",
        "truncated-tlv",
        "tlv-past-end",
        "short-ssl",
        "over-cap",
    ],
)
def test_v2_malformed_closes(srv, data):
    refused(srv, data + GET)


# ---- the connection around the header ---------------------------------------


def test_pipelined_requests_after_header(srv):
    reqs = b"".join(build_request("GET", f"/{i}", [("Host", "x")]) for i in range(3))
    with RawConn(srv.host, srv.port) as c:
        c.send(v2(1, 0x11, inet("192.0.2.8", 8)) + reqs)
        for i in range(3):
            s = scope_of(c.read_response())
            assert (s["path"], s["client"]) == (f"/{i}", ["192.0.2.8", 8])


def test_keep_alive_reads_the_header_once(srv):
    with RawConn(srv.host, srv.port) as c:
        c.send(b"PROXY TCP4 192.0.2.9 192.0.2.1 9 80\r\n" + GET)
        assert scope_of(c.read_response())["client"] == ["192.0.2.9", 9]
        c.send(GET)
        assert scope_of(c.read_response())["client"] == ["192.0.2.9", 9]
        # A second header is no header: it is a malformed request line.
        c.send(b"PROXY TCP4 192.0.2.10 192.0.2.1 10 80\r\n" + GET)
        assert c.read_response().status == 400


def test_header_deadline(srv):
    """A header that never completes is closed at the header deadline (1 s
    here, from accept), silently; so is a connection that sends nothing."""
    for data in (b"PROXY TCP4 192.0.2.1 ", v2(1, 0x11, b"")[:14], b""):
        with RawConn(srv.host, srv.port) as c:
            t0 = time.monotonic()
            if data:
                c.send(data)
            assert c.wait_closed(5)
            assert 0.7 < time.monotonic() - t0 < 3


def test_deadline_covers_header_and_head(srv):
    """The first request's deadline runs from accept, through the header:
    trickling the header, then the head, does not get a second deadline."""
    with RawConn(srv.host, srv.port) as c:
        t0 = time.monotonic()
        c.send(b"PROXY TCP4 192.0.2.1 ")
        time.sleep(0.6)
        c.send(b"192.0.2.2 1 2\r\nGET / HTTP/1.1\r\n")
        resp = c.read_response()  # the head never ends: 408 at the deadline
        assert resp.status == 408
        # 1 s from accept (the 100 ms timer tick on top), not from the
        # header's end (1.6 s).
        assert time.monotonic() - t0 < 1.5


def test_ctrl_c_closes_connections_waiting_for_a_header(server_factory):
    """On SIGINT a connection still in its PROXY header holds no request:
    it is closed at once, like an idle keep-alive one, and does not hold the
    exit until its header deadline."""
    srv = server_factory(APP, "--proxy-protocol", "--header-timeout", "20")
    with RawConn(srv.host, srv.port) as idle, RawConn(srv.host, srv.port) as partial:
        partial.send(b"PROXY TCP4 192.0.2.1")
        time.sleep(0.2)
        t0 = time.monotonic()
        assert srv.stop(signal.SIGINT, timeout=15) == 0
        assert time.monotonic() - t0 < 5
        assert idle.wait_closed(1) and partial.wait_closed(1)


def test_sigterm_lets_a_connection_finish_its_header(server_factory):
    """SIGTERM drains gently (docs/deployment.md): a balancer's connection
    caught in its PROXY header may still send it and its request, which is
    answered with Connection: close; new connections are refused."""
    srv = server_factory(APP, "--proxy-protocol", "--header-timeout", "20")
    with RawConn(srv.host, srv.port) as partial:
        partial.send(b"PROXY TCP4 192.0.2.1")
        time.sleep(0.2)
        srv.proc.send_signal(signal.SIGTERM)
        time.sleep(0.3)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection((srv.host, srv.port), timeout=2).close()
        partial.send(b" 192.0.2.2 5 80\r\n" + GET)
        resp = partial.read_response()
        assert scope_of(resp)["client"] == ["192.0.2.1", 5]
        assert resp.header("connection") == "close"
        assert partial.wait_closed(2)
    assert srv.wait(10) == 0


def test_scheme_from_a_trusted_proxy_header_wins_over_the_ssl_tlv(srv):
    """The PROXY source 127.0.0.1 is trusted, so its proxy headers speak for
    the client's own hop: their proto decides; without one the SSL TLV does."""
    ssl_tlv = tlv(0x20, b"\x01" + b"\0\0\0\0")
    hdr = v2(1, 0x11, inet("127.0.0.1", 7) + ssl_tlv)
    for proto, want in (("http", "http"), ("https", "https")):
        s = ask(srv, hdr + build_request(
            "GET", "/", [("Host", "x"), ("X-Forwarded-For", "198.51.100.4"),
                         ("X-Forwarded-Proto", proto)]))
        assert (s["client"], s["scheme"]) == (["198.51.100.4", 0], want), proto
    s = ask(srv, hdr + build_request("GET", "/", [("Host", "x"), ("X-Forwarded-For", "198.51.100.4")]))
    assert (s["client"], s["scheme"]) == (["198.51.100.4", 0], "https")


def test_forwarded_headers_from_untrusted_proxy_source(srv):
    """The PROXY source is the peer that proxy headers are checked against:
    a client behind the proxy cannot make itself trusted."""
    data = b"PROXY TCP4 203.0.113.50 192.0.2.1 5 80\r\n" + build_request(
        "GET", "/", [("Host", "x"), ("X-Forwarded-For", "1.2.3.4"), ("X-Forwarded-Proto", "https")]
    )
    s = ask(srv, data)
    assert (s["client"], s["scheme"]) == (["203.0.113.50", 5], "http")


@pytest.mark.parametrize("allow, warning", [
    (" , ", r"--proxy-protocol with an empty --forwarded-allow-ips: no peer may send"),
    ("*", r"--forwarded-allow-ips '\*': every peer may say who the client is"),
])
def test_startup_warns_about_trust_lists_that_cannot_be_meant(server_factory, allow, warning):
    srv = server_factory(APP, "--proxy-protocol", "--forwarded-allow-ips", allow)
    srv.wait_log(r"WARNING pounce: " + warning)


def test_untrusted_peer_closed_at_accept(server_factory):
    srv = server_factory(APP, "--proxy-protocol", "--forwarded-allow-ips", "127.0.0.2, 10.0.0.0/8")
    refused(srv, b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + GET)
    # The same header from a listed peer (127.0.0.2, loopback too) is served.
    with socket.create_connection((srv.host, srv.port), source_address=("127.0.0.2", 0)) as s:
        s.sendall(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + GET_CLOSE)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert data.startswith(b"HTTP/1.1 200")
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["client"] == ["192.0.2.1", 1]


def test_refusals_logged_at_debug_only(server_factory):
    srv = server_factory(APP, "--proxy-protocol", "--log-level", "debug")
    refused(srv, GET)
    srv.wait_log(
        r"DEBUG pounce: PROXY protocol: closed a connection from 127\.0\.0\.1: "
        r"no PROXY protocol signature"
    )
    quiet = server_factory(APP, "--proxy-protocol")
    for _ in range(3):
        refused(quiet, GET)
    time.sleep(0.2)
    assert "PROXY protocol" not in quiet.log_text()


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_several_workers(server_factory, mode):
    srv = server_factory(APP, "--proxy-protocol", "--workers", "2", "--worker-mode", mode)
    for i in range(1, 11):
        assert ask(srv, v2(1, 0x11, inet(f"192.0.2.{i}", i)) + GET)["client"] == [f"192.0.2.{i}", i]


def test_off_by_default(server_factory):
    """Without --proxy-protocol a header is just a malformed request."""
    srv = server_factory(APP)
    with RawConn(srv.host, srv.port) as c:
        c.send(b"PROXY TCP4 192.0.2.1 192.0.2.2 1 2\r\n" + GET)
        assert c.read_response().status == 400


def test_unix_socket_listener(server_factory, tmp_path):
    """Behind a proxy on a Unix socket: 'unix' in the list trusts it."""
    path = str(tmp_path / "p.sock")
    srv = server_factory(APP, "--proxy-protocol", "--uds", path)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(5)
        s.connect(path)
        s.sendall(v2(1, 0x11, inet("192.0.2.77", 77)) + GET_CLOSE)
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    assert json.loads(data.split(b"\r\n\r\n", 1)[1])["client"] == ["192.0.2.77", 77]
    srv.wait_log(r'192\.0\.2\.77:77 - "GET / HTTP/1\.1" 200')


# ---- a real HAProxy ----------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def haproxy(srv, tmp_path_factory):
    exe = shutil.which("haproxy") or "/usr/sbin/haproxy"
    assert Path(exe).exists(), "haproxy is missing: `make deps` installs it"
    d = tmp_path_factory.mktemp("haproxy")
    ports = {name: free_port() for name in ("v1", "v2", "tls")}
    # HAProxy takes the certificate and its key in one file: the run's test
    # CA's server certificate (tests/tls_certs.py; no key in the repository).
    certs = shared_certs()
    pem = d / "haproxy.pem"
    pem.write_bytes(certs.cert.read_bytes() + certs.key.read_bytes())
    pem.chmod(0o600)
    cfg = d / "haproxy.cfg"
    cfg.write_text(
        f"""
global
    maxconn 200
    log stderr format short local0 info

defaults
    mode http
    log global
    option httplog
    timeout connect 2s
    timeout client 10s
    timeout server 10s

frontend v1
    bind 127.0.0.1:{ports["v1"]}
    default_backend v1
backend v1
    server s1 127.0.0.1:{srv.port} send-proxy

frontend v2
    bind 127.0.0.1:{ports["v2"]}
    default_backend v2
backend v2
    option httpchk GET /health
    server s2 127.0.0.1:{srv.port} send-proxy-v2 check check-send-proxy inter 300ms

frontend tls
    bind 127.0.0.1:{ports["tls"]} ssl crt {pem}
    default_backend tls
backend tls
    server s3 127.0.0.1:{srv.port} send-proxy-v2-ssl
"""
    )
    check = subprocess.run([exe, "-c", "-f", str(cfg)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    # Its log goes to a file: a pipe nobody reads could fill and stall it.
    log = open(d / "haproxy.log", "wb")
    proc = subprocess.Popen([exe, "-f", str(cfg), "-db"], stdout=log, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 10
        for port in ports.values():
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, (d / "haproxy.log").read_text()
                    assert time.monotonic() < deadline, "haproxy did not listen"
                    time.sleep(0.05)
        yield ports
    finally:
        proc.terminate()
        try:
            proc.wait(5)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def get_from(port: int, path: str = "/", *, tls: bool = False) -> tuple[dict, int]:
    """GET through HAProxy from 127.0.0.2; returns the scope and our port."""
    raw = socket.create_connection(("127.0.0.1", port), timeout=5, source_address=("127.0.0.2", 0))
    local_port = raw.getsockname()[1]
    sock = raw
    if tls:
        ctx = ssl.create_default_context(cafile=str(shared_certs().ca))
        sock = ctx.wrap_socket(raw, server_hostname="localhost")
    with sock:
        sock.sendall(build_request("GET", path, [("Host", "x"), ("Connection", "close")]))
        data = b""
        while True:
            try:
                chunk = sock.recv(65536)
            except ssl.SSLEOFError:
                break
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), data[:300]
    return json.loads(body), local_port


@pytest.mark.parametrize("which", ["v1", "v2"])
def test_haproxy_client_address(srv, haproxy, which):
    s, port = get_from(haproxy[which], f"/{which}")
    # HAProxy connected from 127.0.0.1; the client it names is 127.0.0.2.
    assert s["client"] == ["127.0.0.2", port]
    assert s["scheme"] == "http"
    srv.wait_log(rf'127\.0\.0\.2:{port} - "GET /{which} HTTP/1\.1" 200')


def test_haproxy_v2_ssl_says_https(srv, haproxy):
    s, port = get_from(haproxy["tls"], "/tls", tls=True)
    assert (s["client"], s["scheme"]) == (["127.0.0.2", port], "https")


def test_haproxy_health_check_is_local(srv, haproxy):
    """check-send-proxy sends PROXY v2 LOCAL: the check is answered, and
    its client is the socket's own peer (HAProxy, 127.0.0.1)."""
    srv.wait_log(r'127\.0\.0\.1:\d+ - "GET /health HTTP/1\.0" 200', timeout=5)
