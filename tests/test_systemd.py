"""systemd: the notify protocol (pounce._systemd.Notifier) against a notify
socket made here, and socket activation through the real
systemd-socket-activate (Debian's systemd package; it needs no running
systemd).

The Notifier tests are unit tests: a datagram socket bound in tmp_path (or
an abstract one) plays systemd's part and receives what Notifier sends.
"""

from __future__ import annotations

import logging
import os
import socket
import time

import pytest

from pounce._systemd import LISTEN_FDS_START, Notifier, listen_fds

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
def test_unusable_notify_socket_is_ignored_with_a_warning(value, caplog):
    with caplog.at_level(logging.WARNING, logger="pounce"):
        n = Notifier.from_environ({"NOTIFY_SOCKET": value})
    assert not n.enabled
    assert n.ready() is False
    assert "NOTIFY_SOCKET" in caplog.text


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


def test_sending_never_raises_and_warns_once(tmp_path, caplog):
    ns = NotifySocket(str(tmp_path / "gone"))
    n = Notifier.from_environ({"NOTIFY_SOCKET": ns.env_value})
    ns.close()
    os.unlink(tmp_path / "gone")  # systemd went away: ECONNREFUSED/ENOENT
    with caplog.at_level(logging.DEBUG, logger="pounce"):
        assert n.ready() is False
        assert n.stopping() is False
        assert n.status("x") is False
    warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(warnings) == 1, caplog.text
    assert "gone" in warnings[0].getMessage()
    assert any(r.levelno == logging.DEBUG for r in caplog.records)
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
