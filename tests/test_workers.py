"""Workers and the supervisor, through the real server: distinct workers in
both modes, zero-downtime SIGHUP reload with new code under load (the main
PID stays), graceful SIGTERM with requests in flight, replacement of crashed
and killed workers, --max-requests recycling, SIGTTIN/SIGTTOU.

The process the test starts is the master; the workers run in its child,
the generation (threads in it, or its own children): see _generation()."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.server import RawConn, build_request, http_connection, wait_record

APP = "tests.apps.workers:app"
MODES = ["thread", "process"]
pytestmark = pytest.mark.pounce_only("Pounce's worker supervisor")


def _get(srv, path="/", timeout=10.0):
    c = http_connection(srv.host, srv.port, timeout=timeout)
    try:
        c.request("GET", path)
        r = c.getresponse()
        body = r.read()
        assert r.status == 200, (r.status, body)
        return json.loads(body)
    finally:
        c.close()


def _children(pid: int) -> list[int]:
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(x) for x in f.read().split()]
    except (FileNotFoundError, ProcessLookupError):  # gone meanwhile
        pass
    return out


def _generation(srv, timeout: float = 10.0) -> int:
    """The pid of the master's one child, the generation serving the app."""
    kids = _wait_for(lambda: (k := _children(srv.proc.pid)) and len(k) == 1 and k, timeout)
    assert kids, f"the master has children {_children(srv.proc.pid)}, not one generation"
    return kids[0]


def _worker_pids(srv) -> list[int]:
    """Process mode: the worker processes (the generation's children)."""
    return [w for g in _children(srv.proc.pid) for w in _children(g)]


def _wait_for(pred, timeout=10.0, step=0.05):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie (exited, not yet reaped by its parent) counts as gone.
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(")")[-1].split()[0] == "Z"
    except (FileNotFoundError, ProcessLookupError):  # reaped meanwhile (ESRCH on read)
        return True


def release(record_dir, token: str) -> None:
    """Let the /hold or /block request with `token` finish."""
    (Path(record_dir) / f"{token}.release").touch()


def started_on(record_dir, token: str, timeout: float = 10.0) -> int:
    """Wait until the /hold or /block request with `token` runs in the app;
    return the id of the worker running it."""
    lines = wait_record(record_dir, token, "start", timeout=timeout)
    return int(next(line for line in lines if line.startswith("start")).split()[1])


def conn_per_worker(srv, record_dir) -> dict[int, tuple[RawConn, dict]]:
    """One idle keep-alive connection on each worker of a two-worker server
    with a shared listening socket, and the answer each got:
    {worker id: (connection, answer)}.

    Found without relying on the kernel's choice: a /block request stops
    the event loop of the worker that took it, so the next connection can
    only be accepted and answered by the other worker.  Fails if it is
    answered by the blocked worker (after the block) or not at all."""
    token = uuid.uuid4().hex
    first = RawConn(srv.host, srv.port, timeout=10)
    try:
        first.send(build_request("GET", f"/block?token={token}"))
        blocked = started_on(record_dir, token)
        second = RawConn(srv.host, srv.port, timeout=10)
        try:
            r2 = second.request("GET", "/")
        except BaseException as e:
            second.close()
            if isinstance(e, (socket.timeout, TimeoutError)):
                raise AssertionError(
                    f"no other worker answered while worker {blocked} was blocked"
                ) from None
            raise
        finally:
            release(record_dir, token)
        r1 = first.read_response()
    except BaseException:
        first.close()
        raise
    assert r1.status == 200 and r2.status == 200, (r1.status, r2.status)
    a1, a2 = json.loads(r1.body), json.loads(r2.body)
    assert a1["worker"] == blocked
    assert a2["worker"] != blocked, f"worker {blocked} answered while it was blocked"
    return {a1["worker"]: (first, a1), a2["worker"]: (second, a2)}


