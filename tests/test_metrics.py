"""--metrics-port through the real server: counters scraped from /metrics,
parsed with prometheus_client's text parser, checked against exactly what
the test sent, with two workers in both worker modes.

Every server here listens on 127.0.0.1; every load is a fixed number of
requests; every wait has a deadline."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections import Counter
from pathlib import Path

import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.serial_tls import serial_client_context
from tests.server import ROOT, TLS, VENV_BIN, RawConn, build_request, tls_certs, wait_record

APP = "tests.apps.metrics_app:app"
MODES = ["thread", "process"]
pytestmark = pytest.mark.pounce_only("Pounce's --metrics-port")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start(server_factory, *args, mode="thread", workers=2, metrics=True):
    port = free_port() if metrics else 0
    extra = ["--metrics-port", str(port)] if metrics else []
    srv = server_factory(APP, "--workers", str(workers), "--worker-mode", mode, *extra, *args)
    srv.metrics_port = port
    if metrics:
        _wait_for(lambda: _scrape_or_none(srv) is not None, 10)
    return srv


def _scrape_or_none(srv) -> str | None:
    try:
        return scrape_text(srv)
    except OSError:
        return None


def scrape_text(srv, path="/metrics") -> str:
    with urllib.request.urlopen(f"http://127.0.0.1:{srv.metrics_port}{path}", timeout=5) as r:
        assert r.status == 200
        assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        return r.read().decode()


def scrape(srv) -> dict[tuple[str, tuple], float]:
    """{(sample name, sorted labels): value} of one scrape, through the parser."""
    out = {}
    for fam in text_string_to_metric_families(scrape_text(srv)):
        for s in fam.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def total(m, name, **labels) -> float:
    """Sum of the samples of `name` whose labels include `labels`."""
    want = set(labels.items())
    return sum(v for (n, ls), v in m.items() if n == name and want <= set(ls))


def _wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while True:
        v = pred()
        if v or time.monotonic() > deadline:
            return v
        time.sleep(step)


class CountingConn(RawConn):
    """A RawConn that counts the bytes it sent and received."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.sent = self.received = 0

    def send(self, data: bytes) -> None:
        self.sent += len(data)
        super().send(data)

    def _fill(self) -> bool:
        before = len(self.buf)
        ok = super()._fill()
        self.received += len(self.buf) - before
        return ok


#: (method, status, count) sent by each client.
PLAN = [
    ("GET", 200, 12),
    ("POST", 201, 6),
    ("PUT", 404, 4),
    ("DELETE", 500, 3),
    ("PATCH", 302, 2),
    ("OPTIONS", 204, 2),
    ("HEAD", 200, 3),
    ("PROPFIND", 200, 1),
]
CLIENTS = 6
CLASS = {2: "2xx", 3: "3xx", 4: "4xx", 5: "5xx"}


def _client(srv, stats, errors):
    try:
        with CountingConn(srv.host, srv.port) as c:
            for method, status, n in PLAN:
                for _ in range(n):
                    r = c.request(method, f"/status/{status}")
                    assert r.status == status
            # Larger than the server coalesces: written at once, not buffered.
            assert len(c.request("GET", "/big?size=200000").body) == 200000
            c.send(build_request("GET", "/status/200", [("Connection", "close")]))
            assert c.read_response().status == 200
            c.read_to_eof()
            stats.append((c.sent, c.received))
    except BaseException as e:  # noqa: BLE001 - reported by the test
        errors.append(e)


