"""The master process of `pounce APP` (src/pounce/_master.py), through the
real server: the PID the test started stays the server (pid file, PID 1 in
a PID namespace, the process group), and the drain a load balancer sees
(refused connections, Connection: close, WebSocket 1001, repeated and
escalating signals), in both worker modes where it matters.

The reload under load itself is in test_workers.py."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import tests.server
from tests.server import RawConn, build_request, wait_record
from tests.test_workers import (
    _children,
    _generation,
    _get,
    _gone,
    _wait_for,
    _worker_pids,
    _write_app,
    release,
    started_on,
)
from tests.ws_client import connect_ws

APP = "tests.apps.workers:app"
MODES = ["thread", "process"]
pytestmark = pytest.mark.pounce_only("Pounce's master process")


def _tree(pid: int) -> list[int]:
    out = [pid]
    for child in _children(pid):
        out += _tree(child)
    return out


def _stat(pid: int) -> list[str] | None:
    """/proc/PID/stat after the command name: [state, ppid, pgrp, ...]."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()
    except (FileNotFoundError, ProcessLookupError):
        return None


def _alive_in_group(pgid: int) -> list[int]:
    """Live (not zombie) processes of process group `pgid`."""
    out = []
    for name in os.listdir("/proc"):
        if name.isdigit():
            st = _stat(int(name))
            if st and int(st[2]) == pgid and st[0] != "Z":
                out.append(int(name))
    return out


def _hold(srv, record_dir, timeout=30.0):
    """A /hold request running in a worker; (future, token, pool)."""
    token = uuid.uuid4().hex
    pool = ThreadPoolExecutor(1)
    fut = pool.submit(_get, srv, f"/hold?token={token}", timeout)
    started_on(record_dir, token)
    return fut, token, pool


# -- the PID: pid file, process group, PDEATHSIG, PID 1 -------------------------------


def test_pid_file_names_the_main_pid_across_reloads(server_factory, tmp_path):
    pid_file = tmp_path / "pounce.pid"
    pid_file.write_text("999999\n")  # stale, from a run that was killed
    srv = server_factory(APP, "--pid-file", str(pid_file), "--workers", "2")
    assert pid_file.read_text() == f"{srv.proc.pid}\n"
    first = _generation(srv)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload: generation 2 \(pid \d+\) serves the new code", timeout=20)
    assert _wait_for(lambda: _gone(first), timeout=20)
    assert pid_file.read_text() == f"{srv.proc.pid}\n"
    assert srv.stop() == 0
    assert not pid_file.exists()


@pytest.mark.parametrize("mode", MODES)
def test_killing_the_process_group_leaves_nothing(server_factory, mode):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode)
    if mode == "process":
        _wait_for(lambda: len(_worker_pids(srv)) == 2)
    tree = _tree(srv.proc.pid)
    assert len(tree) == (4 if mode == "process" else 2), tree
    pgid = os.getpgid(srv.proc.pid)
    assert all(os.getpgid(p) == pgid for p in tree)
    os.killpg(pgid, signal.SIGKILL)
    srv.proc.wait(5)
    assert _wait_for(lambda: all(_gone(p) for p in tree), timeout=5), [_stat(p) for p in tree]
    assert _alive_in_group(pgid) == []


@pytest.mark.parametrize("mode", MODES)
def test_sigkill_of_the_master_alone_takes_its_children(server_factory, mode):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode)
    if mode == "process":
        _wait_for(lambda: len(_worker_pids(srv)) == 2)
    tree = _tree(srv.proc.pid)
    os.kill(srv.proc.pid, signal.SIGKILL)  # the master only: no group kill
    srv.proc.wait(5)
    # PR_SET_PDEATHSIG: the generation dies with the master, its workers
    # with the generation.
    assert _wait_for(lambda: all(_gone(p) for p in tree), timeout=5), [_stat(p) for p in tree]