def _new_connections_not_served(
    srv, n: int = 3, wait: float = 1.0
) -> tuple[list[str], list[RawConn]]:
    """Open `n` new connections and send a request on each.  Returns how each
    was not served, "refused", "closed" (EOF or reset) or "unanswered"
    (nothing within `wait` seconds), and the connections still open.  An
    answer fails, unless it is a 503 (turned away by the server, not served
    by the app).

    The server's processes are stopped (SIGSTOP) while the connections are
    made and the requests sent: the kernel completes the handshakes and
    queues the requests, so a worker that wrongly accepts finds each request
    already there and serves it, instead of closing an idle-looking
    connection.  Without the stop that race makes the check hit or miss."""
    outcomes: list[str] = []
    sent: list[RawConn] = []
    os.killpg(srv.proc.pid, signal.SIGSTOP)
    try:
        for _ in range(n):
            try:
                c = RawConn(srv.host, srv.port, timeout=wait)
            except ConnectionRefusedError:
                outcomes.append("refused")
                continue
            try:
                c.send(build_request("GET", "/"))
            except (ConnectionResetError, BrokenPipeError):
                outcomes.append("closed")
                c.close()
                continue
            sent.append(c)
    finally:
        os.killpg(srv.proc.pid, signal.SIGCONT)
    still_open = []
    deadline = time.monotonic() + wait
    for c in sent:
        c.sock.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            data = c.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            outcomes.append("unanswered")
            still_open.append(c)
            continue
        except ConnectionResetError:
            data = b""
        c.close()
        if data:
            assert data.startswith(b"HTTP/1.1 503 "), f"a new connection was served: {data[:300]!r}"
        outcomes.append("503" if data else "closed")
    return outcomes, still_open


class Load:
    """Keep-alive clients hammering the server from threads; counts failures."""

    def __init__(self, srv, clients=4, path="/"):
        self.srv, self.path = srv, path
        self.ok = 0
        self.failures: list[str] = []
        self.versions: list[str] = []
        self.workers: set = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._threads = [threading.Thread(target=self._run, daemon=True) for _ in range(clients)]

    def _run(self):
        conn = http_connection(self.srv.host, self.srv.port, timeout=10)
        while not self._stop.is_set():
            try:
                conn.request("GET", self.path)
                r = conn.getresponse()
                body = r.read()
                if r.status != 200:
                    raise AssertionError(f"status {r.status}")
                data = json.loads(body)
                with self._lock:
                    self.ok += 1
                    self.versions.append(data["version"])
                    self.workers.add((data["pid"], data["worker"]))
            except Exception as e:  # noqa: BLE001 - every failure counts
                with self._lock:
                    self.failures.append(f"{type(e).__name__}: {e}")
                conn.close()
                conn = http_connection(self.srv.host, self.srv.port, timeout=10)
        conn.close()

    def __enter__(self):
        for t in self._threads:
            t.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        for t in self._threads:
            t.join(15)


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("reuse_port", [False, True], ids=["shared", "reuse-port"])
def test_requests_are_served_by_distinct_workers(server_factory, mode, reuse_port):
    extra = ("--reuse-port",) if reuse_port else ()
    srv = server_factory(APP, "--workers", "3", "--worker-mode", mode, *extra)
    assert f"3 workers, {mode} mode" in srv.log_text()
    # Concurrent slow requests: a busy worker leaves new connections to the
    # others.
    # Concurrent slow requests, in rounds until every worker was seen (which
    # worker wins a connection is the kernel's choice; bounded at 8 rounds).
    results = []
    with ThreadPoolExecutor(24) as pool:
        for _ in range(8):
            results += pool.map(lambda _: _get(srv, "/slow?t=0.2"), range(24))
            if {r["worker"] for r in results} == {0, 1, 2}:
                break
    ids = {r["worker"] for r in results}
    assert ids == {0, 1, 2}, ids
    pids = {r["pid"] for r in results}
    generation = _generation(srv)
    assert generation != srv.proc.pid  # the master never runs the app
    if mode == "process":
        assert len(pids) == 3 and not pids & {srv.proc.pid, generation}
        assert pids == set(_worker_pids(srv))
    else:
        assert pids == {generation}
        assert len({r["thread"] for r in results}) == 3
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_sigterm_lets_requests_in_flight_finish(server_factory, record_dir, mode):
    srv = server_factory(
        APP, "--workers", "2", "--worker-mode", mode, "--keep-alive-timeout", "60",
    )
    # An idle keep-alive connection on each worker.
    idle = conn_per_worker(srv, record_dir)
    tokens = [uuid.uuid4().hex for _ in range(4)]
    with ThreadPoolExecutor(4) as pool:
        try:
            # Four requests in flight, each until the test releases it.
            futs = [pool.submit(_get, srv, f"/hold?token={t}", 30.0) for t in tokens]
            for t in tokens:
                started_on(record_dir, t)
            srv.proc.send_signal(signal.SIGTERM)
            srv.wait_log("SIGTERM received")
            # During the drain: new connections are refused, at once.
            how, waiting = _new_connections_not_served(srv)
            assert how == ["refused"] * 3 and not waiting, how
            # Each worker answers its idle connection's requests, and once
            # its drain began (the order travels master -> generation ->
            # worker: milliseconds) says that the connection ends; it is
            # never cut under a client that may be sending on it.
            for w, (c, _) in idle.items():
                for _ in range(50):
                    r = c.request("GET", "/")
                    assert r.status == 200 and json.loads(r.body)["worker"] == w
                    if r.header("connection") == "close":
                        break
                    time.sleep(0.05)
                assert r.header("connection") == "close", (w, r.headers)
                assert c.wait_closed(5)
                c.close()
            assert not any(f.done() for f in futs), "the drain ended before the check"
        finally:
            for t in tokens:
                release(record_dir, t)
        results = [f.result(timeout=15) for f in futs]
    assert len(results) == 4 and all(r["version"] == "v1" for r in results)
    assert srv.wait(15) == 0
    # No connections at all once the server is gone.
    with pytest.raises(OSError):
        RawConn(srv.host, srv.port, timeout=1).request("GET", "/")


