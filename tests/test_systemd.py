"""systemd: the notify protocol (pounce._systemd.Notifier) against a notify
socket made here, and socket activation through the real
systemd-socket-activate (Debian's systemd package; it needs no running
systemd).

The Notifier tests are unit tests: a datagram socket bound in tmp_path (or
an abstract one) plays systemd's part and receives what Notifier sends.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time

import pytest

from pounce._systemd import LISTEN_FDS_START, Notifier, listen_fds
from tests.server import ROOT, VENV_BIN, build_request

pytestmark = pytest.mark.pounce_only("Pounce's systemd support (uvicorn has neither)")

# --------------------------------------------------------------------------
# A notify socket: what systemd listens on.


class NotifySocket:
    """AF_UNIX SOCK_DGRAM bound at a path in tmp_path, or abstract."""

    def __init__(self, path: str) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.bind(path)
        self.sock.settimeout(5)
        self.env_value = "@" + path[1:] if path.startswith("\0") else path

    def recv(self, timeout: float = 5) -> dict[str, str]:
        self.sock.settimeout(timeout)
        data = self.sock.recv(65536).decode()
        return dict(line.split("=", 1) for line in data.split("\n"))

    def recv_raw(self, timeout: float = 5) -> bytes:
        self.sock.settimeout(timeout)
        return self.sock.recv(65536)

    def pending(self) -> bool:
        self.sock.settimeout(0)
        try:
            self.sock.recv(65536, socket.MSG_PEEK)
        except BlockingIOError:
            return False
        return True

    def close(self) -> None:
        self.sock.close()


class _Records(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)

    @property
    def text(self) -> str:
        return "\n".join(r.getMessage() for r in self.records)


@pytest.fixture
def pounce_log():
    """What the "pounce" logger emits.  (Not caplog: once setup_logging has
    run in this process, e.g. in test_cli, "pounce" no longer propagates.)"""
    logger = logging.getLogger("pounce")
    handler, level = _Records(), logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    yield handler
    logger.removeHandler(handler)
    logger.setLevel(level)


@pytest.fixture
def notify_socket(tmp_path):
    ns = NotifySocket(str(tmp_path / "notify"))
    yield ns
    ns.close()


def _notifier(ns: NotifySocket, **extra: str) -> Notifier:
    return Notifier.from_environ({"NOTIFY_SOCKET": ns.env_value, **extra})


def test_ready_stopping_status_messages(notify_socket):
    n = _notifier(notify_socket)
    assert n.enabled
    assert n.ready() is True
    assert notify_socket.recv_raw() == b"READY=1"
    assert n.ready(status="serving on http://127.0.0.1:8000\nwith 4 workers")
    assert notify_socket.recv() == {
        "READY": "1",
        "STATUS": "serving on http://127.0.0.1:8000 with 4 workers",
    }
    assert n.status("draining 3 connections")
    assert notify_socket.recv_raw() == b"STATUS=draining 3 connections"
    assert n.stopping()
    assert notify_socket.recv_raw() == b"STOPPING=1"
    assert n.stopping(status="bye")
    assert notify_socket.recv_raw() == b"STOPPING=1\nSTATUS=bye"
    assert n.notify("MAINPID=1", "X=y")
    assert notify_socket.recv_raw() == b"MAINPID=1\nX=y"
    assert n.extend_timeout(2.5)
    assert notify_socket.recv_raw() == b"EXTEND_TIMEOUT_USEC=2500000"
    n.close()
    assert not n.enabled
    assert n.ready() is False


def test_reloading_carries_monotonic_usec(notify_socket):
    n = _notifier(notify_socket)
    before = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert n.reloading()
    msg = notify_socket.recv()
    after = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
    assert list(msg) == ["RELOADING", "MONOTONIC_USEC"]
    assert msg["RELOADING"] == "1"
    assert before <= int(msg["MONOTONIC_USEC"]) <= after
    time.sleep(0.002)
    n.reloading(status="reloading")
    msg2 = notify_socket.recv()
    assert int(msg2["MONOTONIC_USEC"]) > int(msg["MONOTONIC_USEC"])
    assert msg2["STATUS"] == "reloading"
    n.close()


def test_abstract_notify_socket():
    name = f"\0pounce-test-{os.getpid()}-{time.monotonic_ns()}"
    ns = NotifySocket(name)
    try:
        assert ns.env_value.startswith("@")
        n = Notifier.from_environ({"NOTIFY_SOCKET": ns.env_value})
        assert n.enabled
        assert n.ready()
        assert ns.recv_raw() == b"READY=1"
        assert "@pounce-test-" in repr(n)
        n.close()
    finally:
        ns.close()


def test_without_notify_socket_everything_is_a_no_op():
    n = Notifier.from_environ({})
    assert not n.enabled
    assert n.watchdog_interval is None
    for call in (n.ready, n.stopping, n.reloading, n.watchdog):
        assert call() is False
    assert n.status("x") is False
    n.close()


@pytest.mark.parametrize("value", ["relative/path", "vsock:2:1234", "@"])
def test_unusable_notify_socket_is_ignored_with_a_warning(value, pounce_log):
    n = Notifier.from_environ({"NOTIFY_SOCKET": value})
    assert not n.enabled
    assert n.ready() is False
    assert "NOTIFY_SOCKET" in pounce_log.text


def test_watchdog_interval_and_ping(notify_socket):
    n = _notifier(notify_socket, WATCHDOG_USEC="30000000")
    assert n.watchdog_usec == 30_000_000
    assert n.watchdog_interval == 15.0
    assert n.watchdog()
    assert notify_socket.recv_raw() == b"WATCHDOG=1"
    n.close()


def test_watchdog_pid_must_be_ours(notify_socket):
    me = os.getpid()
    n = _notifier(notify_socket, WATCHDOG_USEC="4000000", WATCHDOG_PID=str(me))
    assert n.watchdog_interval == 2.0
    n.close()
    other = _notifier(notify_socket, WATCHDOG_USEC="4000000", WATCHDOG_PID=str(me + 1))
    assert other.watchdog_usec is None and other.watchdog_interval is None
    assert other.watchdog() is False
    assert not notify_socket.pending(), "no WATCHDOG=1 for another process's watchdog"
    # READY etc. still work: only the watchdog belongs to someone else.
    assert other.ready()
    assert notify_socket.recv_raw() == b"READY=1"
    other.close()
    # Explicit pid= (what a forked child would pass) wins over getpid().
    assert Notifier.from_environ(
        {"NOTIFY_SOCKET": notify_socket.env_value, "WATCHDOG_USEC": "10", "WATCHDOG_PID": "7"},
        pid=7,
    ).watchdog_usec == 10


@pytest.mark.parametrize("value", ["", "0", "-5", "abc", "1.5"])
def test_bad_or_empty_watchdog_usec_means_no_watchdog(notify_socket, value):
    n = _notifier(notify_socket, WATCHDOG_USEC=value)
    assert n.watchdog_usec is None
    assert n.watchdog() is False
    n.close()


def test_sending_never_raises_and_warns_once(tmp_path, pounce_log):
    ns = NotifySocket(str(tmp_path / "gone"))
    n = Notifier.from_environ({"NOTIFY_SOCKET": ns.env_value})
    ns.close()
    os.unlink(tmp_path / "gone")  # systemd went away: ECONNREFUSED/ENOENT
    assert n.ready() is False
    assert n.stopping() is False
    assert n.status("x") is False
    warnings = [r for r in pounce_log.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, pounce_log.text
    assert "gone" in warnings[0].getMessage()
    assert sum(r.levelno == logging.DEBUG for r in pounce_log.records) == 2
    n.close()


def test_full_queue_times_out_instead_of_hanging(tmp_path, monkeypatch):
    import pounce._systemd as sd

    monkeypatch.setattr(sd, "SEND_TIMEOUT", 0.2)
    ns = NotifySocket(str(tmp_path / "full"))
    n = Notifier.from_environ({"NOTIFY_SOCKET": ns.env_value})
    t0 = time.monotonic()
    sent = 0
    # Nobody reads: the receiver's queue (net.unix.max_dgram_qlen) fills up.
    while n.status("x" * 1000) and sent < 100_000:
        sent += 1
    assert sent < 100_000
    assert time.monotonic() - t0 < 10
    n.close()
    ns.close()


# --------------------------------------------------------------------------
# listen_fds(): the environment protocol (the sockets themselves are checked
# by pounce._listeners and tested end to end below).


def test_listen_fds_other_pid_is_ignored_and_unset():
    env = {"LISTEN_PID": str(os.getpid() + 1), "LISTEN_FDS": "1", "LISTEN_FDNAMES": "x", "A": "b"}
    assert listen_fds(env) == []
    assert env == {"A": "b"}


def test_listen_fds_ours(tmp_path):
    a, b = socket.socket(), socket.socket()
    saved = [os.dup(LISTEN_FDS_START), os.dup(LISTEN_FDS_START + 1)]
    try:
        os.dup2(a.fileno(), LISTEN_FDS_START, inheritable=True)
        os.dup2(b.fileno(), LISTEN_FDS_START + 1, inheritable=True)
        env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2", "LISTEN_FDNAMES": "web:admin"}
        assert listen_fds(env) == [(3, "web"), (4, "admin")]
        assert env == {}
        assert not os.get_inheritable(3) and not os.get_inheritable(4)
        env = {"LISTEN_PID": str(os.getpid()), "LISTEN_FDS": "2"}
        assert listen_fds(env) == [(3, "unknown"), (4, "unknown")]
    finally:
        os.dup2(saved[0], LISTEN_FDS_START)
        os.dup2(saved[1], LISTEN_FDS_START + 1)
        for fd in saved:
            os.close(fd)
        a.close()
        b.close()


@pytest.mark.parametrize(
    "env, message",
    [
        ({"LISTEN_PID": "me", "LISTEN_FDS": "1"}, "LISTEN_PID"),
        ({"LISTEN_PID": "{pid}", "LISTEN_FDS": "x"}, "LISTEN_FDS"),
        ({"LISTEN_PID": "{pid}", "LISTEN_FDS": "-1"}, "LISTEN_FDS"),
        ({"LISTEN_PID": "{pid}", "LISTEN_FDS": "1", "LISTEN_FDNAMES": "a:b"}, "LISTEN_FDNAMES"),
    ],
)
def test_listen_fds_malformed(env, message):
    env = {k: v.format(pid=os.getpid()) for k, v in env.items()}
    with pytest.raises(ValueError, match=message):
        listen_fds(env)
    assert env == {}


# --------------------------------------------------------------------------
# Socket activation through the real systemd-socket-activate.  Without
# --accept it listens, waits for the first connection, then execs Pounce
# with the sockets as fds 3.. and LISTEN_PID set to its own (unchanged) pid.

SD_APP = "tests.apps.sd_env:app"
ACTIVATE = shutil.which("systemd-socket-activate")
needs_activate = pytest.mark.skipif(
    ACTIVATE is None, reason="systemd-socket-activate missing: `make deps` installs systemd"
)


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


class Output:
    """The merged stdout/stderr of a child, drained by a thread (a chatty
    child never blocks on a full pipe)."""

    def __init__(self, proc: subprocess.Popen) -> None:
        self.proc = proc
        self._buf: list[str] = []
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self) -> None:
        for line in iter(self.proc.stdout.readline, b""):
            with self._lock:
                self._buf.append(line.decode(errors="replace"))

    def text(self) -> str:
        with self._lock:
            return "".join(self._buf)

    def wait_for(self, pattern: str, timeout: float = 10) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            m = re.search(pattern, self.text())
            if m:
                return m
            if self.proc.poll() is not None:
                self._thread.join(2)
                m = re.search(pattern, self.text())
                if m:
                    return m
                break
            time.sleep(0.02)
        raise AssertionError(f"no {pattern!r} in output:\n{self.text()}")


def _stop(proc: subprocess.Popen, timeout: float = 10) -> int:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


@pytest.fixture
def spawn():
    """Start a child with merged output; every child is stopped after."""
    started: list[subprocess.Popen] = []

    def run(cmd: list[str], **kw) -> tuple[subprocess.Popen, Output]:
        proc = subprocess.Popen(
            cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **kw
        )
        started.append(proc)
        return proc, Output(proc)

    yield run
    for proc in started:
        _stop(proc)


def _activate(spawn, listen: list[str], *args: str, fdnames=(), setenv=(), datagram=False):
    cmd = [ACTIVATE]
    for addr in listen:
        cmd += ["-l", addr]
    if datagram:
        cmd.append("--datagram")
    if fdnames:
        cmd.append("--fdname=" + ":".join(fdnames))
    for kv in setenv:
        cmd += ["-E", kv]
    # systemd-socket-activate hands its child only TERM, PATH, USER, HOME and
    # the -E variables (as systemd would): under `make asan` the sanitizer
    # runtime and its options must be passed on by name, or the instrumented
    # extension cannot load and Pounce dies before serving.
    for name in ("LD_PRELOAD", "ASAN_OPTIONS", "UBSAN_OPTIONS", "PYTHONMALLOC", "POUNCE_ASAN"):
        if name in os.environ:
            cmd += ["-E", name]
    cmd += [str(VENV_BIN / "pounce"), *args]
    proc, out = spawn(cmd)
    # systemd-socket-activate says "Listening on ADDR as FD." per socket.
    for addr in listen:
        out.wait_for(rf"Listening on {re.escape(addr)} as \d+\.")
    return proc, out


def get_json(conn_args, target: str = "/") -> tuple[int, dict]:
    """One request over TCP ((host, port)) or a Unix socket (path)."""
    if isinstance(conn_args, str):
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(15)
        s.connect(conn_args)
    else:
        s = socket.create_connection(conn_args, timeout=15)
    try:
        s.sendall(build_request("GET", target, [("Connection", "close")]))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    finally:
        s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, json.loads(body)


def _listening_tcp_ports(pid: int) -> set[int]:
    """The TCP ports process `pid` holds a listening socket on."""
    inodes = set()
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            next(f)
            for line in f:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    ports.add(int(cols[1].rsplit(":", 1)[1], 16))
    return ports


@needs_activate
def test_activation_serves_the_passed_socket_and_binds_nothing_else(spawn):
    port = free_port()
    proc, out = _activate(spawn, [f"127.0.0.1:{port}"], SD_APP, fdnames=["web"])
    status, body = get_json(("127.0.0.1", port), "/first")  # this connection starts Pounce
    assert status == 200
    assert body["path"] == "/first"
    assert body["server"] == ["127.0.0.1", port]
    # systemd-socket-activate exec'd Pounce in place (LISTEN_PID was its
    # pid); the app runs in the master's child, the generation.
    with open(f"/proc/{body['pid']}/stat") as f:
        assert int(f.read().rsplit(")", 1)[1].split()[1]) == proc.pid
    # The variables are consumed, the fd is close-on-exec.
    assert body["env"] == {}, body
    assert body["inheritable"]["3"] is False, body
    out.wait_for(rf"Listening on http://127\.0\.0\.1:{port}\b")
    assert "systemd" in out.text() and "web" in out.text()
    # ... and nothing else: not the default 127.0.0.1:8000.
    assert _listening_tcp_ports(proc.pid) == {port}
    assert ":8000" not in out.text()
    assert _stop(proc) == 0


@needs_activate
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_activation_several_sockets_all_served(spawn, tmp_path, mode):
    p1, p2 = free_port(), free_port()
    path = str(tmp_path / "act.sock")
    proc, out = _activate(
        spawn,
        [f"127.0.0.1:{p1}", f"127.0.0.1:{p2}", path],
        SD_APP, "--workers", "2", "--worker-mode", mode,
        fdnames=["a", "b", "local"],
    )
    status, body = get_json(("127.0.0.1", p2), "/two")
    assert status == 200 and body["server"] == ["127.0.0.1", p2]
    out.wait_for(r"Listening on unix:")
    for _ in range(3):  # any worker, every socket
        assert get_json(("127.0.0.1", p1), "/one")[1]["server"] == ["127.0.0.1", p1]
        assert get_json(("127.0.0.1", p2), "/two")[1]["server"] == ["127.0.0.1", p2]
        assert get_json(path, "/unix")[1]["server"] == [path, None]
    assert _listening_tcp_ports(proc.pid) == {p1, p2}
    assert _stop(proc) == 0
    assert os.path.exists(path), "the socket belongs to systemd: Pounce never unlinks it"


@needs_activate
def test_activation_with_an_explicit_bind_option_is_an_error(spawn):
    port = free_port()
    proc, out = _activate(spawn, [f"127.0.0.1:{port}"], SD_APP, "--port", "0")
    with pytest.raises(OSError):
        get_json(("127.0.0.1", port))  # starts Pounce, which refuses and exits
    assert proc.wait(10) == 1
    out.wait_for(r"cannot listen on fd 3 \(unknown\): systemd passed listening sockets "
                 r"\(LISTEN_FDS\) and --port also says where to listen")


@needs_activate
def test_activation_with_an_explicit_default_bind_option_is_an_error(spawn):
    # --host 127.0.0.1 is the default's value, but it was given: the command
    # line's origins reach bind_listeners, so it still conflicts.
    port = free_port()
    proc, out = _activate(spawn, [f"127.0.0.1:{port}"], SD_APP, "--host", "127.0.0.1")
    with pytest.raises(OSError):
        get_json(("127.0.0.1", port))
    assert proc.wait(10) == 1
    out.wait_for(r"and --host also says where to listen")


@needs_activate
def test_activation_refuses_a_datagram_socket(spawn):
    port = free_port()
    proc, out = _activate(spawn, [f"127.0.0.1:{port}"], SD_APP, datagram=True)
    udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    udp.sendto(b"wake up", ("127.0.0.1", port))  # starts Pounce
    udp.close()
    assert proc.wait(10) == 1
    out.wait_for(r"cannot listen on fd 3 \(unknown\) from systemd: a SOCK_DGRAM socket, "
                 r"not a stream socket")


# The same protocol without systemd-socket-activate, for what it cannot make:
# a wrapper sets LISTEN_PID to its own pid (or another one), puts the socket
# at fd 3 and execs Pounce.
_WRAPPER = (
    "import os, sys\n"
    "fd, pid = int(sys.argv[1]), sys.argv[2]\n"
    "os.dup2(fd, 3, inheritable=True)\n"
    "os.environ.update(LISTEN_FDS='1', LISTEN_PID=pid or str(os.getpid()))\n"
    "os.execv(sys.argv[3], sys.argv[3:])\n"
)


def _wrapped(spawn, sock: socket.socket, pid: str, *args: str):
    fd = sock.fileno()
    cmd = [sys.executable, "-c", _WRAPPER, str(fd), pid, str(VENV_BIN / "pounce"), *args]
    return spawn(cmd, pass_fds=(fd,))


def test_activation_refuses_a_socket_that_is_not_listening(spawn):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))  # bound, never listen()ed
    proc, out = _wrapped(spawn, s, "", SD_APP)
    assert proc.wait(10) == 1
    out.wait_for(r"cannot listen on fd 3 \(unknown\) from systemd: the socket is not listening")
    s.close()


def test_activation_refuses_a_file_that_is_not_a_socket(spawn, tmp_path):
    with open(tmp_path / "plain", "w") as f:
        proc, out = _wrapped(spawn, f, "", SD_APP)
        assert proc.wait(10) == 1
    out.wait_for(r"cannot listen on fd 3 \(unknown\) from systemd: not a socket")


def test_listen_pid_of_another_process_is_ignored(spawn):
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(8)
    passed_port = s.getsockname()[1]
    proc, out = _wrapped(spawn, s, "1", SD_APP, "--port", "0")
    m = out.wait_for(r"Listening on http://127\.0\.0\.1:(\d+)")
    port = int(m.group(1))
    assert port != passed_port, "binds as configured"
    status, body = get_json(("127.0.0.1", port))
    assert status == 200 and body["env"] == {}, "the variables are removed all the same"
    assert _stop(proc) == 0
    s.close()


# --------------------------------------------------------------------------
# sd_notify end to end: Pounce under systemd-socket-activate with
# NOTIFY_SOCKET pointing at a datagram socket of the test.


@needs_activate
def test_notify_ready_then_stopping(spawn, notify_socket):
    port = free_port()
    proc, out = _activate(
        spawn, [f"127.0.0.1:{port}"], SD_APP, setenv=[f"NOTIFY_SOCKET={notify_socket.env_value}"]
    )
    assert get_json(("127.0.0.1", port))[0] == 200
    msgs: list[dict] = []

    def until(key: str) -> None:
        # STATUS= lines may come in between; each recv waits at most 10 s.
        while not any(m.get(key) == "1" for m in msgs):
            msgs.append(notify_socket.recv(timeout=10))

    until("READY")
    assert "STOPPING" not in msgs[-1]
    proc.send_signal(signal.SIGTERM)
    until("STOPPING")
    assert proc.wait(10) == 0


@pytest.fixture
def passed_fd3(monkeypatch):
    """A listening TCP socket at fd 3 and LISTEN_* for this process, as
    systemd would pass it (fd 3 of pytest is saved and put back)."""
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(4)
    saved = os.dup(LISTEN_FDS_START)
    os.dup2(lsock.fileno(), LISTEN_FDS_START, inheritable=True)
    monkeypatch.setenv("LISTEN_PID", str(os.getpid()))
    monkeypatch.setenv("LISTEN_FDS", "1")
    monkeypatch.setenv("LISTEN_FDNAMES", "web")
    yield lsock.getsockname()[1]
    os.dup2(saved, LISTEN_FDS_START)
    os.close(saved)
    lsock.close()


def test_bind_listeners_explicit_names_the_source(passed_fd3):
    from pounce import Config
    from pounce._listeners import ListenError, bind_listeners

    with pytest.raises(ListenError) as info:
        bind_listeners(Config(), explicit={"host": "POUNCE_HOST", "log_level": "--log-level"})
    assert str(info.value) == (
        "cannot listen on fd 3 (web): systemd passed listening sockets (LISTEN_FDS) and "
        "POUNCE_HOST also says where to listen; use one or the other"
    )
    assert isinstance(info.value, OSError)
    assert "LISTEN_FDS" not in os.environ


def test_bind_listeners_explicit_without_bind_options_uses_activation(passed_fd3):
    from pounce import Config
    from pounce._listeners import bind_listeners

    # --port 0 in the config but not given explicitly (a default elsewhere):
    # with explicit= known, only what was given counts.
    lst = bind_listeners(Config(port=0), explicit={"log_level": "--log-level"})
    assert [(x.origin, x.name, x.server) for x in lst] == [
        ("systemd", "web", ("127.0.0.1", passed_fd3))
    ]
    lst[0].sock.detach()  # fd 3 is put back by the fixture


@needs_activate
def test_activation_ipv6(spawn):
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        port = probe.getsockname()[1]
        probe.close()
    except OSError as e:
        pytest.skip(f"no IPv6 loopback on this machine: {e}")
    proc, out = _activate(spawn, [f"[::1]:{port}"], SD_APP)
    status, body = get_json(("::1", port), "/six")
    assert status == 200 and body["server"] == ["::1", port]
    out.wait_for(rf"Listening on http://\[::1\]:{port}\b")
    assert _stop(proc) == 0


def test_fd_given_with_dash_dash_fd_is_made_close_on_exec(spawn):
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(8)
    fd, port = lsock.fileno(), lsock.getsockname()[1]
    proc, out = spawn([str(VENV_BIN / "pounce"), SD_APP, "--fd", str(fd)], pass_fds=(fd,))
    out.wait_for(rf"Listening on http://127\.0\.0\.1:{port}\b")
    status, body = get_json(("127.0.0.1", port), f"/?fd={fd}")
    assert status == 200 and body["inheritable"][str(fd)] is False, body
    assert _stop(proc) == 0
    lsock.close()
