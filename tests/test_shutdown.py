"""Graceful shutdown on SIGTERM/SIGINT: in-flight requests finish, the
process exits 0; a second SIGINT does not wait.  On SIGTERM (a service
manager, a load balancer's orchestrator) idle keep-alive connections are
not cut under a client that may be sending on them: their next request is
answered with Connection: close, or they close at their keep-alive
deadline.  On SIGINT (Ctrl-C) they close at once.  Every test starts its
own server, since each one ends it.  (docs/deployment.md, "Draining for
load balancers"; tests/test_master.py has the refused connections.)"""

import signal
import threading
import time
import uuid

import httpx
import pytest

from tests.server import is_clean_exit, wait_record

APP = "tests.apps.shutdown:app"


@pytest.fixture
def token():
    return uuid.uuid4().hex


class Background:
    """One HTTP request run in a thread, so the test can signal meanwhile."""

    def __init__(self, url):
        self.result = None
        self.thread = threading.Thread(target=self._run, args=(url,), daemon=True)
        self.thread.start()

    def _run(self, url):
        try:
            with httpx.Client(timeout=20) as client:
                self.result = client.get(url)
        except Exception as exc:  # noqa: BLE001 - the test inspects it
            self.result = exc

    def join(self, timeout):
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "request still running"
        return self.result


@pytest.mark.pounce_only("uvicorn closes idle keep-alive connections at once on SIGTERM")
def test_sigterm_lets_in_flight_request_finish(server_factory, token, record_dir):
    srv = server_factory(APP, "--keep-alive-timeout", "30")
    idle = srv.connect()
    assert idle.request("GET", "/").body == b"ok"  # now an idle keep-alive conn
    req = Background(f"{srv.url}/slow?s=3&token={token}")
    wait_record(record_dir, token, "started")
    srv.proc.send_signal(signal.SIGTERM)
    # The idle connection is not cut: its next request (sent while the slow
    # one runs) is answered, and the answer says the connection ends.
    assert not idle.wait_closed(0.5), "idle keep-alive connection cut on SIGTERM"
    resp = idle.request("GET", "/")
    assert (resp.status, resp.body) == (200, b"ok")
    assert resp.header("connection") == "close"
    assert idle.wait_closed(2)
    resp = req.join(10)
    assert isinstance(resp, httpx.Response), resp
    assert (resp.status_code, resp.text) == (200, "done")
    assert is_clean_exit(srv.wait(10))


@pytest.mark.pounce_only("uvicorn closes idle connections at once on SIGTERM")
def test_sigterm_closes_idle_connections_at_their_keep_alive_deadline(server_factory):
    srv = server_factory(APP, "--keep-alive-timeout", "1.5")
    conns = [srv.connect() for _ in range(3)]
    for c in conns:
        assert c.request("GET", "/").body == b"ok"
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGTERM)
    for c in conns:
        assert c.wait_closed(5)
    assert time.monotonic() - t0 > 1.0, "idle connections closed before their deadline"
    assert is_clean_exit(srv.wait(5))
    assert time.monotonic() - t0 < 4


def test_sigint_with_only_idle_connections_exits_quickly(server_factory):
    srv = server_factory(APP, "--keep-alive-timeout", "60")
    conns = [srv.connect() for _ in range(3)]
    for c in conns:
        assert c.request("GET", "/").body == b"ok"
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGINT, timeout=5)
    assert is_clean_exit(rc, signal.SIGINT)
    assert time.monotonic() - t0 < 3
    for c in conns:
        assert c.wait_closed(1)


def test_sigint_is_graceful_too(server_factory, token, record_dir):
    srv = server_factory(APP)
    req = Background(f"{srv.url}/slow?s=0.5&token={token}")
    wait_record(record_dir, token, "started")
    srv.proc.send_signal(signal.SIGINT)
    resp = req.join(10)
    assert isinstance(resp, httpx.Response) and resp.text == "done", resp
    assert is_clean_exit(srv.wait(10), signal.SIGINT)


def test_second_sigint_exits_at_once(server_factory, token, record_dir):
    srv = server_factory(APP)
    req = Background(f"{srv.url}/slow?s=30&token={token}")
    wait_record(record_dir, token, "started")
    srv.proc.send_signal(signal.SIGINT)
    time.sleep(0.5)
    assert srv.proc.poll() is None, "first SIGINT must wait for the in-flight request"
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    assert srv.wait(3) is not None, "second SIGINT must not wait"
    assert time.monotonic() - t0 < 3
    req.join(5)  # the client sees the connection end rather than hanging


def test_shutdown_timeout_bounds_the_wait(server_factory, token, record_dir):
    srv = server_factory(APP, "--shutdown-timeout", "1")
    req = Background(f"{srv.url}/slow?s=30&token={token}")
    wait_record(record_dir, token, "started")
    t0 = time.monotonic()
    rc = srv.stop(signal.SIGTERM, timeout=5)
    assert rc is not None, "server did not exit after --shutdown-timeout"
    assert time.monotonic() - t0 < 3
    req.join(5)