def _write_app(path, version):
    # The size differs between versions: CPython revalidates a cached .pyc
    # by source mtime (whole seconds) and size, so a same-size rewrite within
    # the same second would load the old code.
    path.write_text(
        "#" * (len(version) + int(version[1:])) + "\n"
        "from tests.apps.workers import app as _base\n"
        f"VERSION = {version!r}\n"
        "async def app(scope, receive, send):\n"
        "    import tests.apps.workers as w\n"
        "    w.VERSION = VERSION\n"
        "    await _base(scope, receive, send)\n"
    )


def _reload(srv, number: int) -> int:
    """SIGHUP; wait until generation `number` serves; its pid."""
    srv.proc.send_signal(signal.SIGHUP)
    m = srv.wait_log(rf"reload: generation {number} \(pid (\d+)\) serves the new code", timeout=20)
    return int(m.group(1))


@pytest.mark.parametrize("mode", MODES)
def test_sighup_reloads_new_code_with_zero_failed_requests(server_factory, tmp_path, mode):
    mod = tmp_path / "reloadable_app.py"
    _write_app(mod, "v1")
    srv = server_factory(
        "reloadable_app:app", "--app-dir", str(tmp_path), "--workers", "2", "--worker-mode", mode,
        "--keep-alive-timeout", "30",
    )
    assert _get(srv)["version"] == "v1"
    first = _generation(srv)
    generations = [first]
    with Load(srv, clients=4) as load:
        time.sleep(0.5)
        for n, version in ((2, "v2"), (3, "v3"), (4, "v4")):
            _write_app(mod, version)
            generations.append(_reload(srv, n))
            assert _wait_for(lambda: version in load.versions[-20:], timeout=10), version
            # The generation before drains and exits; the master stays.
            assert _wait_for(lambda: _gone(generations[-2]), timeout=20)
            assert srv.proc.poll() is None
            time.sleep(0.3)
    assert load.failures == [], load.failures[:5]
    assert load.ok > 100
    assert load.versions[0] == "v1" and load.versions[-1] == "v4"
    assert sorted(set(load.versions)) == ["v1", "v2", "v3", "v4"]
    # The PID the test started is still the server, in the same process
    # group as everything it runs; the generations were its children.
    assert srv.proc.poll() is None
    assert _children(srv.proc.pid) == [generations[-1]]
    assert len(set(generations)) == 4
    for pid in [generations[-1], *_worker_pids(srv)]:
        assert os.getpgid(pid) == os.getpgid(srv.proc.pid)
    assert _get(srv)["version"] == "v4"
    assert srv.stop() == 0


def test_failed_reload_keeps_serving(server_factory, tmp_path):
    mod = tmp_path / "reload_broken.py"
    _write_app(mod, "v1")
    srv = server_factory("reload_broken:app", "--app-dir", str(tmp_path))
    assert _get(srv)["version"] == "v1"
    serving = _generation(srv)
    mod.write_text("raise RuntimeError('broken deploy')\n")
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload failed \(generation 2 \(pid \d+\): exit status 1\); generation 1", timeout=20)
    assert "RuntimeError: broken deploy" in srv.log_text()
    assert _get(srv)["version"] == "v1"
    assert _children(srv.proc.pid) == [serving]
    # The next reload, with the code fixed, works.
    _write_app(mod, "v2")
    new = _reload(srv, 3)
    assert _wait_for(lambda: _gone(serving), timeout=20)
    assert _get(srv)["version"] == "v2" and _generation(srv) == new
    assert srv.stop() == 0


