"""--health-path: health checks answered by the server (issue 13, item 4).

GET/HEAD on the exact path get 200 "ok" while the server serves and 503
"draining" once it shuts down (SIGTERM), without calling the app; a reload's
drain (SIGHUP: the next generation serves) keeps answering 200.  The app
(tests/apps/shed.py) counts its calls.
"""

from __future__ import annotations

import signal
import time

import pytest

from tests.server import SERVER_KIND, build_request, get, run_to_exit

pytestmark = pytest.mark.skipif(SERVER_KIND != "pounce", reason="pounce's own options")

APP = "tests.apps.shed:app"
MODES = ["thread", "process"]


def _count(srv) -> int:
    resp = get(srv, "/count")
    assert resp.status == 200
    return int(resp.body)


def test_health_is_answered_without_the_app(server_factory):
    srv = server_factory(APP, "--workers", "1", "--health-path", "/healthz")
    with srv.connect() as c:
        for _ in range(3):  # one kept-alive connection serves them all
            resp = c.request("GET", "/healthz")
            assert (resp.status, resp.body) == (200, b"ok\n")
            assert resp.header("cache-control") == "no-store"
            assert resp.header("connection") is None
        resp = c.request("HEAD", "/healthz")
        assert (resp.status, resp.body) == (200, b"")
        assert resp.header("content-length") == "3"
        resp = c.request("GET", "/healthz?verbose=1")  # the query is ignored
        assert (resp.status, resp.body) == (200, b"ok\n")
        resp = c.request("POST", "/healthz")
        assert resp.status == 405 and resp.header("allow") == "GET, HEAD"
        resp = c.request("GET", "/healthz")  # still usable after the 405
        assert resp.status == 200
    assert _count(srv) == 0
    # Paths that merely start with the health path, or differ in case or
    # encoding, are the app's.
    for target in ("/healthz/", "/healthzz", "/healthz/x", "/HEALTHZ", "/health%7A"):
        resp = get(srv, target)
        assert (resp.status, resp.body) == (200, b"hello"), target
    assert _count(srv) == 5
    # Health checks write no access-log line; the app's requests do.
    srv.wait_log(r'"GET /health%7A HTTP/1\.1" 200', timeout=5)
    assert '"GET /healthz HTTP' not in srv.log_text()
    assert '"HEAD /healthz' not in srv.log_text()


@pytest.mark.parametrize("path", ["healthz", "/health z", "/healthz?x=1"])
def test_a_health_path_that_cannot_match_is_refused(path):
    rc, out = run_to_exit(APP, "--health-path", path, timeout=15)
    assert rc == 2 and "health_path must be a path starting with '/'" in out, (rc, out)


def test_unset_health_path_reaches_the_app(server_factory):
    srv = server_factory(APP, "--workers", "1")
    assert get(srv, "/healthz").body == b"hello"
    assert _count(srv) == 1


def test_health_is_never_shed(server_factory):
    srv = server_factory(
        APP, "--workers", "1", "--health-path", "/healthz", "--limit-concurrency", "1"
    )
    with srv.connect(timeout=10) as busy:
        busy.send(build_request("GET", "/slow?s=0.6"))
        time.sleep(0.2)
        assert get(srv, "/").status == 503
        assert get(srv, "/healthz").status == 200
        assert busy.read_response().status == 200


@pytest.mark.parametrize("mode", MODES)
def test_health_says_503_during_a_shutdown_drain(server_factory, mode):
    srv = server_factory(
        APP, "--workers", "1", "--worker-mode", mode, "--health-path", "/healthz",
        "--shutdown-timeout", "10",
    )
    with srv.connect(timeout=10) as pooled, srv.connect(timeout=10) as busy:
        assert pooled.request("GET", "/healthz").status == 200  # a balancer's pooled connection
        busy.send(build_request("GET", "/slow?s=2"))  # keeps the drain going
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log(r"SIGTERM received: shutting down", timeout=5)
        time.sleep(0.5)  # the order reaches the worker
        resp = pooled.request("GET", "/healthz")
        assert (resp.status, resp.body) == (503, b"draining\n")
        assert resp.header("cache-control") == "no-store"
        assert resp.header("connection") == "close"  # draining: no keep-alive
        assert pooled.wait_closed()
        assert busy.read_response().status == 200
    assert srv.wait(15) == 0


@pytest.mark.parametrize("mode", MODES)
def test_health_stays_200_during_a_reload_drain(server_factory, mode):
    srv = server_factory(
        APP, "--workers", "1", "--worker-mode", mode, "--health-path", "/healthz",
        "--keep-alive-timeout", "10",
    )
    with srv.connect(timeout=10) as pooled:
        assert pooled.request("GET", "/healthz").status == 200
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"reload: generation 2 \(pid \d+\) serves the new code", timeout=20)
        time.sleep(0.5)  # the old generation's worker has its order to drain
        # The old generation drains gently: the instance still serves (the new
        # generation does), so its pooled connection hears 200, then closes.
        resp = pooled.request("GET", "/healthz")
        assert (resp.status, resp.body) == (200, b"ok\n")
        assert resp.header("connection") == "close"
        assert pooled.wait_closed()
    resp = get(srv, "/healthz")
    assert resp.status == 200
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_health_stays_200_while_a_recycled_worker_drains(server_factory, mode):
    # --max-requests: the worker is replaced (the new one first), then drains
    # gently; the instance serves throughout, so health says 200.
    srv = server_factory(
        APP, "--workers", "1", "--worker-mode", mode, "--health-path", "/healthz",
        "--max-requests", "3", "--keep-alive-timeout", "10",
    )
    with srv.connect(timeout=10) as pooled:
        for _ in range(3):  # health checks are not requests the app served
            assert pooled.request("GET", "/").status == 200
        srv.wait_log(r"worker 0 replaced: the old one drains", timeout=20)
        time.sleep(0.5)
        resp = pooled.request("GET", "/healthz")
        assert (resp.status, resp.body) == (200, b"ok\n")
        assert resp.header("connection") == "close"
    assert get(srv, "/healthz").status == 200


@pytest.mark.parametrize("mode", MODES)
def test_a_shutdown_during_a_reload_drain_turns_health_to_503(server_factory, mode):
    srv = server_factory(
        APP, "--workers", "1", "--worker-mode", mode, "--health-path", "/healthz",
        "--keep-alive-timeout", "10",
    )
    with srv.connect(timeout=10) as pooled:
        assert pooled.request("GET", "/healthz").status == 200
        srv.proc.send_signal(signal.SIGHUP)
        srv.wait_log(r"reload: generation 2 \(pid \d+\) serves the new code", timeout=20)
        time.sleep(0.3)
        srv.proc.send_signal(signal.SIGTERM)  # the old generation is still draining
        srv.wait_log(r"SIGTERM received: shutting down", timeout=5)
        time.sleep(0.5)
        resp = pooled.request("GET", "/healthz")
        assert (resp.status, resp.body) == (503, b"draining\n")
    assert srv.wait(15) == 0
