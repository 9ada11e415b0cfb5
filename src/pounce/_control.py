"""What the processes of one Pounce say to each other, and what signals mean.

A running ``pounce APP`` is a tree in one process group (docs/workers.md):

    master (the PID the operator started)      _master.py: signals, listeners, pid file
      generation (one per load of the app)      _supervisor.py: workers, crash replacement
        worker processes (process mode only)    _runner.py: one event loop each

Only the top of the tree acts on the signals an operator, a terminal or a
service manager sends (``on_signal`` below says what each one means).  A
terminal sends SIGINT to the whole foreground process group and systemd's
KillMode=control-group sends SIGTERM to every process, so everything below
the top ignores them: one Ctrl-C is counted once, and a SIGTERM sent to a
worker directly never cuts a request short.  Orders go down the tree on
channels nobody else writes to: the master writes a ``Command`` byte on a
generation's control pipe, a generation sends a worker process SIGUSR1
(drain gently: reload, recycling), SIGRTMIN (drain gently for a shutdown,
so health checks say 503), SIGUSR2 (drain, closing idle connections now)
or SIGRTMIN+1 (reopen --access-log-file).  SIGUSR1 from the outside, to
the top of the tree, means "reopen the log files" (logrotate): the master
reopens its own descriptor and sends REOPEN_LOGS down.  Reports
go up as ``Message`` bytes on pipes.

This module imports nothing heavy (no asyncio, no extension module): the
master process, which must stay small, uses it.  ``pounce.run()`` serves in
the calling process; its Supervisor owns the signals itself, with the same
``on_signal`` rules.
"""

from __future__ import annotations

import enum
import errno
import logging
import os
import signal
import socket
import sys
from typing import Any, Iterable

__all__ = [
    "Command",
    "Message",
    "OUTSIDE_SIGNALS",
    "DRAIN_GENTLY",
    "DRAIN_CLOSE_IDLE",
    "REOPEN_LOGS",
    "open_access_log",
    "open_access_log_at_start",
    "reopen_access_log",
    "gil_enabled",
    "resolve_workers",
    "on_signal",
    "refuse_new_connections",
    "write_pid_file",
    "remove_pid_file",
]

logger = logging.getLogger("pounce")


class Message(bytes, enum.Enum):
    """What a worker tells its supervisor, and a generation its master.

    A thread worker's message goes through the supervisor's event queue; a
    process worker writes the value, one byte, to its status pipe; a
    generation writes READY on its ready pipe once all its workers serve."""

    READY = b"R"  # accepting connections
    RETIRE = b"M"  # served its --max-requests share; serves on until stopped


class Command(bytes, enum.Enum):
    """What the master tells a generation, one byte on its control pipe.
    (Exiting at once needs no command: the master sends SIGKILL.)"""

    DRAIN = b"T"  # shutdown (SIGTERM): idle keep-alive connections get Connection: close
    DRAIN_CLOSE_IDLE = b"I"  # shutdown (SIGINT): idle keep-alive connections close now
    REPLACED = b"N"  # a newer generation serves: drain gently and exit
    MORE = b"+"  # SIGTTIN: one worker more
    FEWER = b"-"  # SIGTTOU: one worker fewer
    REOPEN_LOGS = b"L"  # SIGUSR1: reopen --access-log-file (logrotate)


#: The signals only the top of the tree acts on; every process below
#: ignores them (see the module docstring).
OUTSIDE_SIGNALS = (
    signal.SIGINT,
    signal.SIGTERM,
    signal.SIGQUIT,
    signal.SIGHUP,
    signal.SIGTTIN,
    signal.SIGTTOU,
)

#: From a generation to its worker processes.
DRAIN_GENTLY = signal.SIGUSR1
DRAIN_CLOSE_IDLE = signal.SIGUSR2
#: A shutdown drain (SIGTERM) that keeps idle connections like DRAIN_GENTLY
#: but says the server stops (--health-path answers 503); no one else sends it.
DRAIN_SHUTDOWN = signal.SIGRTMIN
#: Reopen --access-log-file in place.  Not SIGUSR1, which is DRAIN_GENTLY
#: on this channel; no one else sends it.
REOPEN_LOGS = signal.SIGRTMIN + 1


# -- --access-log-file ----------------------------------------------------------------------
#
# The file is opened once per tree, before the master execs, and every
# process below inherits the descriptor at the same NUMBER: C workers write
# their lines to it with write(2) (pn_access_log.h).  A reopen never changes
# that number: the new file is opened, dup2()ed over it, and the temporary
# descriptor closed, so a worker thread writing at that moment writes to the
# old file or the new one, never to a closed or reused descriptor, and no
# worker needs telling.  Each process holds its own copy of the number (fork
# copies the table), so each one reopens: the master, the generation, and
# every worker process (REOPEN_LOGS).