@pytest.mark.parametrize("mode", MODES)
def test_counters_equal_the_requests_sent(server_factory, mode):
    srv = start(server_factory, mode=mode)
    stats, errors = [], []
    threads = [threading.Thread(target=_client, args=(srv, stats, errors)) for _ in range(CLIENTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors, errors[:3]
    expected = Counter()
    for method, status, n in PLAN:
        label = method if method != "PROPFIND" else "other"
        expected[(label, CLASS[status // 100])] += n * CLIENTS
    expected[("GET", "2xx")] += 2 * CLIENTS  # /big and the closing request
    n_requests = sum(expected.values())

    # The last request's app call may end a moment after its response left.
    m = _wait_for(lambda: (m := scrape(srv)) and
                  total(m, "pounce_requests_total") == n_requests and m, 5)
    assert m, scrape_text(srv)
    for (method, cls), n in expected.items():
        assert total(m, "pounce_requests_total", method=method, status_class=cls) == n
        assert total(m, "pounce_worker_requests_total", method=method, status_class=cls) == n
    assert total(m, "pounce_request_duration_seconds_count") == n_requests
    assert total(m, "pounce_request_duration_seconds_bucket", le="+Inf") == n_requests
    assert total(m, "pounce_worker_request_duration_seconds_count") == n_requests
    assert 0 < total(m, "pounce_request_duration_seconds_sum") < 30
    assert total(m, "pounce_connections_total") == CLIENTS
    assert total(m, "pounce_worker_connections_total") == CLIENTS
    assert total(m, "pounce_received_bytes_total") == sum(s for s, _ in stats)
    assert total(m, "pounce_sent_bytes_total") == sum(r for _, r in stats)
    m = _wait_for(lambda: (m := scrape(srv)) and total(m, "pounce_connections_open") == 0 and m, 5)
    assert m and total(m, "pounce_requests_in_flight") == 0
    assert total(m, "pounce_workers") == 2
    workers = {dict(ls).get("worker") for (n, ls), _ in m.items()
               if n == "pounce_worker_connections_total"}
    assert workers == {"0", "1"}
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_in_flight_and_open_connections_follow_slow_requests(server_factory, record_dir, mode):
    srv = start(server_factory, mode=mode)
    token = uuid.uuid4().hex
    conns = [RawConn(srv.host, srv.port) for _ in range(3)]
    try:
        for c in conns:
            c.send(build_request("GET", f"/hold?token={token}"))
        assert _wait_for(lambda: total(scrape(srv), "pounce_requests_in_flight") == 3, 10)
        m = scrape(srv)
        assert total(m, "pounce_connections_open") == 3
        assert total(m, "pounce_worker_requests_in_flight") == 3
        assert total(m, "pounce_requests_total") == 0  # counted when they end
        (Path(record_dir) / f"{token}.release").touch()
        for c in conns:
            assert c.read_response().status == 200
        assert _wait_for(lambda: total(scrape(srv), "pounce_requests_in_flight") == 0, 5)
        assert total(scrape(srv), "pounce_connections_open") == 3  # keep-alive
    finally:
        for c in conns:
            c.close()
    assert _wait_for(lambda: total(scrape(srv), "pounce_connections_open") == 0, 5)
    assert total(scrape(srv), "pounce_requests_total", method="GET", status_class="2xx") == 3


@pytest.mark.parametrize("mode", MODES)
def test_websocket_sessions_and_messages(server_factory, mode):
    from websockets.sync.client import connect

    srv = start(server_factory, mode=mode)
    url = f"{'wss' if TLS else 'ws'}://{srv.host}:{srv.port}/echo"
    # Over TLS the sync client's SSL objects need a lock: tests/serial_tls.py.
    kw = {"ssl": serial_client_context()} if TLS else {}
    with connect(url, **kw) as a, connect(url, **kw) as b:
        for ws in (a, b):
            for i in range(3):
                ws.send(f"m{i}")
                assert ws.recv(timeout=5) == f"m{i}"
        b.send(b"bin")
        assert b.recv(timeout=5) == b"bin"
        m = scrape(srv)
        assert total(m, "pounce_websocket_sessions_total") == 2
        assert total(m, "pounce_websocket_sessions_open") == 2
        assert total(m, "pounce_websocket_messages_received_total") == 7
        assert total(m, "pounce_websocket_messages_sent_total") == 7
        assert total(m, "pounce_worker_websocket_messages_sent_total") == 7
    assert _wait_for(lambda: total(scrape(srv), "pounce_websocket_sessions_open") == 0, 5)
    m = scrape(srv)
    assert total(m, "pounce_websocket_sessions_total") == 2
    assert total(m, "pounce_requests_total") == 0  # sessions are not HTTP requests


def test_compression_savings_and_early_answers(server_factory):
    srv = start(server_factory)
    with RawConn(srv.host, srv.port) as c:
        r = c.request("GET", "/big", [("Accept-Encoding", "gzip")])
        assert r.header("content-encoding") == "gzip"
        r = c.request("GET", "/big")  # not compressed: counts for nothing
        assert r.header("content-encoding") is None
    m = _wait_for(lambda: (m := scrape(srv)) and total(m, "pounce_requests_total") == 2 and m, 5)
    assert m
    assert total(m, "pounce_compression_input_bytes_total") == 20000
    out = total(m, "pounce_compression_output_bytes_total")
    assert 0 < out < 2000
    assert total(m, "pounce_compression_saved_bytes") == 20000 - out
    # A request the server refuses before any app call (a bad head: 400).
    with RawConn(srv.host, srv.port) as c:
        c.send(b"GET / HTTP/1.1\r\nHost: x\r\nBad Header: y\r\n\r\n")
        assert c.read_response().status == 400
    assert _wait_for(lambda: total(scrape(srv), "pounce_server_responses_total",
                                   status_class="4xx") == 1, 5)
    assert total(scrape(srv), "pounce_requests_total") == 2


@pytest.mark.parametrize("mode", MODES)
def test_recycled_workers_keep_the_totals(server_factory, mode):
    """--max-requests replaces workers: restarts are counted, and no counter
    of any scrape is ever below the one before (the totals survive)."""
    srv = start(server_factory, "--max-requests", "20", mode=mode)
    seen: dict = {}
    sent = 0
    went_down = []

    def check():
        m = scrape(srv)
        for key, v in m.items():
            if key[0].endswith(("_total", "_count", "_bucket")) and v < seen.get(key, 0):
                went_down.append((key, seen[key], v))
            seen[key] = v
        return m

    def most_starts(m):
        return max(v for (n, _), v in m.items() if n == "pounce_worker_starts_total")

    # Until a replacement has reused the slot of a worker recycled before
    # (whose totals it must carry on), within a bound.
    for _ in range(15):
        for _ in range(25):
            # A connection each: a recycled worker closes its keep-alive ones.
            with RawConn(srv.host, srv.port) as c:
                assert c.request("GET", "/status/200").status == 200
            sent += 1
        m = check()
        if total(m, "pounce_worker_restarts_total") >= 3 and most_starts(m) >= 2:
            break
        # Let recycled workers finish draining, so that their slots are free.
        _wait_for(lambda: total(check(), "pounce_workers") == 2, 10)
    m = _wait_for(lambda: (m := check()) and total(m, "pounce_requests_total") == sent and m, 15)
    assert m, (sent, scrape_text(srv))
    assert most_starts(m) >= 2, scrape_text(srv)
    # Recycled workers drain, then exit: their slots are free again.
    assert _wait_for(lambda: total(check(), "pounce_workers") == 2, 10)
    assert not went_down, went_down[:5]


def test_only_metrics_is_served(server_factory):
    srv = start(server_factory, workers=1)
    with pytest.raises(urllib.error.HTTPError) as e:
        scrape_text(srv, "/")
    assert e.value.code == 404
    req = urllib.request.Request(f"http://127.0.0.1:{srv.metrics_port}/metrics", method="POST",
                                 data=b"")
    with pytest.raises(urllib.error.HTTPError) as e:
        urllib.request.urlopen(req, timeout=5)
    assert e.value.code == 405
    assert "# TYPE pounce_requests_total counter" in scrape_text(srv, "/metrics?x=1")


def _listening_ports(pid: int) -> set[int]:
    """TCP ports in LISTEN held by pid and its descendants."""
    pids, todo = set(), [pid]
    while todo:
        p = todo.pop()
        pids.add(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo += [int(x) for x in f.read().split()]
        except OSError:
            pass
    inodes = set()
    for p in pids:
        try:
            for fd in os.listdir(f"/proc/{p}/fd"):
                try:
                    link = os.readlink(f"/proc/{p}/fd/{fd}")
                except OSError:
                    continue
                if link.startswith("socket:["):
                    inodes.add(link[8:-1])
        except OSError:
            pass
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in f.readlines()[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@pytest.mark.parametrize("mode", MODES)
def test_off_opens_no_port(server_factory, mode):
    srv = start(server_factory, mode=mode, metrics=False)
    assert _listening_ports(srv.proc.pid) == {srv.port}
    on = start(server_factory, mode=mode)
    assert _listening_ports(on.proc.pid) == {on.port, on.metrics_port}


def test_a_taken_metrics_port_fails_the_start():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        p = subprocess.run(
            [str(VENV_BIN / "pounce"), APP, "--port", "0", "--metrics-port", str(port)],
            cwd=ROOT, capture_output=True, text=True, timeout=30,
        )
    assert p.returncode == 1
    assert f"cannot listen on 127.0.0.1:{port} (--metrics-port)" in p.stderr


def test_reload_restarts_the_counters_and_keeps_the_port(server_factory):
    srv = start(server_factory, workers=1, mode="process")
    with RawConn(srv.host, srv.port) as c:
        for _ in range(5):
            assert c.request("GET", "/").status == 200
    assert _wait_for(lambda: total(scrape(srv), "pounce_requests_total") == 5, 5)
    (old_generation,) = _children(srv.proc.pid)
    os.kill(srv.proc.pid, signal.SIGHUP)
    # The new generation serves /metrics from zero as soon as its workers
    # serve; the old one keeps accepting on the shared app port until the
    # master tells it to drain, so a request sent in that window would be
    # counted by the old table. Wait for the old generation to be gone.
    assert _wait_for(lambda: old_generation not in _children(srv.proc.pid), 15)
    assert _wait_for(lambda: (m := _scrape_or_none(srv)) is not None and
                     "pounce_requests_total{" not in m, 15)
    with RawConn(srv.host, srv.port) as c:
        assert c.request("GET", "/").status == 200
    assert _wait_for(lambda: total(scrape(srv), "pounce_requests_total") == 1, 5)
    assert srv.stop() == 0


def test_pounce_run_serves_metrics(tmp_path):
    """pounce.run() (no master): the supervisor binds and serves it."""
    port, mport = free_port(), free_port()
    # POUNCE_TEST_TLS=1: the app port speaks TLS (the metrics port never does).
    tls = (f", ssl_certfile={str(tls_certs().cert)!r}, ssl_keyfile={str(tls_certs().key)!r}"
           if TLS else "")
    code = (
        "import pounce\n"
        "from tests.apps.metrics_app import app\n"
        f"pounce.run(app, host='127.0.0.1', port={port}, metrics_port={mport}, workers=1{tls})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        class S:
            metrics_port = mport
        assert _wait_for(lambda: _scrape_or_none(S) is not None, 15)
        with RawConn("127.0.0.1", port) as c:
            assert c.request("GET", "/status/418").status == 418
        assert _wait_for(lambda: total(scrape(S), "pounce_requests_total", status_class="4xx")
                         == 1, 5)
    finally:
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except OSError:
        pass
    return out


def test_a_killed_worker_leaves_no_stale_gauges(server_factory, record_dir):
    """A worker process killed in the middle of a request cannot clear its
    gauges: the supervisor does, and keeps its counters."""
    srv = start(server_factory, workers=1, mode="process")
    with RawConn(srv.host, srv.port) as c:
        assert c.request("GET", "/").status == 200
    token = uuid.uuid4().hex
    held = RawConn(srv.host, srv.port)
    try:
        held.send(build_request("GET", f"/hold?token={token}"))
        wait_record(record_dir, token, "start")
        m = scrape(srv)
        assert total(m, "pounce_requests_in_flight") == 1
        assert total(m, "pounce_connections_open") == 1
        (generation,) = _children(srv.proc.pid)
        (worker,) = _children(generation)
        os.kill(worker, signal.SIGKILL)
        assert _wait_for(lambda: total(scrape(srv), "pounce_worker_restarts_total") == 1, 10)
        m = _wait_for(lambda: (m := scrape(srv)) and total(m, "pounce_workers") == 1 and m, 10)
        assert total(m, "pounce_requests_in_flight") == 0
        assert total(m, "pounce_connections_open") == 0
        assert total(m, "pounce_requests_total") == 1  # the killed worker's count stays
    finally:
        held.close()