ORPHAN_APP = '''
import subprocess
from tests.apps.workers import app as _base
VERSION = {version!r}
async def app(scope, receive, send):
    import tests.apps.workers as w
    w.VERSION = VERSION
    if scope["type"] == "http" and scope["path"] == "/orphan":
        # sh exits at once; its background sleep is re-parented to the
        # namespace's init, the master, which must reap it.
        subprocess.run(["sh", "-c", "sleep 0.3 & exit 0"], check=True)
    await _base(scope, receive, send)
'''


@pytest.mark.skipif(shutil.which("unshare") is None, reason="needs unshare (util-linux, make deps)")
@pytest.mark.skipif(os.geteuid() != 0, reason="a PID namespace needs root")
@pytest.mark.parametrize("mode", MODES)
def test_as_pid_1_it_serves_reloads_reaps_and_stops(server_factory, tmp_path, monkeypatch, mode):
    plain = tests.server.server_command
    unshare = ["unshare", "--pid", "--fork", "--mount-proc"]
    if subprocess.run([*unshare, "true"], capture_output=True).returncode != 0:
        # In a chroot (make test-all's CPython 3.14) "/" is no mount point,
        # so the private mount namespace --mount-proc needs cannot be made;
        # the PID namespace alone still makes the master PID 1, and Pounce
        # reads nothing of /proc.
        unshare = ["unshare", "--pid", "--fork"]
    monkeypatch.setattr(
        tests.server, "server_command", lambda app, args: [*unshare, *plain(app, args)]
    )
    mod = tmp_path / "pid1_app.py"
    mod.write_text(ORPHAN_APP.format(version="v1"))
    srv = server_factory("pid1_app:app", "--app-dir", str(tmp_path), "--workers", "2",
                         "--worker-mode", mode)
    [master] = _children(srv.proc.pid)  # unshare's child: PID 1 inside
    with open(f"/proc/{master}/status") as f:
        nspid = next(line for line in f if line.startswith("NSpid:")).split()
    assert nspid[-1] == "1", nspid
    assert _get(srv)["version"] == "v1"
    first = _generation_of(master)

    for _ in range(3):
        assert _get(srv, "/orphan")["version"] == "v1"
    # The orphans lived 0.3 s; nothing of the namespace stays a zombie.
    time.sleep(1.0)
    assert _zombies_under(master) == []

    mod.write_text("#\n" + ORPHAN_APP.format(version="v2"))
    os.kill(master, signal.SIGHUP)
    srv.wait_log(r"reload: generation 2 \(pid \d+\) serves the new code", timeout=20)
    # (Until generation 1 has its order to drain, it may still take one.)
    assert _wait_for(lambda: _gone(first), timeout=20)
    assert _get(srv)["version"] == "v2"
    assert _zombies_under(master) == []
    assert _children(srv.proc.pid) == [master]

    os.kill(master, signal.SIGTERM)
    assert srv.wait(20) == 0


def _generation_of(master: int) -> int:
    kids = _wait_for(lambda: (k := _children(master)) and len(k) == 1 and k)
    assert kids, _children(master)
    return kids[0]


def _zombies_under(pid: int) -> list[int]:
    return [p for p in _tree(pid)[1:] if (_stat(p) or ["?"])[0] == "Z"]


# -- the drain -------------------------------------------------------------------------


def _unix_request(path: str, target: str, timeout: float = 10.0) -> tuple[int, bytes]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(timeout)
    try:
        s.connect(path)
        s.sendall(build_request("GET", target, [("Connection", "close")]))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), body