def test_killed_worker_process_is_replaced(server_factory):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", "process")
    kids = _wait_for(lambda: len(_worker_pids(srv)) == 2 and _worker_pids(srv))
    victim = kids[0]
    os.kill(victim, signal.SIGKILL)
    srv.wait_log(r"died unexpectedly; replacing it", timeout=10)
    new = _wait_for(lambda: (k := _worker_pids(srv)) and len(k) == 2 and victim not in k and k)
    assert new and victim not in new
    pids = {_get(srv)["pid"] for _ in range(10)}
    assert victim not in pids
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_route_that_crashes_its_worker(server_factory, mode):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode)
    c = RawConn(srv.host, srv.port, timeout=5)
    c.send(b"GET /crash HTTP/1.1\r\nHost: x\r\n\r\n")
    # A dying process just closes; a dying thread's request gets its 500.
    data = c.read_to_eof()
    assert data == b"" or data.startswith(b"HTTP/1.1 500 "), data[:100]
    srv.wait_log(r"worker \d .*(died unexpectedly|died: SystemExit)", timeout=10)
    srv.wait_log(r"(died unexpectedly; replacing it|replacing it)", timeout=10)
    time.sleep(0.5)
    for _ in range(10):
        assert _get(srv)["version"] == "v1"
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_max_requests_recycles_without_failures(server_factory, mode):
    srv = server_factory(
        APP, "--workers", "2", "--worker-mode", mode, "--max-requests", "150",
        "--max-requests-jitter", "20",
    )
    with Load(srv, clients=4) as load:
        assert _wait_for(lambda: srv.log_text().count("being replaced") >= 2, timeout=30)
        time.sleep(0.5)
    assert load.failures == [], load.failures[:5]
    assert srv.log_text().count("replaced: the old one drains") >= 2
    if mode == "process":
        assert len({pid for pid, _ in load.workers}) >= 3
    assert srv.stop() == 0


def test_sigttin_and_sigttou(server_factory):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", "process")
    _wait_for(lambda: len(_worker_pids(srv)) == 2)
    srv.proc.send_signal(signal.SIGTTIN)
    srv.wait_log(r"SIGTTIN: adding worker 2 \(3 workers\)")
    assert _wait_for(lambda: len(_worker_pids(srv)) == 3)
    srv.proc.send_signal(signal.SIGTTOU)
    srv.wait_log(r"SIGTTOU: stopping worker 2 \(2 workers\)")
    assert _wait_for(lambda: len(_worker_pids(srv)) == 2, timeout=15)
    assert _get(srv)["worker"] in (0, 1)
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_startup_failure_exits_nonzero(server_factory, tmp_path, mode):
    (tmp_path / "bad_startup.py").write_text(
        "async def app(scope, receive, send):\n"
        "    assert scope['type'] == 'lifespan'\n"
        "    await receive()\n"
        "    await send({'type': 'lifespan.startup.failed', 'message': 'database is down'})\n"
    )
    from tests.server import ServerStartError

    with pytest.raises(ServerStartError) as e:
        server_factory("bad_startup:app", "--app-dir", str(tmp_path), "--workers", "2",
                       "--worker-mode", mode)
    text = str(e.value)
    assert "database is down" in text
    # The lifespan failure's own status (3) is the exit status of the main process.
    assert re.search(r"exited with 3 ", text), text[:300]


def _accept_counts(shared: bool, clients: int = 5) -> list[int]:
    """Drive a bare _pounce.Worker by hand: `clients` connections wait in the
    backlog; return the worker's open connections after each poll()."""
    import asyncio
    import socket

    import pounce
    from pounce import _pounce

    async def app(scope, receive, send):  # never called: no request is sent
        raise AssertionError("no request expected")

    loop = asyncio.new_event_loop()
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    lsock.setblocking(False)
    addr = lsock.getsockname()
    worker = _pounce.Worker(pounce.Config(), app, loop, [(lsock.fileno(), addr, False)],
                            shared_listeners=shared)
    conns = [socket.create_connection(addr, timeout=5) for _ in range(clients)]
    try:
        counts = []
        for _ in range(clients):
            worker.poll()
            counts.append(worker.connections)
        return counts
    finally:
        worker.close()
        for c in conns:
            c.close()
        lsock.close()
        loop.close()


def test_shared_listener_accepts_one_connection_per_wakeup():
    """A worker that shares its listening socket with other workers takes one
    connection per wake-up, so a burst of connections is spread over the
    workers instead of going to whichever woke first; a worker alone takes
    the whole backlog at once."""
    assert _accept_counts(shared=False) == [5, 5, 5, 5, 5]
    assert _accept_counts(shared=True) == [1, 2, 3, 4, 5]
