"""What an idle connection costs the server (issue 17; docs/architecture.md,
"Memory").

A keep-alive connection waiting for its next request holds no buffer: its
read buffer went back to the worker's pool and its write buffer was freed
when the response was done, and the pn_conn itself (720 bytes) lives in the
worker's slab, out of the heap the request's Python objects churn in.
Measured at 10,000 by `make bench-idle`: 0.77 KiB per idle connection
(5.0 KiB before).  A WebSocket session between messages holds its buffers
no longer either (9.8 -> 5.8 KiB).  These tests open a few thousand idle
connections one after the other and bound what each adds to the server's
RSS with room for the allocator's noise, well under the old costs, then
check every connection still works after its buffers went.
"""

from __future__ import annotations

import os
import random
import resource

import pytest

from bench.idle_rss import tree_rss_kib
from bench.ws_bench import client_frame, handshake, read_frame
from tests.server import RawConn

pytestmark = [
    pytest.mark.pounce_only("the C runtime's buffer pool and connection slab"),
    pytest.mark.tcp_only("RSS per plain TCP connection; TLS sessions: tests/test_tls_idle.py"),
]

ASAN = os.environ.get("POUNCE_ASAN") == "1"
HTTP_APP = "tests.apps.asgi_http:app"
WS_APP = "tests.apps.ws_app:app"
WARM = 200
N_HTTP = 3000
N_WS = 800


@pytest.fixture(autouse=True)
def _fds():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 2 * N_HTTP + 500
    if hard < need:
        pytest.skip(f"RLIMIT_NOFILE hard limit {hard} < {need}: cannot hold the connections")
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    yield
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def _idle_http(srv, n: int) -> list[RawConn]:
    out = []
    for _ in range(n):
        c = RawConn(srv.host, srv.port, timeout=10)
        assert c.request("GET", "/").status == 200
        out.append(c)
    return out


def test_idle_keepalive_connections_hold_no_buffer(server_factory):
    srv = server_factory(HTTP_APP, "--keep-alive-timeout", "120", "--max-connections", "10000")
    conns = _idle_http(srv, WARM)  # the pool, the slab's first chunks, the app warm
    before = tree_rss_kib(srv.proc.pid)
    conns += _idle_http(srv, N_HTTP)
    after = tree_rss_kib(srv.proc.pid)
    per = (after - before) * 1024 / N_HTTP
    try:
        # 5.0 KiB each when a 4 KiB read buffer stayed with every connection
        # and connections sat in the malloc heap; ~0.8 KiB now.  Under
        # `make asan` RSS is ASan's shadow and quarantine: only the working
        # connections are checked there.
        if not ASAN:
            print(f"{per:.0f} bytes of RSS per idle keep-alive connection")
            assert per < 2048, f"{per:.0f} bytes per idle connection"
        # Every connection takes a buffer again with its next bytes: a
        # request, then on every 20th three pipelined ones and a large body.
        for c in conns:
            assert c.request("GET", "/").status == 200
        for c in conns[::20]:
            body = os.urandom(200_000)
            c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n" * 3)
            for _ in range(3):
                assert c.read_response().status == 200
            r = c.request("POST", "/echo", body=body)
            assert r.status == 200 and r.body == body
    finally:
        for c in conns:
            c.close()


def _idle_ws(port: int, n: int, rnd: random.Random) -> list:
    out = []
    for _ in range(n):
        s, rest, _ext = handshake(port, "/echo", deflate=False)
        buf = bytearray(rest)
        s.sendall(client_frame(b"hello", False, rnd))
        _b0, payload, _size = read_frame(s, buf)
        assert payload == b"hello"
        out.append((s, buf))
    return out


def test_idle_websocket_sessions_hold_no_buffer(server_factory):
    srv = server_factory(WS_APP, "--ws-ping-interval", "0", "--max-connections", "10000")
    rnd = random.Random(17)
    socks = _idle_ws(srv.port, WARM // 2, rnd)
    before = tree_rss_kib(srv.proc.pid)
    socks += _idle_ws(srv.port, N_WS, rnd)
    after = tree_rss_kib(srv.proc.pid)
    per = (after - before) * 1024 / N_WS
    try:
        # 9.8 KiB per session when a session kept its 4 KiB read buffer (and
        # its write buffer) between messages; ~5.8 KiB now, most of it the
        # app's Task, coroutine frame and waiting Future.
        if not ASAN:
            print(f"{per:.0f} bytes of RSS per idle WebSocket session")
            assert per < 9 * 1024, f"{per:.0f} bytes per idle WebSocket session"
        # Every session works after its buffers went, a large message too.
        for s, buf in socks:
            s.sendall(client_frame(b"again", False, rnd))
            assert read_frame(s, buf)[1] == b"again"
        big = bytes(rnd.choice(b"abcdefgh") for _ in range(100_000))  # text: valid UTF-8
        for s, buf in socks[::50]:
            s.sendall(client_frame(big, False, rnd))
            assert read_frame(s, buf)[1] == big
    finally:
        for s, _ in socks:
            s.close()