def _probe(connect, n: int = 20, span: float = 1.0) -> tuple[Counter, float]:
    """Open `n` connections over `span` seconds, each sending a request.
    Counts how each ended: "refused" (connect failed), "reset" (connected,
    then closed without an answer), "hung" (no answer within 0.5 s),
    "served".  Also returns the slowest connect()."""
    seen: Counter = Counter()
    slowest = 0.0
    for _ in range(n):
        t0 = time.monotonic()
        try:
            s = connect()
        except ConnectionRefusedError:
            seen["refused"] += 1
            slowest = max(slowest, time.monotonic() - t0)
            time.sleep(span / n)
            continue
        slowest = max(slowest, time.monotonic() - t0)
        try:
            s.settimeout(0.5)
            s.sendall(build_request("GET", "/"))
            seen["served" if s.recv(65536) else "reset"] += 1
        except (ConnectionResetError, BrokenPipeError):
            seen["reset"] += 1
        except (socket.timeout, TimeoutError):
            seen["hung"] += 1
        finally:
            s.close()
        time.sleep(span / n)
    return seen, slowest


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("family", ["tcp", "unix"])
def test_drain_refuses_new_connections_while_in_flight_requests_finish(
    server_factory, record_dir, tmp_path, mode, family
):
    args = ["--workers", "2", "--worker-mode", mode, "--shutdown-timeout", "20"]
    if family == "unix":
        path = str(tmp_path / "p.sock")
        srv = server_factory(APP, "--uds", path, *args)

        def connect():
            s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                s.connect(path)
            except OSError:
                s.close()
                raise
            return s

        token = uuid.uuid4().hex
        pool = ThreadPoolExecutor(1)
        fut = pool.submit(_unix_request, path, f"/hold?token={token}", 30.0)
        started_on(record_dir, token)
    else:
        srv = server_factory(APP, *args)

        def connect():
            return socket.create_connection((srv.host, srv.port), timeout=2)

        fut, token, pool = _hold(srv, record_dir)
    assert _probe(connect, n=3)[0] == Counter(served=3)
    try:
        srv.proc.send_signal(signal.SIGTERM)
        srv.wait_log("SIGTERM received")
        seen, slowest = _probe(connect)
        assert seen == Counter(refused=20), seen
        assert slowest < 0.2, slowest
        assert not fut.done(), "the in-flight request ended before the check"
    finally:
        release(record_dir, token)
    result = fut.result(timeout=15)
    pool.shutdown()
    if family == "unix":
        assert result[0] == 200 and json.loads(result[1])["version"] == "v1"
    else:
        assert result["version"] == "v1"
    assert srv.wait(15) == 0


@pytest.mark.parametrize("mode", MODES)
def test_repeated_sigterm_is_ignored(server_factory, record_dir, mode):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode)
    fut, token, pool = _hold(srv, record_dir)
    try:
        for _ in range(3):
            srv.proc.send_signal(signal.SIGTERM)
            time.sleep(0.2)
        srv.wait_log("SIGTERM again: already shutting down")
        assert srv.proc.poll() is None and not fut.done()
    finally:
        release(record_dir, token)
    assert fut.result(timeout=15)["version"] == "v1"
    pool.shutdown()
    assert srv.wait(15) == 0


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("how", ["SIGQUIT", "SIGINT twice"])
def test_sigquit_or_a_second_sigint_exits_at_once(server_factory, record_dir, mode, how):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode)
    tree = _tree(srv.proc.pid)
    fut, token, pool = _hold(srv, record_dir)
    try:
        if how == "SIGINT twice":
            srv.proc.send_signal(signal.SIGINT)
            time.sleep(0.5)
            assert srv.proc.poll() is None, "the first SIGINT must wait for the request"
        t0 = time.monotonic()
        srv.proc.send_signal(signal.SIGQUIT if how == "SIGQUIT" else signal.SIGINT)
        assert srv.wait(3) == 1, "must exit at once, with status 1"
        assert time.monotonic() - t0 < 3
        assert _wait_for(lambda: all(_gone(p) for p in tree), timeout=3)
        with pytest.raises(Exception):
            fut.result(timeout=5)  # the held request was cut
    finally:
        release(record_dir, token)
        pool.shutdown()


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl-c", "control-group"])
def test_a_signal_to_the_whole_group_counts_once(server_factory, record_dir, sig):
    # A terminal's Ctrl-C reaches every process of the foreground group;
    # systemd's KillMode=control-group SIGTERMs every process.  The workers
    # must neither die mid-request nor count it as a second signal.
    srv = server_factory(APP, "--workers", "2", "--worker-mode", "process")
    _wait_for(lambda: len(_worker_pids(srv)) == 2)
    fut, token, pool = _hold(srv, record_dir)
    try:
        os.killpg(os.getpgid(srv.proc.pid), sig)
        srv.wait_log(f"{signal.Signals(sig).name} received: shutting down")
        time.sleep(0.5)
        assert srv.proc.poll() is None and not fut.done()
    finally:
        release(record_dir, token)
    assert fut.result(timeout=15)["version"] == "v1"
    pool.shutdown()
    assert srv.wait(15) == 0
    assert "exiting now" not in srv.log_text()


