"""The supervisor: starts the workers, watches them, replaces them.

One Supervisor runs in the main thread of its process, whatever the worker
mode.  Under ``pounce APP`` that process is a *generation* (a child of the
master, ``_master.py``, which owns the signals and the listening sockets);
under ``pounce.run()`` it is the calling process itself.  Workers are
threads (thread mode) or forked processes (process mode); both run the same
``WorkerRunner`` (``_runner.py``), which reports to the supervisor with a
``Message``: READY, RETIRE.  The supervisor:

* starts N workers on the shared listening sockets and says so once every
  one of them can take a signal (a generation writes READY to its master;
  pounce.run() logs "Listening on ...");
* replaces a worker that crashed (with backoff), and gives up with a
  non-zero exit when workers keep failing at startup;
* recycles a worker that served its --max-requests share: the replacement
  starts first, then the old one drains;
* drains every worker on the master's command (or, under pounce.run(), on
  SIGTERM/SIGINT with the rules of ``_control.on_signal``), within
  --shutdown-timeout;
* one worker more / one fewer on the master's command (SIGTTIN / SIGTTOU).

Everything here runs on the main thread except the worker threads' own
callbacks, which only post events through ``_post`` (a queue plus a
self-pipe write), so the supervisor's state has one owner.  A process
worker's messages come on its status pipe, one byte each; its orders are
SIGUSR1 / SIGUSR2, since it ignores the signals of the outside world
(``_control.OUTSIDE_SIGNALS``).

Imports go one way: this module uses ``_control``, ``_listeners`` and
``_runner``, and only ``_server`` (above it) imports this one.
"""

from __future__ import annotations

import logging
import os
import queue
import selectors
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pounce import _pounce
from pounce._control import (
    DRAIN_CLOSE_IDLE,
    DRAIN_GENTLY,
    DRAIN_SHUTDOWN,
    REOPEN_LOGS,
    OUTSIDE_SIGNALS,
    Command,
    Message,
    gil_enabled,
    on_signal,
    reopen_access_log,
    refuse_new_connections,
)
from pounce._listeners import Listener
from pounce._metrics import MetricsServer
from pounce._pounce import BalanceTable, Config, MetricsTable
from pounce._runner import EXIT_STARTUP_FAILED, WorkerRunner, request_limit

__all__ = ["Supervisor"]

logger = logging.getLogger("pounce")

#: Consecutive startup failures after which the supervisor gives up.
MAX_STARTUP_FAILURES = 5
#: A worker that lived this long resets the crash backoff.
STABLE_AFTER = 10.0

#: Blocked across fork() until a new worker process has its handlers.
CHILD_SIGNALS = {*OUTSIDE_SIGNALS, DRAIN_GENTLY, DRAIN_CLOSE_IDLE, DRAIN_SHUTDOWN, REOPEN_LOGS}


@dataclass(eq=False)
class Slot:
    """One worker as the supervisor sees it."""

    wid: int                       # worker id (scope["extensions"]["pounce.worker"])
    state: str = "starting"        # starting | ready | retiring | stopping | gone
    started: float = field(default_factory=time.monotonic)
    thread: threading.Thread | None = None
    runner: WorkerRunner | None = None
    pid: int = 0
    status_fd: int = -1            # process mode: the child's status pipe (read end)
    replaces: "Slot | None" = None  # the retiring worker this one will replace
    balance_slot: int = -1         # its slot in Supervisor.balance (distinct among live workers)
    metrics_slot: int = -1         # its slot in Supervisor.metrics (claimed; released at exit)
    shutdown: bool = False         # told to drain because the server stops (health: 503)


