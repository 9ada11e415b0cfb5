"""Running the server: sockets, event loops and one worker.

The C core does the network work; this module only sets the stage.  Each
worker owns one event loop and one ``_pounce.Worker`` (one epoll instance),
whether it runs on a thread (thread mode) or in a forked process (process
mode).  The same ``WorkerRunner`` code serves both; only the spawning
differs, and that lives in ``_supervisor.py``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import random
import socket
import stat
import sys
import threading
from typing import Any, Callable

from pounce import _pounce
from pounce._lifespan import Lifespan, LifespanFailed

logger = logging.getLogger("pounce")

#: Set by a reloading Pounce for the Pounce it starts: the listening sockets
#: to adopt instead of binding (JSON), and the fd on which to say "ready".
INHERIT_ENV = "POUNCE_INHERIT_LISTENERS"
READY_FD_ENV = "POUNCE_READY_FD"

#: Exit status of a worker whose application failed to start (lifespan).
EXIT_STARTUP_FAILED = 3


# ---- sockets ---------------------------------------------------------------


class Listener:
    """A bound, listening socket and what scope["server"] says about it."""

    def __init__(self, sock: socket.socket, server: Any, is_unix: bool, display: str) -> None:
        self.sock = sock
        self.server = server
        self.is_unix = is_unix
        self.display = display

    def describe(self) -> dict[str, Any]:
        return {
            "fd": self.sock.fileno(),
            "server": list(self.server),
            "unix": self.is_unix,
            "display": self.display,
        }


def _tcp_display(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _adopt(fd: int) -> Listener:
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    if sock.family == socket.AF_UNIX:
        path = sock.getsockname()
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        return Listener(sock, (path, None), True, f"unix:{path}")
    host, port = sock.getsockname()[:2]
    return Listener(sock, (host, port), False, _tcp_display(host, port))


def _bind_tcp(config: Any, reuse_port: bool) -> Listener:
    infos = socket.getaddrinfo(
        config.host or None, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    if not infos:
        raise OSError(f"cannot resolve {config.host!r}")
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(int(config.backlog))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    return Listener(sock, (host, port), False, _tcp_display(host, port))


def bind_listeners(config: Any) -> list[Listener]:
    """Bind the socket the config asks for (before any worker starts, so
    every worker — thread or process — shares it), or adopt the sockets a
    reloading Pounce handed over."""
    inherited = os.environ.pop(INHERIT_ENV, None)
    if inherited:
        return [_adopt(int(d["fd"])) for d in json.loads(inherited)]
    if config.fd >= 0:
        return [_adopt(config.fd)]
    if config.uds:
        path = config.uds
        try:
            st = os.stat(path)
        except FileNotFoundError:
            pass
        else:
            if stat.S_ISSOCK(st.st_mode):
                os.unlink(path)  # a stale socket from an earlier run
            else:
                raise OSError(f"--uds {path!r} exists and is not a socket")
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.bind(path)
        sock.listen(int(config.backlog))
        sock.setblocking(False)
        return [Listener(sock, (path, None), True, f"unix:{path}")]
    return [_bind_tcp(config, config.reuse_port)]


def extra_reuse_port_listeners(config: Any, first: list[Listener], count: int) -> list[list[Listener]]:
    """With --reuse-port, one more SO_REUSEPORT socket per extra worker, on
    the port the first one got (so --port 0 works too)."""
    out = [first]
    if not config.reuse_port or config.uds or config.fd >= 0 or count <= 1:
        return out + [first] * (count - 1)
    port = first[0].server[1]
    for _ in range(count - 1):
        out.append([_bind_tcp(config.replace(port=port), True)])
    return out


def close_listeners(listeners: list[Listener], config: Any, unlink: bool = True) -> None:
    for lst in listeners:
        lst.sock.close()
    if unlink and config.uds and config.fd < 0:
        try:
            os.unlink(config.uds)
        except OSError:
            pass


# ---- event loops -----------------------------------------------------------


def new_event_loop(choice: str) -> asyncio.AbstractEventLoop:
    if choice in ("auto", "uvloop"):
        try:
            import uvloop  # type: ignore[import-not-found]
        except ImportError:
            if choice == "uvloop":
                raise RuntimeError("--loop uvloop was asked for, but uvloop is not installed")
        else:
            return uvloop.new_event_loop()
    return asyncio.new_event_loop()


def _report_app_error(message: str, exc: BaseException | None) -> None:
    if exc is None:
        logger.error(message)
    else:
        logger.error(message, exc_info=(type(exc), exc, exc.__traceback__))


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def request_limit(config: Any) -> int:
    """This worker's --max-requests share, jitter included (0 = none)."""
    if config.max_requests <= 0:
        return 0
    jitter = random.randint(0, config.max_requests_jitter) if config.max_requests_jitter else 0
    return config.max_requests + jitter


# ---- one worker ------------------------------------------------------------