@pytest.mark.parametrize("mode", MODES)
def test_websockets_get_1001_on_sigterm(server_factory, record_dir, mode):
    srv = server_factory("tests.apps.ws_app:app", "--workers", "2", "--worker-mode", mode,
                         "--shutdown-timeout", "5")
    token = uuid.uuid4().hex
    ws = connect_ws(srv, f"/sleep?token={token}")
    try:
        wait_record(record_dir, token, "accepted")
        srv.proc.send_signal(signal.SIGTERM)
        frame = ws.read_close(timeout=5)
        assert frame is not None and frame.close_code == 1001
        ws.send_close(1001)
    finally:
        ws.abort()
    assert srv.wait(10) == 0


# -- memory -----------------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        return int(next(line for line in f if line.startswith("VmRSS:")).split()[1])


@pytest.mark.skipif(os.environ.get("POUNCE_ASAN") == "1",
                    reason="ASan's shadow memory and preloaded runtime inflate every RSS")
def test_thread_mode_with_4_workers_stays_under_45_mib(server_factory):
    srv = server_factory("examples.hello:app", "--workers", "4", "--worker-mode", "thread",
                         "--no-access-log")
    with RawConn(srv.host, srv.port) as c:
        for _ in range(500):
            assert c.request("GET", "/").status == 200
    tree = _tree(srv.proc.pid)
    assert len(tree) == 2  # the master and one generation
    total = sum(_rss_kib(p) for p in tree) / 1024
    print(f"RSS: master {_rss_kib(tree[0]) / 1024:.1f} MiB, total {total:.1f} MiB")
    assert total < 45, f"{total:.1f} MiB"
    assert srv.stop() == 0


# -- systemd notify -------------------------------------------------------------------


