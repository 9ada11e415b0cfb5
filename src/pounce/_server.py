"""Running the server: sockets, event loops, workers, lifespan, signals.

The C core does the network work; this module only sets the stage.  Each
worker owns one event loop and one ``_pounce.Worker`` (one epoll instance),
whether it runs on the main thread, on its own thread (thread mode) or in a
forked process (process mode).  The same ``WorkerRunner`` code serves all
three; only the spawning differs.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import socket
import stat
import sys
import threading
import time
from typing import Any

from pounce import _pounce
from pounce._lifespan import Lifespan, LifespanFailed

logger = logging.getLogger("pounce")


# ---- sockets ---------------------------------------------------------------


class Listener:
    """A bound, listening socket and what scope["server"] says about it."""

    def __init__(self, sock: socket.socket, server: Any, is_unix: bool, display: str) -> None:
        self.sock = sock
        self.server = server
        self.is_unix = is_unix
        self.display = display


def _tcp_display(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def bind_listeners(config: Any) -> list[Listener]:
    """Bind the sockets the config asks for (before any worker starts, so
    every worker — thread or process — shares them)."""
    backlog = int(config.backlog)
    if config.fd >= 0:
        sock = socket.socket(fileno=config.fd)
        sock.setblocking(False)
        if sock.family == socket.AF_UNIX:
            path = sock.getsockname()
            if isinstance(path, bytes):
                path = path.decode(errors="replace")
            return [Listener(sock, (path, None), True, f"unix:{path}")]
        host, port = sock.getsockname()[:2]
        return [Listener(sock, (host, port), False, _tcp_display(host, port))]
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
        sock.listen(backlog)
        sock.setblocking(False)
        return [Listener(sock, (path, None), True, f"unix:{path}")]
    infos = socket.getaddrinfo(
        config.host or None, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
    )
    if not infos:
        raise OSError(f"cannot resolve {config.host!r}")
    family, socktype, proto, _, addr = infos[0]
    sock = socket.socket(family, socktype, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(backlog)
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    host, port = sock.getsockname()[:2]
    return [Listener(sock, (host, port), False, _tcp_display(host, port))]


def close_listeners(listeners: list[Listener], config: Any) -> None:
    for lst in listeners:
        lst.sock.close()
    if config.uds and config.fd < 0:
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


# ---- one worker ------------------------------------------------------------


class WorkerRunner:
    """One worker: its loop, its lifespan, its C Worker.  ``run()`` blocks
    until ``stop()`` (thread-safe) is called or a signal arrives."""

    def __init__(
        self,
        app: Any,
        config: Any,
        listeners: list[Listener],
        worker_id: int,
        on_ready: Any = None,
    ) -> None:
        self.on_ready = on_ready
        self.app = app
        self.config = config
        self.listeners = listeners
        self.worker_id = worker_id
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self.ready = threading.Event()
        self.exit_code = 0

    def stop(self) -> None:
        """Ask for a graceful stop; safe from any thread or a signal handler."""
        self._stop_requested = True
        loop, ev = self.loop, self._stop
        if loop is not None and ev is not None and not loop.is_closed():
            try:
                loop.call_soon_threadsafe(ev.set)
            except RuntimeError:
                pass

    def run(self, install_signals: bool = False) -> int:
        loop = new_event_loop(self.config.loop)
        self.loop = loop
        asyncio.set_event_loop(loop)
        try:
            self.exit_code = loop.run_until_complete(self._main(install_signals))
        finally:
            try:
                loop.run_until_complete(loop.shutdown_asyncgens())
            except Exception:  # pragma: no cover - best effort at exit
                pass
            asyncio.set_event_loop(None)
            loop.close()
        return self.exit_code

    async def _main(self, install_signals: bool) -> int:
        loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        if self._stop_requested:
            self._stop.set()
        lifespan = Lifespan(self.app, self.config.lifespan)
        try:
            await lifespan.startup()
        except LifespanFailed as e:
            logger.error("Application startup failed: %s", e)
            self.ready.set()
            await lifespan.shutdown(1.0)
            return 3
        worker = _pounce.Worker(
            self.config,
            self.app,
            loop,
            [(lst.sock.fileno(), lst.server, lst.is_unix) for lst in self.listeners],
            state=lifespan.state,
            on_error=_report_app_error,
            worker_id=self.worker_id,
        )
        loop.add_reader(worker.fileno(), worker.poll)
        if install_signals:
            self._install_signals(loop)
        self.ready.set()
        if self.on_ready is not None:
            self.on_ready(self)
        try:
            await self._stop.wait()
            await self._drain(worker)
        finally:
            loop.remove_reader(worker.fileno())
            worker.close()
        await lifespan.shutdown(max(self.config.shutdown_timeout, 1.0))
        return 0

    async def _drain(self, worker: Any) -> None:
        """Graceful stop: no new connections, idle ones closed, in-flight
        requests get up to shutdown_timeout to finish."""
        loop = asyncio.get_running_loop()
        worker.drain()
        deadline = loop.time() + self.config.shutdown_timeout
        while (worker.connections or worker.active) and loop.time() < deadline:
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

    def _install_signals(self, loop: asyncio.AbstractEventLoop) -> None:
        def first(signame: str) -> None:
            if self._stop_requested:
                logger.warning("%s again: exiting now", signame)
                sys.stderr.flush()
                os._exit(1)
            logger.info("%s received: shutting down (again to exit at once)", signame)
            self.stop()

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, first, sig.name)


# ---- the whole server ------------------------------------------------------


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def gil_enabled() -> bool:
    check = getattr(sys, "_is_gil_enabled", None)
    return True if check is None else bool(check())


def resolve_workers(config: Any) -> tuple[int, str, str]:
    """(count, mode, why)"""
    count = config.workers or _usable_cpus()
    mode = config.worker_mode
    if mode == "auto":
        if gil_enabled():
            mode, why = "process", "the GIL is enabled"
        else:
            mode, why = "thread", "the GIL is disabled (free-threaded CPython)"
    else:
        why = "--worker-mode " + mode
    return count, mode, why


def serve(app: Any, config: Any) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status."""
    try:
        listeners = bind_listeners(config)
    except OSError as e:
        logger.error("cannot listen: %s", e)
        return 1
    try:
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

        def announce(*_: Any) -> None:
            # Only once every worker can take a signal gracefully: whoever
            # reads this line may send SIGTERM right away.
            for lst in listeners:
                logger.info("Listening on %s (press CTRL+C to quit)", lst.display)

        if count == 1:
            return WorkerRunner(app, config, listeners, 0, on_ready=announce).run(
                install_signals=True
            )
        if mode == "thread":
            return _serve_threads(app, config, listeners, count, announce)
        return _serve_processes(app, config, listeners, count, announce)
    finally:
        close_listeners(listeners, config)