class WorkerRunner:
    """One worker: its loop, its lifespan, its C Worker.  ``run()`` blocks
    until ``stop()`` (thread-safe) is called.

    on_ready(runner) is called once the worker accepts connections;
    on_retire(runner) once it has served its --max-requests share (it keeps
    serving until stopped, so a replacement can start first)."""

    def __init__(
        self,
        app: Any,
        config: Any,
        listeners: list[Listener],
        worker_id: int,
        on_ready: Callable[["WorkerRunner"], None] | None = None,
        on_retire: Callable[["WorkerRunner"], None] | None = None,
        release_gil: bool = False,
        max_requests: int = 0,
        shared_listeners: bool = False,
    ) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.worker_id = worker_id
        self.on_ready = on_ready
        self.on_retire = on_retire
        self.release_gil = release_gil
        self.max_requests = max_requests
        self.shared_listeners = shared_listeners
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._close_idle = True
        self.ready = threading.Event()
        self.exit_code = 0

    def stop(self, close_idle: bool = True) -> None:
        """Ask for a graceful stop; safe from any thread or a signal handler.

        close_idle=False (reload, recycling) lets idle keep-alive connections
        get their next request answered (with Connection: close) instead of
        closing them under a client that may be sending one right now."""
        if self._stop_requested:
            self._close_idle = self._close_idle or close_idle  # shutdown escalates a gentle drain
        else:
            self._close_idle = close_idle
        self._stop_requested = True
        loop, ev = self.loop, self._stop
        if loop is not None and ev is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                pass

    def run(self) -> int:
        loop = new_event_loop(self.config.loop)
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.exit_code = loop.run_until_complete(self._main())
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:  # pragma: no cover - best effort at exit
                pass
            asyncio.set_event_loop(None)
            loop.close()
        return self.exit_code

    async def _main(self) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        lifespan = Lifespan(self.app, self.config.lifespan)
        try:
            await lifespan.startup()
        except LifespanFailed as e:
            logger.error("Application startup failed: %s", e)
            await lifespan.shutdown(1.0)
            return EXIT_STARTUP_FAILED
        worker = _pounce.Worker(
            self.config,
            self.app,
            loop,
            [(lst.sock.fileno(), lst.server, lst.is_unix) for lst in self.listeners],
            state=lifespan.state,
            on_error=_report_app_error,
            worker_id=self.worker_id,
            release_gil=self.release_gil,
            shared_listeners=self.shared_listeners,
        )
        loop.add_reader(worker.fileno(), worker.poll)
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready(self)
        watch = None
        if self.max_requests > 0:
            watch = loop.create_task(self._watch_requests(worker))
        try:
            await self._stop.wait()
            await self._drain(worker)
        finally:
            if watch is not None:
                watch.cancel()
            loop.remove_reader(worker.fileno())
            worker.close()
        await lifespan.shutdown(max(self.config.shutdown_timeout, 1.0))
        return 0

    async def _watch_requests(self, worker: Any) -> None:
        # A cheap periodic look instead of a check on the request path; a
        # worker may overshoot its share by what it serves in 50 ms.
        while worker.served < self.max_requests:
            await asyncio.sleep(0.05)
        logger.info(
            "worker %d served %d requests (--max-requests): being replaced",
            self.worker_id,
            worker.served,
        )
        if self.on_retire is not None:
            self.on_retire(self)

    async def _drain(self, worker: Any) -> None:
        """Graceful stop: no new connections; in-flight requests get up to
        shutdown_timeout to finish."""
        loop = asyncio.get_running_loop()
        gentle = not self._close_idle
        worker.drain(close_idle=not gentle)
        deadline = loop.time() + self.config.shutdown_timeout
        while (worker.connections or worker.active) and loop.time() < deadline:
            if gentle and self._close_idle:
                # A shutdown arrived during a gentle (reload/recycle) drain.
                gentle = False
                worker.drain(close_idle=True)
            await asyncio.sleep(0.02)
        if worker.connections or worker.active:
            logger.warning(
                "shutdown timeout: closing %d connection(s), %d request(s) unfinished",
                worker.connections,
                worker.active,
            )
        worker.close_all()
        # Tasks still running get their http.disconnect; give them a moment.
        grace = loop.time() + 0.5
        while worker.active and loop.time() < grace:
            await asyncio.sleep(0.01)


# ---- the whole server ------------------------------------------------------


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(config: Any) -> tuple[int, str, str]:
    """(count, mode, why)"""
    count = config.workers or _usable_cpus()
    mode = config.worker_mode
    if mode == "auto":
        if not gil_enabled():
            mode, why = "thread", "the GIL is disabled (free-threaded CPython)"
        elif count == 1:
            mode, why = "thread", "one worker: it runs in the main process"
        else:
            mode, why = "process", "the GIL is enabled"
    else:
        why = "--worker-mode " + mode
    return count, mode, why


def serve(app: Any, config: Any, reload_argv: list[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status.

    reload_argv is the command that starts a fresh Pounce for SIGHUP (the
    CLI passes its own command line); without it SIGHUP is refused."""
    from pounce._supervisor import Supervisor

    try:
        listeners = bind_listeners(config)
    except OSError as e:
        logger.error("cannot listen: %s", e)
        return 1
    count, mode, why = resolve_workers(config)
    logger.info(
        "Pounce %s on CPython %s: %d worker%s, %s mode (%s)",
        _pounce.VERSION,
        sys.version.split()[0],
        count,
        "" if count == 1 else "s",
        mode,
        why,
    )
    # A build without a codec's library (pip install without pkg-config or
    # a -dev package) serves fine but never uses that codec: say so.
    missing = [c for c in ("zstd", "br", "gzip") if c not in getattr(_pounce, "CODECS", ())]
    if missing:
        logger.warning(
            "this Pounce was built WITHOUT the %s codec%s (library not found at build "
            "time): no %s response compression or request decompression",
            ", ".join(missing),
            "" if len(missing) == 1 else "s",
            "/".join(missing),
        )
    sup = Supervisor(app, config, listeners, count, mode, reload_argv)
    try:
        return sup.run()
    finally:
        sup.close()
