"""--limit-concurrency: load shedding answered by the server (issue 13, item 6).

Beyond N requests in flight per worker (app calls running), the server
answers 503 with Retry-After at once, without calling the app; a WebSocket
handshake too.  The app (tests/apps/shed.py) counts its calls, so "without
calling the app" is checked, not assumed.  One worker per server: the limit
is per worker.
"""

from __future__ import annotations

import threading
import time

import pytest

from tests.server import SERVER_KIND, RawConn, build_request, get
from tests.ws_client import new_key

pytestmark = pytest.mark.skipif(SERVER_KIND != "pounce", reason="pounce's own options")

APP = "tests.apps.shed:app"
MODES = ["thread", "process"]


def _count(srv) -> int:
    resp = get(srv, "/count")
    assert resp.status == 200
    return int(resp.body)


def _burst(srv, n: int, target: str) -> list[tuple[int, str | None, float]]:
    """n concurrent requests, each on its own connection: (status,
    Retry-After, seconds from send to the whole response)."""
    results: list = [None] * n
    conns = [srv.connect(timeout=10) for _ in range(n)]
    go = threading.Barrier(n)

    def one(i: int) -> None:
        go.wait()
        t0 = time.monotonic()
        resp = conns[i].request("GET", target)
        results[i] = (resp.status, resp.header("retry-after"), time.monotonic() - t0)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(15)
    for c in conns:
        c.close()
    return results


@pytest.mark.parametrize("mode", MODES)
def test_burst_beyond_the_limit_is_shed_at_once(server_factory, mode):
    srv = server_factory(APP, "--workers", "1", "--worker-mode", mode, "--limit-concurrency", "2")
    results = _burst(srv, 8, "/slow?s=1.5")
    served = [r for r in results if r[0] == 200]
    shed = [r for r in results if r[0] == 503]
    assert len(served) == 2 and len(shed) == 6, results
    assert all(r[1] == "1" for r in shed), results  # Retry-After: 1
    assert all(r[2] < 0.5 for r in shed), results  # at once, not after the slow ones
    assert all(r[2] >= 1.4 for r in served), results
    assert _count(srv) == 2  # the app was called for the two served requests only
    # The 503s are in the access log, with method and target.
    srv.wait_log(r'"GET /slow\?s=1\.5 HTTP/1\.1" 503', timeout=5)
    # No leak: the slots are free again after the burst, every time.
    for _ in range(2):
        results = _burst(srv, 2, "/slow?s=0.2")
        assert [r[0] for r in results] == [200, 200], results
    assert _count(srv) == 6


def test_a_shed_request_keeps_its_connection(server_factory):
    srv = server_factory(APP, "--workers", "1", "--limit-concurrency", "1")
    with srv.connect(timeout=10) as busy, srv.connect(timeout=10) as c:
        busy.send(build_request("GET", "/slow?s=0.6"))
        time.sleep(0.2)
        resp = c.request("GET", "/")
        assert resp.status == 503 and resp.header("retry-after") == "1"
        assert resp.header("connection") != "close"
        assert busy.read_response().status == 200
        # The same connection, kept alive, is served once the slot is free.
        resp = c.request("GET", "/")
        assert (resp.status, resp.body) == (200, b"hello")
    assert _count(srv) == 2


def test_a_shed_request_with_a_body_closes(server_factory):
    # The body was not read: the connection cannot be reused (as with the
    # server's other early answers).
    srv = server_factory(APP, "--workers", "1", "--limit-concurrency", "1")
    with srv.connect(timeout=10) as busy, srv.connect(timeout=10) as c:
        busy.send(build_request("GET", "/slow?s=0.6"))
        time.sleep(0.2)
        resp = c.request("POST", "/body", body=b"x" * 100)
        assert resp.status == 503 and resp.header("connection") == "close"
        assert c.wait_closed()
        assert busy.read_response().status == 200
    assert _count(srv) == 1


def test_a_websocket_handshake_beyond_the_limit_gets_503(server_factory):
    srv = server_factory(APP, "--workers", "1", "--limit-concurrency", "1")
    handshake = [
        ("Upgrade", "websocket"),
        ("Connection", "Upgrade"),
        ("Sec-WebSocket-Key", new_key()),
        ("Sec-WebSocket-Version", "13"),
    ]
    with srv.connect(timeout=10) as busy, srv.connect(timeout=10) as c:
        busy.send(build_request("GET", "/slow?s=0.6"))
        time.sleep(0.2)
        resp = c.request("GET", "/ws", handshake)
        assert resp.status == 503 and resp.header("retry-after") == "1"
        assert busy.read_response().status == 200
    # A WebSocket session is a request in flight too: while one is open,
    # the next request is shed.
    with srv.connect(timeout=10) as ws:
        resp = ws.request("GET", "/ws", handshake)
        assert resp.status == 101
        assert get(srv, "/").status == 503
    assert _count(srv) == 2  # the slow request and the accepted session


@pytest.mark.parametrize("mode", MODES)
def test_the_limit_frees_up_after_clients_go_away(server_factory, mode):
    srv = server_factory(APP, "--workers", "1", "--worker-mode", mode, "--limit-concurrency", "1")
    # A client that leaves in the middle of its request body: the app gets
    # http.disconnect and ends, and its slot is free again.
    c = srv.connect()
    c.send(build_request("POST", "/body", [("Content-Length", "1000")]) + b"x" * 10)
    time.sleep(0.2)
    assert get(srv, "/").status == 503
    c.close()
    deadline = time.monotonic() + 3
    while get(srv, "/").status != 200:
        assert time.monotonic() < deadline, "the slot of a gone client was never freed"
        time.sleep(0.05)
    # A client that leaves while the app is working: the slot is held until
    # the app returns, then freed.
    c = srv.connect()
    c.send(build_request("GET", "/slow?s=0.5"))
    time.sleep(0.2)
    c.close()
    time.sleep(0.6)
    assert [r[0] for r in _burst(srv, 1, "/")] == [200]
