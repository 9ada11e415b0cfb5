"""One worker: its event loop, its lifespan and its ``_pounce.Worker``.

The C core does the network work; this module only sets the stage.  Each
worker owns one event loop and one ``_pounce.Worker`` (one epoll instance),
whether it runs on a thread (thread mode) or in a forked process (process
mode).  The same ``WorkerRunner`` serves both; the spawning, and the
carrying of its ``Message``s to the supervisor, live in ``_supervisor.py``,
which imports this module and is never imported by it.
"""

from __future__ import annotations

import asyncio
import logging
import random
from typing import Any, Callable

from pounce import _pounce
from pounce._control import Message, gil_enabled
from pounce._lifespan import Lifespan, LifespanFailed
from pounce._listeners import Listener
from pounce._logging import recheck as recheck_logging
from pounce._pounce import Config

__all__ = [
    "EXIT_STARTUP_FAILED",
    "Message",
    "WorkerRunner",
    "gil_enabled",
    "new_event_loop",
    "request_limit",
]

logger = logging.getLogger("pounce")

#: Exit status of a worker whose application failed to start (lifespan).
EXIT_STARTUP_FAILED = 3


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


def request_limit(config: Config) -> int:
    """This worker's --max-requests share, jitter included (0 = none)."""
    if config.max_requests <= 0:
        return 0
    jitter = random.randint(0, config.max_requests_jitter) if config.max_requests_jitter else 0
    return config.max_requests + jitter


def access_logger() -> logging.Logger | None:
    """The ``pounce.access`` logger when the user gave it handlers of their
    own (dictConfig, --log-config, addHandler) by the time the worker
    starts: access lines then go through it, one ``info`` call per line,
    instead of the C core's write(2) (docs/operations.md says what that
    costs).  Otherwise None: the default path stays pure C."""
    log = logging.getLogger("pounce.access")
    return log if log.handlers else None


class WorkerRunner:
    """One worker: its loop, its lifespan, its C Worker.  ``run()`` blocks
    until ``stop()`` (thread-safe) is called.

    notify(message) is called from the worker's own thread: with
    Message.READY once the worker accepts connections, with Message.RETIRE
    once it has served its --max-requests share (it keeps serving until
    stopped, so a replacement can start first)."""

    def __init__(
        self,
        app: Any,
        config: Config,
        listeners: list[Listener],
        worker_id: int,
        notify: Callable[[Message], None] | None = None,
        release_gil: bool = False,
        max_requests: int = 0,
        shared_listeners: bool = False,
        balance: _pounce.BalanceTable | None = None,
        balance_slot: int = -1,
        access_log_fd: int = -1,
        metrics: _pounce.MetricsTable | None = None,
        metrics_slot: int = -1,
    ) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.worker_id = worker_id
        self.notify = notify
        self.release_gil = release_gil
        self.max_requests = max_requests
        self.shared_listeners = shared_listeners
        self.balance, self.balance_slot = balance, balance_slot
        self.access_log_fd = access_log_fd
        self.metrics, self.metrics_slot = metrics, metrics_slot
        self.loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._stop_requested = False
        self._close_idle = True
        self._shutdown = True
        self.exit_code = 0

    def _tell(self, message: Message) -> None:
        if self.notify is not None:
            self.notify(message)

    def stop(self, close_idle: bool = True, shutdown: bool | None = None) -> None:
        """Ask for a graceful stop; safe from any thread or a signal handler.

        close_idle=False (reload, recycling, SIGTERM) lets idle keep-alive
        connections get their next request answered (with Connection: close)
        instead of closing them under a client that may be sending one right
        now.  shutdown (default: close_idle) says the server stops, so
        --health-path answers 503; False for reload and recycling."""
        if shutdown is None:
            shutdown = close_idle
        if self._stop_requested:
            self._close_idle = self._close_idle or close_idle  # shutdown escalates a gentle drain
            self._shutdown = self._shutdown or shutdown
        else:
            self._close_idle = close_idle
            self._shutdown = shutdown
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
            recheck_logging()
            logger.error("Application startup failed: %s", e)
            await lifespan.shutdown(1.0)
            return EXIT_STARTUP_FAILED
        # The app may have configured logging in its lifespan startup:
        # Pounce's loggers stay enabled (and 'pounce.access' handlers set
        # there count when the worker starts).
        recheck_logging()
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
            balance=self.balance,
            balance_slot=self.balance_slot,
            access_log_fd=self.access_log_fd,
            access_logger=access_logger(),
            metrics=self.metrics,
            metrics_slot=self.metrics_slot,
        )
        loop.add_reader(worker.fileno(), worker.poll)
        self._tell(Message.READY)
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

    async def _watch_requests(self, worker: _pounce.Worker) -> None:
        # A cheap periodic look instead of a check on the request path; a
        # worker may overshoot its share by what it serves in 50 ms.
        while worker.served < self.max_requests:
            await asyncio.sleep(0.05)
        logger.info(
            "worker %d served %d requests (--max-requests): being replaced",
            self.worker_id,
            worker.served,
        )
        self._tell(Message.RETIRE)

    async def _drain(self, worker: _pounce.Worker) -> None:
        """Graceful stop: no new connections; in-flight requests get up to
        shutdown_timeout to finish."""
        loop = asyncio.get_running_loop()
        gentle, shutdown = not self._close_idle, self._shutdown
        worker.drain(close_idle=not gentle, shutdown=shutdown)
        deadline = loop.time() + self.config.shutdown_timeout
        while (worker.connections or worker.active) and loop.time() < deadline:
            if (gentle and self._close_idle) or (not shutdown and self._shutdown):
                # A shutdown arrived during a gentle (reload/recycle) drain.
                gentle, shutdown = not self._close_idle, self._shutdown
                worker.drain(close_idle=not gentle, shutdown=shutdown)
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
