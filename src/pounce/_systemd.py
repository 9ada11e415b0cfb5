"""systemd without libsystemd: the notify protocol and socket activation.

Both protocols are small and stable (see sd_notify(3) and
sd_listen_fds(3)), so they are spoken here directly, in Python, by the main
process.  Nothing here is on the request path.

The notify protocol — ``Notifier``
----------------------------------

``Notifier.from_environ()`` reads ``NOTIFY_SOCKET`` (a path, or ``@name``
for an abstract socket) and ``WATCHDOG_USEC``/``WATCHDOG_PID``.  Without
``NOTIFY_SOCKET`` every method is a no-op returning False, so callers never
test whether they run under systemd.  The API (stable; the master process
calls it):

    n = Notifier.from_environ()     # once, in the main process
    n.enabled                       # True when NOTIFY_SOCKET was usable
    n.ready(status=None)            # READY=1 [+ STATUS=...]: every worker serves
    n.reloading(status=None)        # RELOADING=1 + MONOTONIC_USEC=<now>; later ready()
    n.stopping(status=None)         # STOPPING=1: the drain has begun
    n.status(text)                  # STATUS=<one line of free text>
    n.watchdog_usec                 # WATCHDOG_USEC for us, or None (no watchdog)
    n.watchdog_interval             # seconds between pings: half the timeout, or None
    n.watchdog()                    # WATCHDOG=1 (a no-op without a watchdog)
    n.extend_timeout(seconds)       # EXTEND_TIMEOUT_USEC=...: a long start/stop
    n.notify("A=1", "B=2")          # any other assignments, one datagram
    n.close()

Each call sends one datagram (newline-separated ``KEY=value`` lines) and
returns whether the kernel took it.  Sending never raises: a failure is
logged once as a warning (then at debug level), because a server that
serves but cannot tell systemd so is better than one that dies of it.
The socket is blocking with a short timeout, so a wedged service manager
delays the caller by at most ``SEND_TIMEOUT`` seconds per message.

With ``NotifyAccess=main`` (recommended) systemd accepts messages only from
the main PID; the kernel attaches the sender's credentials itself.

Socket activation — ``listen_fds()``
------------------------------------

``listen_fds()`` returns the sockets passed by systemd (or
systemd-socket-activate) when ``LISTEN_PID`` is our PID: fds 3 to
3 + ``LISTEN_FDS`` - 1, with their ``LISTEN_FDNAMES``.  It always removes
the three ``LISTEN_*`` variables from ``os.environ`` so the application and
every child process never see them (a child would take them for its own if
it ever had the same PID, e.g. after an exec), and marks the fds
close-on-exec.  Checking that each fd is a listening stream socket is the
caller's job (``pounce._listeners``), which knows what it can serve.

Main thread of the main process only; not thread-safe.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from typing import Mapping, MutableMapping

__all__ = ["Notifier", "listen_fds", "LISTEN_FDS_START", "SEND_TIMEOUT"]

logger = logging.getLogger("pounce")

#: The first passed fd (SD_LISTEN_FDS_START).
LISTEN_FDS_START = 3

#: Seconds one notify datagram may wait for room in the receiver's queue.
SEND_TIMEOUT = 1.0

_LISTEN_VARS = ("LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES")


def _parse_address(value: str) -> str | None:
    """NOTIFY_SOCKET's value as an AF_UNIX address, or None if unusable.
    "@name" is an abstract socket (a leading NUL in the kernel's terms)."""
    if value.startswith("@") and len(value) > 1:
        return "\0" + value[1:]
    if value.startswith("/"):
        return value
    return None  # relative paths, vsock:, empty: not for us


def _parse_watchdog(environ: Mapping[str, str], pid: int) -> int | None:
    """WATCHDOG_USEC when it is meant for this process, else None."""
    text = environ.get("WATCHDOG_USEC", "")
    if not text:
        return None
    try:
        usec = int(text, 10)
    except ValueError:
        logger.warning("ignoring WATCHDOG_USEC=%r: not a number", text)
        return None
    if usec <= 0:
        return None
    wpid = environ.get("WATCHDOG_PID", "")
    if wpid:
        try:
            if int(wpid, 10) != pid:
                return None  # the watchdog is some other process's
        except ValueError:
            logger.warning("ignoring WATCHDOG_PID=%r: not a number", wpid)
            return None
    return usec


class Notifier:
    """sd_notify(3) over a datagram socket; see the module docstring."""

    def __init__(self, address: str | None, watchdog_usec: int | None = None) -> None:
        self.address = address
        self.watchdog_usec = watchdog_usec
        self._sock: socket.socket | None = None
        self._failed = False
        if address is None:
            return
        try:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC)
        except OSError as e:
            self._fail(e)
            return
        sock.settimeout(SEND_TIMEOUT)
        self._sock = sock

    @classmethod
    def from_environ(
        cls, environ: Mapping[str, str] | None = None, pid: int | None = None
    ) -> "Notifier":
        """A Notifier for NOTIFY_SOCKET/WATCHDOG_* of ``environ`` (default
        os.environ).  The variables are left in place: a SIGHUP re-exec, if
        any, must find them again; NotifyAccess=main keeps children out."""
        env = os.environ if environ is None else environ
        pid = os.getpid() if pid is None else pid
        raw = env.get("NOTIFY_SOCKET", "")
        address = _parse_address(raw) if raw else None
        if raw and address is None:
            logger.warning("ignoring NOTIFY_SOCKET=%r: not a path or @abstract name", raw)
        return cls(address, _parse_watchdog(env, pid) if address else None)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    @property
    def watchdog_interval(self) -> float | None:
        """Seconds between watchdog() calls: half of WATCHDOG_USEC, as
        sd_watchdog_enabled(3) advises; None without a watchdog."""
        if self.watchdog_usec is None or not self.enabled:
            return None
        return self.watchdog_usec / 2e6

    def _fail(self, e: OSError) -> None:
        where = self.address.replace("\0", "@", 1) if self.address else "?"
        if self._failed:
            logger.debug("sd_notify to %s failed: %s", where, e)
        else:
            self._failed = True
            logger.warning("cannot notify systemd at %s: %s", where, e.strerror or e)

    def notify(self, *assignments: str) -> bool:
        """Send ``KEY=value`` lines as one datagram; True if it was sent."""
        if self._sock is None or not assignments:
            return False
        data = "\n".join(assignments).encode("utf-8", "replace")
        try:
            self._sock.sendto(data, self.address)  # type: ignore[arg-type]
        except OSError as e:  # includes socket.timeout
            self._fail(e)
            return False
        return True

    @staticmethod
    def _status(text: str | None) -> list[str]:
        if text is None:
            return []
        # One line: a newline would start a new assignment.
        return ["STATUS=" + " ".join(str(text).splitlines())]

    def ready(self, status: str | None = None) -> bool:
        return self.notify("READY=1", *self._status(status))

    def reloading(self, status: str | None = None) -> bool:
        # systemd (Type=notify-reload, and notify since v253) wants the
        # CLOCK_MONOTONIC time the reload started at with RELOADING=1.
        usec = time.clock_gettime_ns(time.CLOCK_MONOTONIC) // 1000
        return self.notify("RELOADING=1", f"MONOTONIC_USEC={usec}", *self._status(status))

    def stopping(self, status: str | None = None) -> bool:
        return self.notify("STOPPING=1", *self._status(status))

    def status(self, text: str) -> bool:
        return self.notify(*self._status(text))

    def watchdog(self) -> bool:
        if self.watchdog_usec is None:
            return False
        return self.notify("WATCHDOG=1")

    def extend_timeout(self, seconds: float) -> bool:
        return self.notify(f"EXTEND_TIMEOUT_USEC={max(0, int(seconds * 1e6))}")

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None

    def __repr__(self) -> str:
        where = self.address.replace("\0", "@", 1) if self.address else None
        return f"<Notifier {where!r} watchdog_usec={self.watchdog_usec}>"