class NotifyListener:
    """NOTIFY_SOCKET for the server: each datagram as ({KEY: value}, sender pid)."""

    def __init__(self, path: str):
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_PASSCRED, 1)
        self.path = path

    def recv(self, timeout: float = 10.0) -> tuple[dict, int]:
        self.sock.settimeout(timeout)
        data, anc, _, _ = self.sock.recvmsg(4096, socket.CMSG_SPACE(12))
        pid = 0
        for level, kind, payload in anc:
            if level == socket.SOL_SOCKET and kind == socket.SCM_CREDENTIALS:
                pid = int.from_bytes(payload[:4], "little")
        return dict(line.split("=", 1) for line in data.decode().splitlines()), pid

    def until(self, key: str, seen: list, timeout: float = 20.0) -> dict:
        """Messages until one sets `key`; the watchdog pings go to `seen` too."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            msg, pid = self.recv()
            seen.append((msg, pid))
            if key in msg:
                return msg
        raise AssertionError(f"no {key}= within {timeout} s: {seen[-5:]}")


def test_systemd_notify_ready_reloading_watchdog_stopping(server_factory, tmp_path):
    notify = NotifyListener(str(tmp_path / "notify"))
    mod = tmp_path / "sd_reload.py"
    _write_app(mod, "v1")
    srv = server_factory(
        "sd_reload:app", "--app-dir", str(tmp_path), "--workers", "2",
        env={"NOTIFY_SOCKET": notify.path, "WATCHDOG_USEC": "400000"},
    )
    seen: list = []
    ready = notify.until("READY", seen)
    assert ready["READY"] == "1" and "serving" in ready["STATUS"]
    time.sleep(1.0)  # the watchdog wants a ping every 0.2 s
    _write_app(mod, "v2")
    srv.proc.send_signal(signal.SIGHUP)
    reloading = notify.until("RELOADING", seen)
    assert reloading["RELOADING"] == "1" and int(reloading["MONOTONIC_USEC"]) > 0
    assert "reloaded" in notify.until("READY", seen)["STATUS"]
    pings = sum(1 for m, _ in seen if m.get("WATCHDOG") == "1")
    assert pings >= 3, seen
    # A failed reload: READY=1 again, and a status that says so.
    mod.write_text("raise RuntimeError('broken deploy')\n")
    srv.proc.send_signal(signal.SIGHUP)
    notify.until("RELOADING", seen)
    assert "reload failed" in notify.until("READY", seen)["STATUS"]
    srv.proc.send_signal(signal.SIGTERM)
    assert notify.until("STOPPING", seen)["STOPPING"] == "1"
    assert srv.wait(15) == 0
    # Every message came from the main PID (NotifyAccess=main).
    assert {pid for _, pid in seen} == {srv.proc.pid}


# -- pounce.run(): no master, the same rules for the signals ---------------------------


def test_pounce_run_refuses_reload_and_drains_like_the_master(tmp_path, record_dir):
    import subprocess
    import sys

    from tests.server import RECORD_ENV, ROOT
    from tests.test_listeners import _wait_line

    pid_file = tmp_path / "run.pid"
    script = tmp_path / "run_it.py"
    script.write_text(
        "import pounce\n"
        f"raise SystemExit(pounce.run('tests.apps.workers:app', port=0, workers=2,\n"
        f"                            worker_mode='process', pid_file={str(pid_file)!r}))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
        env={**os.environ, RECORD_ENV: str(record_dir), "PYTHONPATH": str(ROOT)},
    )
    try:
        m, _ = _wait_line(proc, r"Listening on http://127\.0\.0\.1:(\d+)")
        srv = type("Srv", (), {"host": "127.0.0.1", "port": int(m.group(1))})()
        assert pid_file.read_text() == f"{proc.pid}\n"
        proc.send_signal(signal.SIGHUP)
        _wait_line(proc, r"SIGHUP: reload needs the pounce command")
        fut, token, pool = _hold(srv, record_dir)
        try:
            proc.send_signal(signal.SIGTERM)
            _wait_line(proc, "SIGTERM received")

            def connect():
                return socket.create_connection((srv.host, srv.port), timeout=2)

            seen, _ = _probe(connect, n=5, span=0.3)
            assert seen == Counter(refused=5), seen
        finally:
            release(record_dir, token)
        assert fut.result(timeout=15)["version"] == "v1"
        pool.shutdown()
        assert proc.wait(15) == 0
        assert not pid_file.exists()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(5)


def test_worker_count_from_sigttin_survives_a_reload(server_factory):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", "process")
    assert _wait_for(lambda: len(_worker_pids(srv)) == 2)
    srv.proc.send_signal(signal.SIGTTIN)
    assert _wait_for(lambda: len(_worker_pids(srv)) == 3)
    first = _generation(srv)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload: generation 2 \(pid \d+\) serves the new code", timeout=20)
    assert _wait_for(lambda: _gone(first), timeout=20)
    assert _wait_for(lambda: len(_worker_pids(srv)) == 3)
    assert srv.stop() == 0


def test_a_killed_generation_is_replaced_by_the_master(server_factory):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", "thread")
    first = _generation(srv)
    os.kill(first, signal.SIGKILL)  # the OOM killer, say
    srv.wait_log(r"generation 1 \(pid \d+\) was killed by SIGKILL: starting a new one")
    second = _wait_for(lambda: (k := _children(srv.proc.pid)) and k != [first] and k[0])
    assert second and second != first
    assert _wait_for(lambda: _get(srv)["pid"] == second)
    assert srv.proc.poll() is None
    assert srv.stop() == 0