class Supervisor:
    """Runs ``count`` workers until told to stop; ``run()`` returns the exit
    status.

    listener_sets[wid] are worker wid's sockets (one shared set, or one
    SO_REUSEPORT set per worker); workers beyond the list use the first.
    With control_fd (a generation under the master) orders come as
    ``Command`` bytes on that pipe and READY goes to ready_fd; without it
    (pounce.run()) the supervisor handles the signals itself."""

    def __init__(
        self,
        app: Any,
        config: Config,
        listener_sets: list[list[Listener]],
        count: int,
        mode: str,
        control_fd: int = -1,
        ready_fd: int = -1,
        owned_socks: list[Any] | None = None,
        access_log_fd: int = -1,
        metrics_sock: Any = None,
    ) -> None:
        self.app = app
        self.config = config
        self.listener_sets = listener_sets
        self.listeners = listener_sets[0]
        # Workers sharing one socket even out their connections through this table.
        shared = self.listener_sets[-1] is self.listeners
        self.balance = BalanceTable(max(64, 4 * count)) if shared else None
        # --metrics-port: the workers' counters (made before any worker, so
        # forked workers share it) and their server, started once all serve.
        self.metrics = MetricsTable(max(64, 4 * count)) if metrics_sock is not None else None
        self.metrics_server = MetricsServer(metrics_sock, self.metrics) if self.metrics else None
        self.target = count
        self.mode = mode
        self.release_gil = mode == "thread" and count > 1 and gil_enabled()
        self.slots: list[Slot] = []
        self.sel = selectors.DefaultSelector()
        # From thread workers: (slot, a Message, or (exit status, exception)).
        self.events: queue.SimpleQueue[tuple[Slot, Message | tuple[int, BaseException | None]]]
        self.events = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.control_fd = control_fd
        if control_fd >= 0:
            os.set_blocking(control_fd, False)
            self.sel.register(control_fd, selectors.EVENT_READ, "control")
        self.ready_fd = ready_fd
        # pounce.run(): the sockets whose listening we end on SIGTERM.
        self.owned_socks = owned_socks or []
        # --access-log-file's descriptor (_control.py), or -1 for stderr.
        self.access_log_fd = access_log_fd
        self.signals: list[int] = []
        self.stopping: str | None = None  # None | "shutdown" | "replaced"
        self.stop_deadline = 0.0
        self.announced = False
        self.ever_ready = False
        self.startup_failures = 0
        self.crash_backoff = 0.0
        self.pending_starts: list[tuple[float, int, Slot | None]] = []  # (when, wid, replaces)
        self.exit_code = 0
        self._old_handlers: dict[int, Any] = {}

    # -- plumbing ----------------------------------------------------------

    def _post(self, slot: Slot, event: Message | tuple[int, BaseException | None]) -> None:
        """From any thread: hand an event to the supervisor loop."""
        self.events.put((slot, event))
        try:
            os.write(self.wake_w, b"e")
        except BlockingIOError:
            pass  # the pipe is full of wake-ups already

    def _on_signal(self, signum: int, frame: Any) -> None:
        # Runs between bytecodes on the main thread; the wakeup fd already
        # interrupted select().  Just record it.
        self.signals.append(signum)

    def _install_signals(self) -> None:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        handled: tuple[int, ...] = ()
        if self.control_fd < 0:
            handled = (*OUTSIDE_SIGNALS, signal.SIGUSR1)  # pounce.run(): ours to act on
        if self.mode == "process":
            handled += (signal.SIGCHLD,)
        for sig in handled:
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)

    def _restore_signals(self) -> None:
        for sig, h in self._old_handlers.items():
            try:
                signal.signal(sig, h)
            except (ValueError, OSError):  # pragma: no cover
                pass
        try:
            signal.set_wakeup_fd(-1)
        except ValueError:  # pragma: no cover - not the main thread
            pass

    def close(self) -> None:
        self._stop_metrics()
        self.sel.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for fd in (self.control_fd, self.ready_fd):
            if fd >= 0:
                os.close(fd)
        self.control_fd = self.ready_fd = -1

    def _listeners_for(self, wid: int) -> list[Listener]:
        if wid < len(self.listener_sets):
            return self.listener_sets[wid]
        return self.listeners

    def _shares_listeners(self, wid: int) -> bool:
        """Whether another worker accepts from this worker's sockets (one
        shared socket; with --reuse-port, workers beyond the per-worker
        sockets share the first set).  A worker that shares accepts one
        connection per wake-up, so a burst of new connections is spread
        over the workers instead of going to whichever woke first."""
        if self.target <= 1:
            return False
        mine = self._listeners_for(wid)
        n = max(self.target, len(self.listener_sets))
        return sum(1 for w in range(n) if self._listeners_for(w) is mine) > 1

    # -- spawning ----------------------------------------------------------

    def _runner(self, slot: Slot, notify: Callable[[Message], None]) -> WorkerRunner:
        """The one place a worker is made, for both modes."""
        return WorkerRunner(
            self.app,
            self.config,
            self._listeners_for(slot.wid),
            slot.wid,
            notify=notify,
            release_gil=self.release_gil,
            max_requests=request_limit(self.config),
            access_log_fd=self.access_log_fd,
            shared_listeners=self._shares_listeners(slot.wid),
            balance=self.balance,
            balance_slot=slot.balance_slot,
            metrics=self.metrics,
            metrics_slot=slot.metrics_slot,
        )

    def _spawn(self, wid: int, replaces: Slot | None = None) -> Slot:
        slot = Slot(wid=wid, replaces=replaces)
        if self.balance is not None:  # reset: a crashed worker may have left it stale
            slot.balance_slot = self.balance.assign(s.balance_slot for s in self._live())
        if self.metrics is not None:  # the lowest slot no live worker holds (-1: uncounted)
            slot.metrics_slot = self.metrics.claim()
        self.slots.append(slot)
        if self.mode == "thread":
            self._spawn_thread(slot)
        else:
            self._spawn_process(slot)
        return slot

    def _spawn_thread(self, slot: Slot) -> None:
        runner = self._runner(slot, lambda message: self._post(slot, message))
        slot.runner = runner

        def body() -> None:
            code, exc = 1, None
            try:
                code = runner.run()
            except BaseException as e:  # noqa: BLE001 - reported by the supervisor
                exc = e
            self._post(slot, (code, exc))

        slot.thread = threading.Thread(target=body, name=f"pounce-worker-{slot.wid}", daemon=True)
        slot.thread.start()

    def _spawn_process(self, slot: Slot) -> None:
        r, w = os.pipe2(os.O_CLOEXEC)
        # Signals stay blocked across the fork until the child has its own
        # handlers: a SIGUSR1 that hits a worker in its first instants must
        # reach the worker's handler, not the supervisor's copied one.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, CHILD_SIGNALS)
        parent = os.getpid()
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:  # the child: never returns
                code = 1
                try:
                    os.close(r)
                    code = self._child_main(slot, w, old_mask, parent)
                except BaseException:  # pragma: no cover - reported, then exit
                    logger.exception("worker %d crashed", slot.wid)
                finally:
                    logging.shutdown()
                    os._exit(code)
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(w)
        slot.pid = pid
        slot.status_fd = r
        os.set_blocking(r, False)
        self.sel.register(r, selectors.EVENT_READ, slot)

    def _child_main(self, slot: Slot, status_w: int, old_mask: Any, parent: int) -> int:
        # Gone with the supervisor, even if it is SIGKILLed.
        _pounce.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != parent:
            return 1  # it died before the line above
        # Nothing of the supervisor's survives in the child but the sockets.
        signal.set_wakeup_fd(-1)
        for sig in self._old_handlers:
            signal.signal(sig, signal.SIG_DFL)
        for sig in OUTSIDE_SIGNALS:
            signal.signal(sig, signal.SIG_IGN)
        for other in self.slots:
            if other.status_fd >= 0:
                os.close(other.status_fd)
        if self.metrics_server is not None:
            self.metrics_server.close(forked=True)  # the supervisor serves /metrics
            self.metrics_server = None
        self.close()

        def say(message: Message) -> None:
            try:
                os.write(status_w, message)
            except OSError:
                pass

        runner = self._runner(slot, say)
        # The supervisor's orders (OUTSIDE_SIGNALS are ignored: a SIGTERM
        # or Ctrl-C for the whole group is the top process's business).
        # Handled before the loop exists, too.
        signal.signal(DRAIN_GENTLY, lambda *_: runner.stop(close_idle=False, shutdown=False))
        signal.signal(DRAIN_SHUTDOWN, lambda *_: runner.stop(close_idle=False, shutdown=True))
        signal.signal(DRAIN_CLOSE_IDLE, lambda *_: runner.stop(close_idle=True))
        if self.access_log_fd >= 0:
            path, fd = self.config.access_log_file, self.access_log_fd
            signal.signal(REOPEN_LOGS, lambda *_: reopen_access_log(path, fd))
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # pending ones arrive now
        return runner.run()

    def _stop_slot(self, slot: Slot, close_idle: bool, shutdown: bool = False) -> None:
        shutdown = shutdown or close_idle
        if slot.state == "gone" or (
            slot.state == "stopping" and not close_idle and (slot.shutdown or not shutdown)
        ):
            return
        # (A worker already draining gently may be told again to close its
        # idle connections too, or that the server now stops.)
        slot.state = "stopping"
        slot.shutdown = slot.shutdown or shutdown
        if self.mode == "thread":
            assert slot.runner is not None
            slot.runner.stop(close_idle=close_idle, shutdown=shutdown)
        else:
            sig = DRAIN_CLOSE_IDLE if close_idle else DRAIN_SHUTDOWN if shutdown else DRAIN_GENTLY
            try:
                os.kill(slot.pid, sig)
            except ProcessLookupError:
                pass

    # -- the loop ------------------------------------------------------------

    def run(self) -> int:
        self._install_signals()
        try:
            for wid in range(self.target):
                self._spawn(wid)
            while True:
                if self._finished():
                    break
                self._wait(self._timeout())
                self._handle_signals()
                self._handle_events()
                self._handle_timers()
        finally:
            self._restore_signals()
        return self.exit_code

    def _live(self) -> list[Slot]:
        return [s for s in self.slots if s.state != "gone"]

    def _finished(self) -> bool:
        return self.stopping is not None and not self._live()

    def _timeout(self) -> float | None:
        now = time.monotonic()
        deadlines = [when for when, _, _ in self.pending_starts]
        if self.stopping:
            deadlines.append(self.stop_deadline)
        if self.mode == "process" and self._live():
            deadlines.append(now + 1.0)  # belt and braces for SIGCHLD
        if not deadlines:
            return None
        return max(0.0, min(deadlines) - now)

    def _wait(self, timeout: float | None) -> None:
        try:
            ready = self.sel.select(timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            return
        for key, _ in ready:
            if key.data == "wake":
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            elif key.data == "control":
                self._control_readable()
            elif callable(key.data):
                key.data()  # the metrics server's
            else:
                self._status_readable(key.data)

    # -- orders: signals (pounce.run) or the master's commands ----------------

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGCHLD:
                continue  # reaped below
            name = signal.Signals(sig).name
            action = on_signal(sig, self.stopping is not None)
            if action == "exit":
                logger.warning("%s: exiting now", name)
                self._exit_now()
            elif action == "again":
                logger.warning("%s again: already shutting down (SIGINT or SIGQUIT exits at once)",
                               name)
            elif action in ("drain", "drain-close-idle"):
                refuse_new_connections(self.owned_socks)
                self._begin_stop("shutdown", close_idle=action == "drain-close-idle")
                logger.info("%s received: shutting down (SIGINT or SIGQUIT exits at once)", name)
            elif action == "reopen-logs":
                self._reopen_logs()
            elif action == "reload":
                logger.warning(
                    "SIGHUP: reload needs the pounce command (pounce.run() serves in the "
                    "calling process, which cannot import the app afresh); ignored"
                )
            elif action == "more":
                self._more()
            elif action == "fewer":
                self._fewer()
        if self.mode == "process":
            self._reap()

    def _control_readable(self) -> None:
        try:
            data = os.read(self.control_fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            # The master is gone (PR_SET_PDEATHSIG normally kills us first).
            logger.error("the master process is gone: exiting now")
            self._exit_now()
        for byte in data:
            try:
                command = Command(bytes((byte,)))
            except ValueError:
                continue  # not one of ours
            if command is Command.DRAIN:
                self._begin_stop("shutdown", close_idle=False)
            elif command is Command.DRAIN_CLOSE_IDLE:
                self._begin_stop("shutdown", close_idle=True)
            elif command is Command.REPLACED:
                self._begin_stop("replaced", close_idle=False)
            elif command is Command.REOPEN_LOGS:
                self._reopen_logs()
            elif command is Command.MORE:
                self._more()
            elif command is Command.FEWER:
                self._fewer()

    def _reopen_logs(self) -> None:
        """logrotate renamed --access-log-file: reopen this process's copy
        (thread workers write through it), then each worker process its own."""
        if self.access_log_fd < 0:
            return  # stderr: nothing to reopen
        reopen_access_log(self.config.access_log_file, self.access_log_fd)
        if self.mode == "process":
            for slot in self._live():
                if slot.pid > 0:
                    try:
                        os.kill(slot.pid, REOPEN_LOGS)
                    except ProcessLookupError:
                        pass

    def _more(self) -> None:
        if self.stopping:
            return
        self.target += 1
        wid = self._free_wid()
        logger.info("SIGTTIN: adding worker %d (%d workers)", wid, self.target)
        self._spawn(wid)

    def _fewer(self) -> None:
        if self.stopping or self.target <= 1:
            return
        self.target -= 1
        victims = sorted(
            (s for s in self._live() if s.state in ("starting", "ready")),
            key=lambda s: s.wid,
        )
        if victims:
            v = victims[-1]
            logger.info("SIGTTOU: stopping worker %d (%d workers)", v.wid, self.target)
            self._stop_slot(v, close_idle=False)

    def _free_wid(self) -> int:
        used = {s.wid for s in self._live()}
        wid = 0
        while wid in used:
            wid += 1
        return wid

    def _begin_stop(self, why: str, close_idle: bool) -> None:
        """Drain every worker.  Told again (SIGINT after SIGTERM, say), it
        only escalates: idle connections close now."""
        if self.stopping is None:
            self.stopping = why
            self.pending_starts.clear()
            # A generation that drains leaves /metrics to the next one.
            self._stop_metrics()
            # Workers get shutdown_timeout to drain; then a little for
            # lifespan shutdown and exit before they are killed.
            self.stop_deadline = time.monotonic() + self.config.shutdown_timeout + 5.0
        for slot in self._live():
            self._stop_slot(slot, close_idle=close_idle, shutdown=why == "shutdown")

    def _exit_now(self) -> None:
        if self.mode == "process":
            for slot in self._live():
                try:
                    os.kill(slot.pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
        sys.stderr.flush()
        logging.shutdown()
        os._exit(1)

    # -- events from workers -------------------------------------------------

    def _handle_events(self) -> None:
        while True:
            try:
                slot, event = self.events.get_nowait()
            except queue.Empty:
                break
            if isinstance(event, Message):
                self._on_message(slot, event)
            else:
                code, exc = event
                if exc is not None:
                    logger.error(
                        "worker %d died: %s",
                        slot.wid,
                        f"{type(exc).__name__}: {exc}",
                        exc_info=(type(exc), exc, exc.__traceback__),
                    )
                    code = 1
                self._on_exit(slot, code)

    def _status_readable(self, slot: Slot) -> None:
        try:
            data = os.read(slot.status_fd, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(slot.status_fd)
            os.close(slot.status_fd)
            slot.status_fd = -1
            return
        for byte in data:
            try:
                message = Message(bytes((byte,)))
            except ValueError:
                continue  # not one of ours
            self._on_message(slot, message)

    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            for slot in self.slots:
                if slot.pid == pid and slot.state != "gone":
                    if slot.status_fd >= 0:
                        self._status_readable(slot)  # a last message may be pending
                        if slot.status_fd >= 0:
                            self.sel.unregister(slot.status_fd)
                            os.close(slot.status_fd)
                            slot.status_fd = -1
                    self._on_exit(slot, os.waitstatus_to_exitcode(status))
                    break

    def _on_message(self, slot: Slot, message: Message) -> None:
        if message is Message.READY:
            self._on_ready(slot)
        elif message is Message.RETIRE:
            self._on_retire(slot)

    def _on_ready(self, slot: Slot) -> None:
        if slot.state == "starting":
            slot.state = "ready"
        self.ever_ready = True
        self.startup_failures = 0
        old = slot.replaces
        if old is not None and old.state not in ("stopping", "gone"):
            logger.info("worker %d replaced: the old one drains", slot.wid)
            self._stop_slot(old, close_idle=False)
        slot.replaces = None
        if not self.announced and all(s.state != "starting" for s in self._live()):
            self._announce()

    def _announce(self) -> None:
        # Only now can every worker take a signal gracefully: whoever reads
        # this may send SIGTERM at once.
        self.announced = True
        self._start_metrics()
        if self.ready_fd >= 0:
            # A generation: the master says "Listening on" (once, not at
            # every reload) or hands over from the generation before.
            try:
                os.write(self.ready_fd, Message.READY)
            except OSError:
                pass
            os.close(self.ready_fd)
            self.ready_fd = -1
            return
        for lst in self.listeners:
            logger.info("Listening on %s (press CTRL+C to quit)", lst.display)

    def _start_metrics(self) -> None:
        if self.metrics_server is not None and self.metrics_server.sel is None and not self.stopping:
            self.metrics_server.attach(self.sel)

    def _stop_metrics(self) -> None:
        if self.metrics_server is not None:
            self.metrics_server.close()
            self.metrics_server = None

    def _on_retire(self, slot: Slot) -> None:
        if self.stopping or slot.state != "ready":
            return
        slot.state = "retiring"
        if self.metrics is not None:
            self.metrics.count_restart()
        self._spawn(slot.wid, replaces=slot)

    def _on_exit(self, slot: Slot, code: int) -> None:
        prev = slot.state
        slot.state = "gone"
        if self.balance is not None and slot.balance_slot >= 0:  # a crash leaves it stale
            self.balance.reset(slot.balance_slot)
        if self.metrics is not None and slot.metrics_slot >= 0:  # gauges cleared, totals kept
            self.metrics.release(slot.metrics_slot)
        if slot.replaces is not None and slot.replaces.state == "retiring":
            # The replacement died before taking over: the old one goes on.
            slot.replaces.state = "ready"
        if prev == "stopping" or self.stopping:
            return
        lived = time.monotonic() - slot.started
        if prev == "starting":
            self.startup_failures += 1
            reason = f"exit status {code}"
            if code == EXIT_STARTUP_FAILED:
                reason = "the application failed to start"
            if not self.ever_ready:
                logger.error("worker %d failed to start (%s): giving up", slot.wid, reason)
                self._fail(code if code > 0 else 1)
                return
            if self.startup_failures >= MAX_STARTUP_FAILURES:
                logger.error(
                    "workers keep failing at startup (%d in a row, last: %s): giving up",
                    self.startup_failures,
                    reason,
                )
                self._fail(code if code > 0 else 1)
                return
            delay = min(0.5 * 2 ** (self.startup_failures - 1), 10.0)
            logger.error("worker %d failed to start (%s); retrying in %.1f s", slot.wid, reason, delay)
        else:
            if lived > STABLE_AFTER:
                self.crash_backoff = 0.0
            self.crash_backoff = min(max(self.crash_backoff * 2, 0.1), 5.0)
            delay = self.crash_backoff
            what = f"pid {slot.pid}, " if slot.pid else ""
            logger.error(
                "worker %d (%sexit status %d) died unexpectedly; replacing it in %.1f s",
                slot.wid,
                what,
                code,
                delay,
            )
        if len([s for s in self._live() if s.wid == slot.wid]) == 0:
            self.pending_starts.append((time.monotonic() + delay, slot.wid, None))

    def _fail(self, code: int) -> None:
        self.exit_code = code
        self._begin_stop("shutdown", close_idle=True)

    # -- timers ------------------------------------------------------------------

    def _handle_timers(self) -> None:
        now = time.monotonic()
        due = [p for p in self.pending_starts if p[0] <= now]
        self.pending_starts = [p for p in self.pending_starts if p[0] > now]
        for _, wid, replaces in due:
            if not self.stopping:
                if self.metrics is not None:
                    self.metrics.count_restart()  # replaces one that died
                self._spawn(wid, replaces)
        if self.stopping and now >= self.stop_deadline and self._live():
            logger.warning("workers did not stop in time: killing them")
            if self.mode == "process":
                for slot in self._live():
                    try:
                        os.kill(slot.pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                self.stop_deadline = now + 5.0
            else:
                # Threads cannot be killed; leave, the OS reclaims them.
                logging.shutdown()
                os._exit(self.exit_code or 1)
