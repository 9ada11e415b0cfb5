"""The supervisor: starts the workers, watches them, replaces them.

One Supervisor runs in the main thread of the main process, whatever the
worker mode.  Workers are threads (thread mode) or forked processes
(process mode); both run the same ``WorkerRunner`` (``_runner.py``), which
reports to the supervisor with a ``Message``: READY, RETIRE.  The supervisor:

* starts N workers on the shared listening sockets and announces
  "Listening on ..." once every one of them can take a signal;
* replaces a worker that crashed (with backoff), and gives up with a
  non-zero exit when workers keep failing at startup;
* recycles a worker that served its --max-requests share: the replacement
  starts first, then the old one drains;
* SIGINT/SIGTERM: every worker drains within --shutdown-timeout, then exit 0;
  a second signal exits at once;
* SIGHUP: zero-downtime reload with fresh application code.  A new Pounce
  process (the same command line) inherits the listening sockets, starts its
  own workers, and says "ready" on a pipe; only then do the old workers stop
  accepting, finish their requests and exit.  The kernel keeps queueing
  connections on the shared sockets throughout, so none is refused.  If the
  new process fails to start, the old one keeps serving.
* SIGTTIN / SIGTTOU: one worker more / one fewer.

Everything here runs on the main thread except the worker threads' own
callbacks, which only post events through ``_post`` (a queue plus a
self-pipe write), so the supervisor's state has one owner.  A process
worker's messages come on its status pipe, one byte each.

Imports go one way: this module uses ``_listeners`` and ``_runner``, and
only ``_server.serve`` (above it) imports this one.
"""

from __future__ import annotations

import json
import logging
import os
import queue
import selectors
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from pounce._listeners import (
    INHERIT_ENV,
    Listener,
    close_listeners,
    extra_reuse_port_listeners,
)
from pounce._pounce import BalanceTable, Config
from pounce._runner import (
    EXIT_STARTUP_FAILED,
    Message,
    WorkerRunner,
    gil_enabled,
    request_limit,
)

__all__ = ["Supervisor", "READY_FD_ENV"]

logger = logging.getLogger("pounce")

#: Set by a reloading Pounce for the Pounce it starts: the fd on which to
#: write Message.READY once every worker is ready (INHERIT_ENV, beside it,
#: names the sockets to adopt).
READY_FD_ENV = "POUNCE_READY_FD"

#: Consecutive startup failures after which the supervisor gives up.
MAX_STARTUP_FAILURES = 5
#: A worker that lived this long resets the crash backoff.
STABLE_AFTER = 10.0
RELOAD_READY_TIMEOUT = 120.0

HANDLED_SIGNALS = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU)
#: Blocked across fork() until a new worker process has its handlers.
CHILD_SIGNALS = {signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGHUP, signal.SIGTTIN,
                 signal.SIGTTOU}


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