def _serve_threads(
    app: Any, config: Any, listeners: list[Listener], count: int, announce: Any
) -> int:
    runners = [WorkerRunner(app, config, listeners, i) for i in range(count)]
    threads = [
        threading.Thread(target=r.run, name=f"pounce-worker-{r.worker_id}", daemon=True)
        for r in runners
    ]
    stopping = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        if stopping.is_set():
            os._exit(1)
        logger.info("%s received: shutting down", signal.Signals(signum).name)
        stopping.set()
        for r in runners:
            r.stop()

    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        for t in threads:
            t.start()
        for r in runners:
            while not r.ready.wait(0.2):
                if not any(t.is_alive() for t in threads):
                    break
        if all(r.ready.is_set() for r in runners) and not stopping.is_set():
            announce()
        while any(t.is_alive() for t in threads):
            for t in threads:
                t.join(0.2)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    codes = [r.exit_code for r in runners]
    return max(codes) if codes else 0


def _serve_processes(
    app: Any, config: Any, listeners: list[Listener], count: int, announce: Any
) -> int:
    children: dict[int, int] = {}
    stopping = False

    def on_signal(signum: int, frame: Any) -> None:
        nonlocal stopping
        if stopping:
            for pid in children:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            os._exit(1)
        stopping = True
        logger.info("%s received: shutting down workers", signal.Signals(signum).name)
        for pid in children:
            try:
                os.kill(pid, signal.SIGTERM)
            except ProcessLookupError:
                pass

    # Installed before the first fork: a signal that arrives while workers
    # start is handled, not fatal.
    old = {s: signal.signal(s, on_signal) for s in (signal.SIGINT, signal.SIGTERM)}
    ready_r, ready_w = os.pipe()
    for i in range(count):
        pid = os.fork()
        if pid == 0:  # child
            os.close(ready_r)
            code = 1
            try:
                runner = WorkerRunner(
                    app, config, listeners, i, on_ready=lambda _r: os.write(ready_w, b"r")
                )
                # Until the worker's loop takes over, a signal just asks it
                # to stop (the parent's handler must not run in a child).
                for sig in (signal.SIGINT, signal.SIGTERM):
                    signal.signal(sig, lambda *_: runner.stop())
                code = runner.run(install_signals=True)
            except BaseException:  # pragma: no cover - reported, then exit
                logger.exception("worker %d crashed", i)
            finally:
                logging.shutdown()
                os._exit(code)
        children[pid] = i
    os.close(ready_w)

    # Announce once every worker is ready (or give up waiting after 60 s:
    # workers that failed at startup exit and are reported below).
    got = 0
    deadline = time.monotonic() + 60
    while got < count and time.monotonic() < deadline and not stopping:
        try:
            chunk = os.read(ready_r, count - got)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            continue
        if not chunk:
            break
        got += len(chunk)
    os.close(ready_r)
    if got == count and not stopping:
        announce()

    worst = 0
    try:
        while children:
            try:
                pid, status = os.waitpid(-1, 0)
            except ChildProcessError:
                break
            except InterruptedError:  # pragma: no cover - PEP 475 retries
                continue
            if pid in children:
                code = os.waitstatus_to_exitcode(status)
                i = children.pop(pid)
                if code != 0:
                    logger.error("worker %d exited with status %d", i, code)
                    worst = max(worst, 1)
                    if not stopping:
                        # Without a supervisor that replaces workers (yet),
                        # a failed worker stops the server.
                        on_signal(signal.SIGTERM, None)
    finally:
        for s, h in old.items():
            signal.signal(s, h)
    return worst