def listen_fds(
    environ: MutableMapping[str, str] | None = None, pid: int | None = None
) -> list[tuple[int, str]]:
    """The sockets systemd passed us, as (fd, name); [] when there are none
    or LISTEN_PID is another process's.  Always removes the LISTEN_*
    variables from ``environ`` (default os.environ).  Raises ValueError for
    malformed variables meant for us."""
    env = os.environ if environ is None else environ
    values = {k: env.pop(k, None) for k in _LISTEN_VARS}
    pid = os.getpid() if pid is None else pid
    lpid, lfds, lnames = values["LISTEN_PID"], values["LISTEN_FDS"], values["LISTEN_FDNAMES"]
    if not lpid or not lfds:
        return []
    try:
        if int(lpid, 10) != pid:
            return []
    except ValueError:
        raise ValueError(f"LISTEN_PID={lpid!r} is not a process id") from None
    try:
        count = int(lfds, 10)
    except ValueError:
        raise ValueError(f"LISTEN_FDS={lfds!r} is not a number") from None
    if count < 0 or count > 4096:
        raise ValueError(f"LISTEN_FDS={lfds!r} is out of range")
    names = lnames.split(":") if lnames is not None else ["unknown"] * count
    if len(names) != count:
        raise ValueError(f"LISTEN_FDNAMES={lnames!r} does not name {count} fd(s)")
    out = []
    for i in range(count):
        fd = LISTEN_FDS_START + i
        try:
            os.set_inheritable(fd, False)
        except OSError as e:
            raise ValueError(f"LISTEN_FDS: fd {fd} ({names[i]}): {e.strerror}") from None
        out.append((fd, names[i]))
    return out