class Supervisor:
    def __init__(
        self,
        app: Any,
        config: Config,
        listeners: list[Listener],
        count: int,
        mode: str,
        reload_argv: list[str] | None,
    ) -> None:
        self.app = app
        self.config = config
        self.listeners = listeners
        self.listener_sets = extra_reuse_port_listeners(config, listeners, count)
        # Workers sharing one socket even out their connections through this table.
        shared = self.listener_sets[-1] is listeners
        self.balance = BalanceTable(max(64, 4 * count)) if shared else None
        self.target = count
        self.mode = mode
        self.reload_argv = reload_argv
        self.release_gil = mode == "thread" and count > 1 and gil_enabled()
        self.slots: list[Slot] = []
        self.sel = selectors.DefaultSelector()
        # From thread workers: (slot, a Message, or (exit status, exception)).
        self.events: queue.SimpleQueue[tuple[Slot, Message | tuple[int, BaseException | None]]]
        self.events = queue.SimpleQueue()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.wake_r, selectors.EVENT_READ, "wake")
        self.signals: list[int] = []
        self.stopping: str | None = None  # None | "shutdown" | "reload"
        self.stop_deadline = 0.0
        self.announced = False
        self.ever_ready = False
        self.startup_failures = 0
        self.crash_backoff = 0.0
        self.pending_starts: list[tuple[float, int, Slot | None]] = []  # (when, wid, replaces)
        self.exit_code = 0
        self.reload_proc: subprocess.Popen[bytes] | None = None
        self.reload_ready_fd = -1
        self.reload_started = 0.0
        self.handed_over = False
        self.ready_fd = -1
        ready = os.environ.pop(READY_FD_ENV, None)
        if ready:
            self.ready_fd = int(ready)
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
        for sig in HANDLED_SIGNALS:
            self._old_handlers[sig] = signal.signal(sig, self._on_signal)
        if self.mode == "process":
            self._old_handlers[signal.SIGCHLD] = signal.signal(signal.SIGCHLD, self._on_signal)

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
        if self.reload_ready_fd >= 0:
            os.close(self.reload_ready_fd)
            self.reload_ready_fd = -1
        extra = [s for group in self.listener_sets[1:] for s in group if s not in self.listeners]
        close_listeners(extra, self.config, unlink=False)
        close_listeners(self.listeners, self.config, unlink=not self.handed_over)
        self.sel.close()
        os.close(self.wake_r)
        os.close(self.wake_w)

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
        return WorkerRunner(
            self.app,
            self.config,
            self._listeners_for(slot.wid),
            slot.wid,
            notify=notify,
            release_gil=self.release_gil,
            max_requests=request_limit(self.config),
            shared_listeners=self._shares_listeners(slot.wid),
            balance=self.balance,
            balance_slot=slot.balance_slot,
        )

    def _spawn(self, wid: int, replaces: Slot | None = None) -> Slot:
        slot = Slot(wid=wid, replaces=replaces)
        if self.balance is not None:  # reset: a crashed worker may have left it stale
            slot.balance_slot = self.balance.assign(s.balance_slot for s in self._live())
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
        # handlers: a SIGTERM that hits a worker in its first instants must
        # reach the worker's handler, not the supervisor's copied one.
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, CHILD_SIGNALS)
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:  # the child: never returns
                code = 1
                try:
                    os.close(r)
                    code = self._child_main(slot, w, old_mask)
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

    def _child_main(self, slot: Slot, status_w: int, old_mask: Any) -> int:
        # Nothing of the supervisor's survives in the child but the sockets.
        signal.set_wakeup_fd(-1)
        for sig, h in self._old_handlers.items():
            signal.signal(sig, signal.SIG_DFL)
        for sig in (signal.SIGHUP, signal.SIGTTIN, signal.SIGTTOU):
            signal.signal(sig, signal.SIG_IGN)
        for other in self.slots:
            if other.status_fd >= 0:
                os.close(other.status_fd)
        self.sel.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        if self.ready_fd >= 0:
            os.close(self.ready_fd)
        if self.reload_ready_fd >= 0:
            os.close(self.reload_ready_fd)

        def say(message: Message) -> None:
            try:
                os.write(status_w, message)
            except OSError:
                pass

        runner = self._runner(slot, say)
        # SIGTERM/SIGINT: shutdown; SIGUSR1: gentle drain (reload, recycling,
        # one worker fewer).  Handled before the loop exists, too.
        signal.signal(signal.SIGTERM, lambda *_: runner.stop(close_idle=True))
        signal.signal(signal.SIGINT, lambda *_: runner.stop(close_idle=True))
        signal.signal(signal.SIGUSR1, lambda *_: runner.stop(close_idle=False))
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)  # pending ones arrive now
        return runner.run()

    def _stop_slot(self, slot: Slot, close_idle: bool) -> None:
        if slot.state == "gone" or (slot.state == "stopping" and not close_idle):
            return
        # (A worker already draining gently is told again on shutdown: it
        # then closes its idle connections too.)
        slot.state = "stopping"
        if self.mode == "thread":
            assert slot.runner is not None
            slot.runner.stop(close_idle=close_idle)
        else:
            try:
                os.kill(slot.pid, signal.SIGTERM if close_idle else signal.SIGUSR1)
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
        if self.reload_proc is not None:
            deadlines.append(self.reload_started + RELOAD_READY_TIMEOUT)
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
            elif key.data == "reload":
                self._reload_pipe_readable()
            else:
                self._status_readable(key.data)

    # -- signals ---------------------------------------------------------------

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig in (signal.SIGINT, signal.SIGTERM):
                name = signal.Signals(sig).name
                if self.stopping == "shutdown":
                    logger.warning("%s again: exiting now", name)
                    self._kill_all()
                    sys.stderr.flush()
                    os._exit(1)
                logger.info("%s received: shutting down (again to exit at once)", name)
                self._begin_stop("shutdown")
            elif sig == signal.SIGHUP:
                self._begin_reload()
            elif sig == signal.SIGTTIN:
                if not self.stopping:
                    self.target += 1
                    wid = self._free_wid()
                    logger.info("SIGTTIN: adding worker %d (%d workers)", wid, self.target)
                    self._spawn(wid)
            elif sig == signal.SIGTTOU:
                if not self.stopping and self.target > 1:
                    self.target -= 1
                    victims = sorted(
                        (s for s in self._live() if s.state in ("starting", "ready")),
                        key=lambda s: s.wid,
                    )
                    if victims:
                        v = victims[-1]
                        logger.info("SIGTTOU: stopping worker %d (%d workers)", v.wid, self.target)
                        self._stop_slot(v, close_idle=False)
            elif sig == signal.SIGCHLD:
                pass  # reaped below, in _handle_events
        if self.mode == "process":
            self._reap()

    def _free_wid(self) -> int:
        used = {s.wid for s in self._live()}
        wid = 0
        while wid in used:
            wid += 1
        return wid

    def _begin_stop(self, why: str) -> None:
        self.stopping = why
        self.pending_starts.clear()
        # Workers get shutdown_timeout to drain; then a little for lifespan
        # shutdown and exit before they are killed.
        self.stop_deadline = time.monotonic() + self.config.shutdown_timeout + 5.0
        for slot in self._live():
            self._stop_slot(slot, close_idle=(why == "shutdown"))

    def _kill_all(self) -> None:
        if self.mode != "process":
            return
        for slot in self._live():
            try:
                os.kill(slot.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

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
            if self.reload_proc is not None and pid == self.reload_proc.pid:
                self.reload_proc.returncode = os.waitstatus_to_exitcode(status)
                continue
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
        # this line may send SIGTERM at once.
        self.announced = True
        for lst in self.listeners:
            logger.info("Listening on %s (press CTRL+C to quit)", lst.display)
        if self.ready_fd >= 0:
            # We were started by a reloading Pounce: tell it to step down.
            try:
                os.write(self.ready_fd, Message.READY)
            except OSError:
                pass
            os.close(self.ready_fd)
            self.ready_fd = -1

    def _on_retire(self, slot: Slot) -> None:
        if self.stopping or slot.state != "ready":
            return
        slot.state = "retiring"
        self._spawn(slot.wid, replaces=slot)

    def _on_exit(self, slot: Slot, code: int) -> None:
        prev = slot.state
        slot.state = "gone"
        if self.balance is not None and slot.balance_slot >= 0:  # a crash leaves it stale
            self.balance.reset(slot.balance_slot)
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
        self._begin_stop("shutdown")

    # -- timers ------------------------------------------------------------------

    def _handle_timers(self) -> None:
        now = time.monotonic()
        due = [p for p in self.pending_starts if p[0] <= now]
        self.pending_starts = [p for p in self.pending_starts if p[0] > now]
        for _, wid, replaces in due:
            if not self.stopping:
                self._spawn(wid, replaces)
        if self.stopping and now >= self.stop_deadline and self._live():
            logger.warning("workers did not stop in time: killing them")
            if self.mode == "process":
                self._kill_all()
                self.stop_deadline = now + 5.0
            else:
                # Threads cannot be killed; leave, the OS reclaims them.
                logging.shutdown()
                os._exit(self.exit_code or 1)
        if self.reload_proc is not None and now >= self.reload_started + RELOAD_READY_TIMEOUT:
            logger.error("reload: the new server did not become ready in time; keeping the old one")
            self._abandon_reload(kill=True)
        if self.reload_proc is not None and self.reload_proc.poll() is not None:
            logger.error(
                "reload failed: the new server exited with status %s; still serving the old code",
                self.reload_proc.returncode,
            )
            self._abandon_reload(kill=False)

    # -- reload -----------------------------------------------------------------

    def _begin_reload(self) -> None:
        if self.stopping:
            return
        if self.reload_argv is None:
            logger.warning("SIGHUP: reload needs the pounce command line (not pounce.run()); ignored")
            return
        if self.reload_proc is not None:
            logger.info("SIGHUP: a reload is already under way")
            return
        logger.info("SIGHUP received: starting a new server with fresh code")
        fds = [lst.sock.fileno() for lst in self.listeners]
        r, w = os.pipe2(os.O_CLOEXEC)
        env = dict(os.environ)
        env[INHERIT_ENV] = json.dumps([lst.describe() for lst in self.listeners])
        env[READY_FD_ENV] = str(w)
        try:
            self.reload_proc = subprocess.Popen(
                self.reload_argv, pass_fds=fds + [w], env=env, close_fds=True
            )
        except OSError as e:
            os.close(r)
            os.close(w)
            logger.error("reload failed: cannot start %s: %s", self.reload_argv[0], e)
            return
        os.close(w)
        os.set_blocking(r, False)
        self.reload_ready_fd = r
        self.reload_started = time.monotonic()
        self.sel.register(r, selectors.EVENT_READ, "reload")

    def _reload_pipe_readable(self) -> None:
        try:
            data = os.read(self.reload_ready_fd, 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if data.startswith(Message.READY):
            pid = self.reload_proc.pid if self.reload_proc else "?"
            logger.info("reload: the new server (pid %s) is ready; old workers drain and exit", pid)
            self.sel.unregister(self.reload_ready_fd)
            os.close(self.reload_ready_fd)
            self.reload_ready_fd = -1
            self.handed_over = True
            self.reload_proc = None  # it lives on without us
            self._begin_stop("reload")
        elif not data:
            # EOF without "ready": it exited or closed the pipe; _handle_timers
            # reports the exit status once it is reaped.
            self.sel.unregister(self.reload_ready_fd)
            os.close(self.reload_ready_fd)
            self.reload_ready_fd = -1
            if self.reload_proc is not None and self.reload_proc.poll() is None:
                try:
                    self.reload_proc.wait(5)
                except subprocess.TimeoutExpired:
                    pass

    def _abandon_reload(self, kill: bool) -> None:
        proc = self.reload_proc
        self.reload_proc = None
        if self.reload_ready_fd >= 0:
            self.sel.unregister(self.reload_ready_fd)
            os.close(self.reload_ready_fd)
            self.reload_ready_fd = -1
        if proc is not None and kill and proc.poll() is None:
            proc.kill()
            try:
                proc.wait(5)
            except subprocess.TimeoutExpired:  # pragma: no cover
                pass