def open_access_log(path: str) -> int:
    """Open --access-log-file for appending (created 0644 less the umask);
    raises OSError."""
    return os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT | os.O_CLOEXEC, 0o644)


def open_access_log_at_start(path: str) -> int | None:
    """--access-log-file at start-up: its descriptor, -1 without the
    setting, or None when it cannot be opened (logged, naming the path:
    the caller exits 1)."""
    if not path:
        return -1
    try:
        return open_access_log(path)
    except OSError as e:
        logger.error("cannot open the access log file %s: %s", path, e.strerror or e)
        return None


def reopen_access_log(path: str, fd: int) -> bool:
    """Point ``fd`` at a freshly opened ``path`` (after logrotate renamed
    it).  On failure the lines keep going to the old file and an error is
    logged; returns whether it was reopened."""
    try:
        new = open_access_log(path)
    except OSError as e:
        logger.error("cannot reopen the access log file %s: %s (still writing to the old one)",
                     path, e.strerror or e)
        return False
    try:
        if new != fd:
            os.dup2(new, fd, inheritable=False)
    finally:
        if new != fd:
            os.close(new)
    return True


def on_signal(sig: int, stopping: bool) -> str:
    """What a signal means to the top of the tree, given whether a shutdown
    has begun:

    "drain"             SIGTERM: refuse new connections, finish in-flight
                        requests, Connection: close on idle keep-alive ones
    "drain-close-idle"  SIGINT: the same, but idle connections close at once
                        (a quick exit for a developer at a terminal)
    "again"             SIGTERM during a shutdown: logged, otherwise ignored
                        (orchestrators and timeout(1) send it more than once)
    "exit"              SIGQUIT, or SIGINT during a shutdown: exit at once
    "reload"            SIGHUP ("ignored" during a shutdown)
    "reopen-logs"       SIGUSR1: reopen --access-log-file (logrotate), also
                        during a shutdown: draining workers still log
    "more" / "fewer"    SIGTTIN / SIGTTOU ("ignored" during a shutdown)
    """
    if sig == signal.SIGQUIT:
        return "exit"
    if sig == signal.SIGUSR1:
        return "reopen-logs"
    if sig == signal.SIGINT:
        return "exit" if stopping else "drain-close-idle"
    if sig == signal.SIGTERM:
        return "again" if stopping else "drain"
    if stopping:
        return "ignored"
    return {signal.SIGHUP: "reload", signal.SIGTTIN: "more", signal.SIGTTOU: "fewer"}.get(
        sig, "ignored"
    )


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(config: Any) -> tuple[int, str, str]:
    """(count, mode, why) for a pounce.Config."""
    count = config.workers or _usable_cpus()
    mode: str = config.worker_mode
    if mode == "auto":
        if not gil_enabled():
            mode, why = "thread", "the GIL is disabled (free-threaded CPython)"
        elif count == 1:
            mode, why = "thread", "one worker: a thread, no fork needed"
        else:
            mode, why = "process", "the GIL is enabled"
    else:
        why = "--worker-mode " + mode
    return count, mode, why


def refuse_new_connections(socks: Iterable[socket.socket]) -> None:
    """The first step of a shutdown: new connections are refused at once.

    shutdown(SHUT_RD) on a listening socket takes it out of LISTEN for
    every process sharing it (Linux): a TCP connect then gets RST
    (ECONNREFUSED), a Unix connect ECONNREFUSED, so a load balancer fails
    over at once instead of queueing connections nobody will accept.  TCP
    connections already queued but not yet accepted are reset; queued Unix
    ones stay acceptable (and are closed with the socket if nobody does).
    A worker's epoll that still holds the socket then sees it readable,
    level-triggered (EPOLLHUP for TCP, EPOLLIN for Unix, whose
    SO_ACCEPTCONN stays 1), with nothing to accept (EINVAL / EAGAIN),
    until the worker's drain removes it: a few accept() calls per worker,
    since the drain follows within milliseconds.

    Only for sockets we bound: one inherited from systemd or --fd outlives
    us, and its owner keeps queueing connections for the next instance."""
    for sock in socks:
        try:
            sock.shutdown(socket.SHUT_RD)
        except OSError as e:
            if e.errno != errno.ENOTCONN:
                logger.warning("cannot stop listening on fd %d: %s", sock.fileno(), e)


def write_pid_file(path: str) -> None:
    """Write our PID to ``path``, replacing whatever is there (a stale file
    from a killed run), atomically: a reader never sees it half written."""
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(f"{os.getpid()}\n")
    os.replace(tmp, path)


def remove_pid_file(path: str) -> None:
    """Remove ``path`` if it still names us (a newer instance may own it)."""
    try:
        with open(path) as f:
            if f.read().strip() != str(os.getpid()):
                return
        os.unlink(path)
    except OSError:
        pass
