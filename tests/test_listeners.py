"""Ways of listening and running: Unix sockets, inherited fds, IPv6, event
loops, several workers, and pounce.run() — each through the real server."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.server import ROOT, VENV_BIN, RawConn, build_request
from tests.test_workers import conn_per_worker

SCOPE_APP = "tests.apps.scope:app"
#: Answers with its worker id, pid, thread and the class of its event loop.
WORKERS_APP = "tests.apps.workers:app"
pytestmark = pytest.mark.pounce_only("Pounce's listener and worker options")


def _unix_request(path: str, target: str = "/") -> tuple[bytes, bytes]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(build_request("GET", target, [("Connection", "close")]))
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_unix_socket(server_factory, tmp_path):
    path = str(tmp_path / "pounce.sock")
    srv = server_factory(SCOPE_APP, "--uds", path)
    assert srv.uds == path
    head, body = _unix_request(path, "/u?x=1")
    assert head.startswith(b"HTTP/1.1 200")
    scope = json.loads(body)
    assert scope["server"] == [path, None]
    assert scope["client"] is None
    assert scope["path"] == "/u"
    assert srv.stop() == 0
    assert not os.path.exists(path), "the socket file is removed at exit"


def test_stale_unix_socket_file_is_replaced(server_factory, tmp_path):
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # leaves the file behind, as a crashed server would
    srv = server_factory(SCOPE_APP, "--uds", path)
    head, _ = _unix_request(path)
    assert head.startswith(b"HTTP/1.1 200")
    srv.stop()


def _spawn(args, pass_fds=()):
    return subprocess.Popen(
        [str(VENV_BIN / "pounce"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
    )


def _wait_line(proc, pattern, timeout=10):
    """Read the server's output until `pattern` appears (bounded in time)."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    buf = ""
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk.decode(errors="replace")
            m = re.search(pattern, buf)
            if m:
                return m, buf
        elif chunk == b"" or proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {pattern!r} in server output: {buf}")


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_inherited_listening_fd():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    fd = lsock.fileno()
    proc = _spawn([SCOPE_APP, "--fd", str(fd)], pass_fds=(fd,))
    try:
        _wait_line(proc, r"Listening on http://127\.0\.0\.1:(\d+)")
        c = RawConn("127.0.0.1", port)
        r = c.request("GET", "/fd")
        assert r.status == 200
        assert json.loads(r.body)["server"] == ["127.0.0.1", port]
        c.close()
    finally:
        assert _stop(proc) == 0
        lsock.close()


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python build")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as e:
        pytest.skip(f"IPv6 loopback unavailable here: {e}")
    proc = _spawn([SCOPE_APP, "--host", "::1", "--port", "0"])
    try:
        m, _ = _wait_line(proc, r"Listening on http://\[::1\]:(\d+)")
        port = int(m.group(1))
        s = socket.create_connection(("::1", port), timeout=5)
        s.sendall(build_request("GET", "/six", [("Host", "[::1]"), ("Connection", "close")]))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        scope = json.loads(data.partition(b"\r\n\r\n")[2])
        assert scope["client"][0] == "::1"
        assert scope["server"] == ["::1", port]
    finally:
        assert _stop(proc) == 0


@pytest.mark.parametrize(
    "loop, expected",
    [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("auto", "uvloop")],
)
def test_event_loop_choice(server_factory, loop, expected):
    # uvloop is a pinned test dependency (requirements-test.txt), so "auto"
    # finds it too.
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pytest.fail("uvloop is missing: install requirements-test.txt")
    srv = server_factory(WORKERS_APP, "--loop", loop)
    c = srv.connect()
    for _ in range(3):
        r = c.request("GET", "/")
        assert r.status == 200
        # The class of the loop the app ran on, e.g. uvloop.Loop or
        # asyncio.unix_events._UnixSelectorEventLoop.
        ran = json.loads(r.body)["loop"]
        assert ran.split(".")[0] == expected, ran
    c.close()
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_several_workers_serve_and_stop(server_factory, record_dir, mode):
    srv = server_factory(WORKERS_APP, "--workers", "2", "--worker-mode", mode)
    assert f"2 workers, {mode} mode" in srv.log_text()
    # Each of the two workers answers a connection (one is blocked by the app
    # while the other must take the next connection; see conn_per_worker).
    conns = conn_per_worker(srv, record_dir)
    assert set(conns) == {0, 1}, conns
    answers = []
    for w, (c, first) in conns.items():
        answers.append(first)
        r = c.request("GET", "/")  # keep-alive: the same worker again
        assert r.status == 200
        again = json.loads(r.body)
        assert again["worker"] == w and again["pid"] == first["pid"], (again, first)
        c.close()
    pids = {a["pid"] for a in answers}
    if mode == "process":
        assert len(pids) == 2 and srv.proc.pid not in pids, (pids, srv.proc.pid)
    else:
        # One process, the master's child (the master never runs the app).
        assert len(pids) == 1 and srv.proc.pid not in pids, (pids, srv.proc.pid)
        assert len({a["thread"] for a in answers}) == 2, answers
    assert srv.stop() == 0


def test_pounce_run_programmatic(tmp_path):
    script = tmp_path / "run_it.py"
    script.write_text(
        "import pounce\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'run'})\n"
        "raise SystemExit(pounce.run(app, port=0, lifespan='off'))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        m, _ = _wait_line(proc, r"Listening on http://127\.0\.0\.1:(\d+)")
        c = RawConn("127.0.0.1", int(m.group(1)))
        r = c.request("GET", "/")
        assert (r.status, r.body) == (200, b"run")
        c.close()
    finally:
        assert _stop(proc) == 0
