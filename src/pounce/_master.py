"""The main process of ``pounce APP``: the PID the operator started, for good.

The master never imports the application.  It holds the listening sockets,
the pid file and the signals, and runs the app in *generations*: a
generation is a child process, forked from the master, that imports the app
afresh and runs a Supervisor (``_supervisor.py``) with its thread or process
workers on the master's sockets.  SIGHUP starts a new generation; once all
its workers serve, the one before drains and exits.  The master's PID, its
sockets and its process group never change, so systemd, a container
runtime (the master is happy to be PID 1: it reaps every child, orphans
included) or a pid file keep tracking the same process.

Start-up, in one PID:

1. ``start()`` runs in the process of the ``pounce`` command: settings are
   already parsed; it binds the sockets, then ``exec``s a fresh interpreter
   running ``main()`` below, handing over the sockets and a JSON state in
   ``POUNCE_MASTER_STATE``.  The exec keeps the PID, the process group, the
   sockets and the blocked signals, and drops the extension module and
   asyncio that parsing the settings loaded: the master stays at ~12 MiB,
   and since it never loaded pounce's C core either, each generation loads
   the installed one (docs/workers.md has the figures).
2. ``main()`` installs the signal handlers, writes the pid file and forks
   the first generation.  The generation imports the app; an import error
   ends it with the CLI's message and status 1, and the master exits with
   that status.  Once every worker serves, the generation writes READY on
   its pipe and the master logs "Listening on ...".

Signals (``_control.on_signal``): SIGTERM drains (the listening sockets stop
at once, so new connections are refused; idle keep-alive connections get
``Connection: close`` on their next response; in-flight requests get
--shutdown-timeout); SIGINT drains too but closes idle connections at once;
a repeated SIGTERM is logged and ignored; SIGINT during a drain, or SIGQUIT,
exits at once.  SIGTTIN / SIGTTOU go to the serving generation.  Children
ignore all of these, so a signal sent to the whole group counts once.  Every
child has PR_SET_PDEATHSIG: SIGKILL the master and its tree follows.

--reload (``_reload.py``): a watcher helper process writes a line to a pipe
the master's selector watches whenever a watched file changes; the master
then starts a generation exactly as on SIGHUP.  With --reload, a first
generation that fails (a syntax error) does not end the master: it waits
for the next change; and SIGINT (Ctrl-C) closes idle connections and
kills what is left after RELOAD_STOP_GRACE instead of --shutdown-timeout.

Main thread only; the master runs no other thread, which is what makes its
fork() safe (the watcher is a process for that reason).
"""

from __future__ import annotations

import json
import logging
import os
import selectors
import signal
import socket
import sys
import time
from typing import Any

from pounce._control import (
    OUTSIDE_SIGNALS,
    Command,
    Message,
    on_signal,
    refuse_new_connections,
    remove_pid_file,
    reopen_access_log,
    write_pid_file,
)
from pounce._systemd import Notifier

__all__ = ["start", "main", "load_app", "Master", "STATE_ENV"]

logger = logging.getLogger("pounce")

#: The master's state, from the ``pounce`` command to the interpreter it
#: execs (JSON); removed from the environment at once.
STATE_ENV = "POUNCE_MASTER_STATE"

#: A new generation that is not ready after this long is a failed reload.
RELOAD_READY_TIMEOUT = 120.0
#: After --shutdown-timeout, what a generation gets to run lifespan
#: shutdown and exit before the master kills it.
STOP_GRACE = 15.0

#: --reload: what a generation gets after Ctrl-C before it is killed.
RELOAD_STOP_GRACE = 2.0

#: Blocked from before the exec (or a fork) until the handlers are in place.
MASTER_SIGNALS = {*OUTSIDE_SIGNALS, signal.SIGCHLD, signal.SIGUSR1}


# -- 1. in the process of the pounce command ---------------------------------------


def start(
    app_spec: str, config: Any, cli_args: list[str], explicit: dict[str, str] | None = None
) -> int:
    """Bind, then become the master (exec); returns only on failure.
    explicit: the settings given and where (``load_config``'s origins)."""
    from pounce._control import open_access_log_at_start, resolve_workers
    from pounce._listeners import bind_listeners, extra_reuse_port_listeners
    from pounce._metrics import bind_metrics
    from pounce._server import log_listen_error, owned_sockets

    # Opened here, once: a bad path stops the start with its name, and
    # every process of the tree inherits this descriptor (_control.py).
    access_log_fd = open_access_log_at_start(config.access_log_file)
    if access_log_fd is None:
        return 1
    try:
        listeners = bind_listeners(config, explicit=explicit)
        count, mode, _ = resolve_workers(config)
        sets = extra_reuse_port_listeners(config, listeners, count)
        # --metrics-port: bound here too, so a taken port fails the start;
        # each generation serves it (and leaves it to the next on reload).
        metrics_sock = bind_metrics(config)
    except OSError as e:
        log_listen_error(e)
        return 1
    owned = {s.fileno() for s in owned_sockets(config, sets)}
    described: dict[int, dict[str, Any]] = {}
    for group in sets:
        for lst in group:
            fd = lst.sock.fileno()
            described[fd] = {
                "server": list(lst.server),
                "unix": lst.is_unix,
                "display": lst.display,
                "owned": fd in owned,
            }
    state = {
        "app": app_spec,
        "config": config._asdict(),
        "listeners": {str(fd): d for fd, d in described.items()},
        "sets": [[lst.sock.fileno() for lst in group] for group in sets],
        "count": count,
        "mode": mode,
        "metrics_fd": metrics_sock.fileno() if metrics_sock is not None else -1,
        # The rule of _listeners.close_listeners: a --uds path we created.
        "unlink": config.uds if config.uds and config.fd < 0 else "",
        # --log-level set by the user wins over a level --log-config gives.
        "log_level_given": "log_level" in (explicit or {}),
        "access_log_fd": access_log_fd,
    }
    # Exec a small interpreter that will be the master (module docstring).
    # If that cannot be done, this process becomes the master as it is.
    import subprocess  # for the interpreter flags only; loaded by asyncio anyway

    argv = [
        sys.executable,
        *subprocess._args_from_interpreter_flags(),  # -X, -W, -O ... as given
        "-P",  # not the current directory: it may hold a "pounce"; the app's import adds it
        "-m",
        "pounce._master",
        *cli_args,  # unused: for ps(1), which then shows the command that was run
    ]
    signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
    for fd in [*described, access_log_fd]:
        if fd >= 0:
            os.set_inheritable(fd, True)
    if metrics_sock is not None:
        os.set_inheritable(metrics_sock.fileno(), True)
    env = dict(os.environ)
    env[STATE_ENV] = json.dumps(state)
    sys.stdout.flush()
    sys.stderr.flush()
    if sys.executable:
        try:
            os.execve(sys.executable, argv, env)
        except OSError as e:
            logger.warning("cannot exec %s (%s): the master keeps this interpreter", argv[0], e)
    return Master(state).run()


# -- 2. the master ---------------------------------------------------------------------


def main() -> None:
    """``python -m pounce._master``, exec'd by start()."""
    raw = os.environ.pop(STATE_ENV, None)
    if raw is None:
        print("pounce._master is started by the pounce command", file=sys.stderr)
        sys.exit(2)
    state = json.loads(raw)
    from pounce._logging import LogConfigError, setup_logging

    cfg = state["config"]
    try:
        setup_logging(
            cfg["log_level"],
            cfg.get("log_config", ""),
            cfg.get("log_format", "text"),
            level_given=state.get("log_level_given", True),
            app_dir=cfg.get("app_dir", ""),
        )
    except LogConfigError as e:  # the file changed since the pounce command read it
        print(f"pounce: error: {e}", file=sys.stderr)
        sys.exit(2)
    code = Master(state).run()
    logging.shutdown()
    sys.exit(code)


class Generation:
    """One load of the app: a child process running a Supervisor."""

    def __init__(self, number: int, pid: int, ready_fd: int, control_fd: int) -> None:
        self.number = number
        self.pid = pid
        self.ready_fd = ready_fd  # read end: Message.READY, then EOF
        self.control_fd = control_fd  # write end: Command bytes
        self.state = "starting"  # starting | serving | draining | gone
        self.started = time.monotonic()
        self.kill_at = 0.0  # draining: SIGKILL after this
        self.timed_out = False

    def __repr__(self) -> str:
        return f"generation {self.number} (pid {self.pid})"




class Master:
    def __init__(self, state: dict[str, Any]) -> None:
        self.state = state
        self.config = state["config"]
        self.count: int = state["count"]
        self.mode: str = state["mode"]
        self.shutdown_timeout: float = float(self.config["shutdown_timeout"])
        self.pid_file: str = self.config.get("pid_file", "")
        self.listeners = {int(fd): d for fd, d in state["listeners"].items()}
        self.socks = {fd: socket.socket(fileno=fd) for fd in self.listeners}
        for fd in self.socks:
            os.set_inheritable(fd, False)  # the app's subprocesses never hold our port
        # --access-log-file: this process's copy, reopened on SIGUSR1.
        self.access_log_fd: int = state.get("access_log_fd", -1)
        if self.access_log_fd >= 0:
            os.set_inheritable(self.access_log_fd, False)
        metrics_fd = int(state.get("metrics_fd", -1))
        self.metrics_sock = socket.socket(fileno=metrics_fd) if metrics_fd >= 0 else None
        if self.metrics_sock is not None:
            self.metrics_sock.set_inheritable(False)
        self.gens: list[Generation] = []
        self.current: Generation | None = None  # serving
        self.pending: Generation | None = None  # starting: the first, or a reload
        self.number = 0
        self.stopping = False
        self.stop_deadline = 0.0
        self.exit_code = 0
        self.pid = os.getpid()
        self.sel = selectors.DefaultSelector()
        self.wake_r, self.wake_w = os.pipe2(os.O_NONBLOCK | os.O_CLOEXEC)
        self.sel.register(self.wake_r, selectors.EVENT_READ, None)
        self.signals: list[int] = []
        self.notifier = Notifier.from_environ()  # every call a no-op without NOTIFY_SOCKET
        self.next_watchdog = 0.0
        self.reload = bool(self.config.get("reload"))
        if self.reload:
            # A .pyc is trusted when its source's size and mtime in whole
            # seconds match: an edit saved within the second after the
            # generation before imported the file, at the same size ("v1" ->
            # "v2"), would be served from the stale bytecode.  Generations
            # (forked from here) write none while --reload watches.
            sys.dont_write_bytecode = True
        self.watcher: Any = None  # _reload.Watcher with --reload
        self.reload_again = False  # a change came while a generation was starting

    # -- systemd (no-ops without NOTIFY_SOCKET) -------------------------------------

    def _notify(self, what: str, status: str) -> None:
        """READY=1, RELOADING=1 or STOPPING=1 (what: ready, reloading,
        stopping), each with a STATUS= line."""
        getattr(self.notifier, what)(status)

    def _watchdog(self, now: float) -> float | None:
        """Ping the watchdog while a generation serves; the next deadline."""
        interval = self.notifier.watchdog_interval
        if not interval:
            return None
        if now >= self.next_watchdog:
            if self.current is not None and not self.stopping:
                self.notifier.watchdog()
            self.next_watchdog = now + interval
        return self.next_watchdog

    # -- the loop -----------------------------------------------------------------------

    def run(self) -> int:
        signal.set_wakeup_fd(self.wake_w, warn_on_full_buffer=False)
        for sig in MASTER_SIGNALS:
            signal.signal(sig, self._on_signal)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, MASTER_SIGNALS)
        try:
            if self.pid_file:
                try:
                    write_pid_file(self.pid_file)
                except OSError as e:
                    logger.error("cannot write the pid file: %s", e)
                    return 1
            if self.reload:
                _become_subreaper()  # the workers of a killed generation come back to us
                self._start_watcher()
            self._start_generation()
            while not (self.stopping and not self.gens_live()):
                self._wait(self._timeout())
                self._handle_signals()
                self._reap()
                self._handle_timers()
            if self.reload:
                self._reap_orphans(time.monotonic() + RELOAD_STOP_GRACE)
            return self.exit_code
        finally:
            self._close()

    def gens_live(self) -> list[Generation]:
        return [g for g in self.gens if g.state != "gone"]

    def _on_signal(self, signum: int, frame: Any) -> None:
        self.signals.append(signum)

    def _timeout(self) -> float:
        now = time.monotonic()
        deadlines = [now + 1.0]  # belt and braces for SIGCHLD
        if self.stopping:
            deadlines.append(self.stop_deadline)
        if self.pending is not None and self.current is not None:
            deadlines.append(self.pending.started + RELOAD_READY_TIMEOUT)
        deadlines += [g.kill_at for g in self.gens if g.state == "draining"]
        wd = self._watchdog(now)
        if wd is not None:
            deadlines.append(wd)
        return max(0.0, min(deadlines) - now)

    def _wait(self, timeout: float) -> None:
        try:
            ready = self.sel.select(timeout)
        except InterruptedError:  # pragma: no cover - PEP 475 retries
            return
        for key, _ in ready:
            if key.data is None:
                try:
                    while os.read(self.wake_r, 4096):
                        pass
                except BlockingIOError:
                    pass
            elif key.data is self.watcher:
                self._watcher_readable()
            else:
                self._ready_readable(key.data)

    def _close(self) -> None:
        signal.set_wakeup_fd(-1)
        for gen in self.gens:
            self._close_fds(gen)
        if self.watcher is not None:
            self.watcher.stop()
            if self.watcher.pid > 0:
                try:
                    os.waitpid(self.watcher.pid, 0)
                except ChildProcessError:
                    pass
        self.sel.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        for sock in self.socks.values():
            sock.close()
        if self.state.get("unlink"):
            try:
                os.unlink(self.state["unlink"])
            except OSError:
                pass
        if self.pid_file:
            remove_pid_file(self.pid_file)
        self.notifier.close()

    # -- generations ---------------------------------------------------------------------

    def _start_generation(self) -> None:
        self.number += 1
        ready_r, ready_w = os.pipe2(os.O_CLOEXEC)
        control_r, control_w = os.pipe2(os.O_CLOEXEC)
        old_mask = signal.pthread_sigmask(signal.SIG_BLOCK, MASTER_SIGNALS)
        pid = -1
        try:
            pid = os.fork()
            if pid == 0:  # the generation: never returns
                code = 1
                try:
                    os.close(ready_r)
                    os.close(control_w)
                    code = self._generation_main(ready_w, control_r, old_mask)
                except SystemExit as e:
                    code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
                except BaseException:
                    logger.exception("generation %d crashed", self.number)
                finally:
                    try:
                        sys.stdout.flush()
                        sys.stderr.flush()
                        logging.shutdown()
                    finally:
                        os._exit(code)
        finally:
            if pid != 0:
                signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)
        os.close(ready_w)
        os.close(control_r)
        gen = Generation(self.number, pid, ready_r, control_w)
        self.gens.append(gen)
        self.pending = gen
        os.set_blocking(ready_r, False)
        self.sel.register(ready_r, selectors.EVENT_READ, gen)

    def _generation_main(self, ready_w: int, control_r: int, old_mask: Any) -> int:
        """In the forked child: import the app and serve it."""
        from pounce import _pounce

        # Gone with the master, even if it is SIGKILLed.
        _pounce.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != self.pid:
            return 1  # it died before the line above
        signal.set_wakeup_fd(-1)
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        for sig in (*OUTSIDE_SIGNALS, signal.SIGUSR1):
            signal.signal(sig, signal.SIG_IGN)  # the master's business
        for gen in self.gens:
            self._close_fds(gen)
        if self.watcher is not None:
            self.watcher.close_fds()
        self.sel.close()
        os.close(self.wake_r)
        os.close(self.wake_w)
        self.notifier.close()
        signal.pthread_sigmask(signal.SIG_SETMASK, old_mask)

        from pounce._listeners import Listener
        from pounce._logging import recheck as recheck_logging
        from pounce._pounce import Config
        from pounce._server import log_startup, log_static, warn_about_proxies, run_generation

        try:
            # Built anew by each generation: a reload (SIGHUP) reads the
            # TLS certificate and key files again.
            config = Config(**self.config)
        except ValueError as e:
            logger.error("cannot start generation %d: %s", self.number, e)
            return 1
        app = load_app(self.state["app"], config)  # SystemExit(1) with the CLI's message
        recheck_logging()  # the app may have configured logging at import
        if self.number == 1:
            from pounce._control import resolve_workers

            log_startup(self.count, self.mode, resolve_workers(config)[2], config.loop)
            log_static(config)
            warn_about_proxies(config)
        made: dict[int, Listener] = {}
        for fd, d in self.listeners.items():
            made[fd] = Listener(self.socks[fd], tuple(d["server"]), d["unix"], d["display"])
        # Workers that share sockets must share one list object: the
        # supervisor tells shared sets by identity (one connection per
        # wake-up, the balance table).
        groups: dict[tuple[int, ...], list[Listener]] = {}
        sets = [
            groups.setdefault(tuple(group), [made[fd] for fd in group])
            for group in self.state["sets"]
        ]
        return run_generation(
            app, config, sets, self.count, self.mode, control_r, ready_w, self.access_log_fd,
            metrics_sock=self.metrics_sock,
        )

    def _close_fds(self, gen: Generation) -> None:
        if gen.ready_fd >= 0:
            try:
                self.sel.unregister(gen.ready_fd)
            except (KeyError, ValueError):
                pass
            os.close(gen.ready_fd)
            gen.ready_fd = -1
        if gen.control_fd >= 0:
            os.close(gen.control_fd)
            gen.control_fd = -1

    def _tell(self, gen: Generation, command: Command) -> None:
        if gen.control_fd < 0:
            return
        try:
            os.write(gen.control_fd, command)
        except OSError:
            pass  # it is exiting; the reaper will see

    def _ready_readable(self, gen: Generation) -> None:
        try:
            data = os.read(gen.ready_fd, 16)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:
            self.sel.unregister(gen.ready_fd)
            os.close(gen.ready_fd)
            gen.ready_fd = -1
            return
        if Message.READY in data and gen.state == "starting":
            self._on_ready(gen)

    def _on_ready(self, gen: Generation) -> None:
        gen.state = "serving"
        if self.pending is gen:
            self.pending = None
        old, self.current = self.current, gen
        if self.stopping:
            return  # it was told to drain already
        if old is None:
            for fd in self.state["sets"][0]:
                logger.info(
                    "Listening on %s (press CTRL+C to quit)", self.listeners[fd]["display"]
                )
            self._notify("ready", f"serving ({gen}, {self.count} workers, {self.mode} mode)")
        else:
            logger.info("reload: %s serves the new code; %s drains", gen, old)
            self._drain(old, Command.REPLACED)
            self._notify("ready", f"serving ({gen}, reloaded)")
        self._reload_again()

    def _drain(self, gen: Generation, command: Command) -> None:
        if gen.state == "gone":
            return
        gen.state = "draining"
        gen.kill_at = time.monotonic() + self.shutdown_timeout + STOP_GRACE
        self._tell(gen, command)

    def _reap(self) -> None:
        # As PID 1 (a container) every orphan of the namespace is ours too.
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            gen = next((g for g in self.gens if g.pid == pid and g.state != "gone"), None)
            if gen is None:
                if self.watcher is not None and pid == self.watcher.pid:
                    self.watcher.pid = 0  # reaped: never signal that number again
                    self._watcher_gone(os.waitstatus_to_exitcode(status))
                    continue
                logger.debug("reaped pid %d", pid)
                continue
            if gen.ready_fd >= 0:
                self._ready_readable(gen)  # a READY may have come just before
            self._on_exit(gen, os.waitstatus_to_exitcode(status))

    def _on_exit(self, gen: Generation, code: int) -> None:
        gen.state = "gone"
        self._close_fds(gen)
        self.gens.remove(gen)  # reloads for months must not grow a list
        how = f"exit status {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
        if self.stopping and gen in (self.pending, self.current):
            # Drained (0), or killed at the deadline (1).
            self.pending = None if gen is self.pending else self.pending
            self.current = None if gen is self.current else self.current
            self.exit_code = self.exit_code or (code if code >= 0 else 1)
            return
        if gen is self.pending:
            self.pending = None
            if self.current is None:
                # The first start failed; the generation said why (an import
                # error's message and status 1, a lifespan failure's 3).
                if code < 0:
                    logger.error("%s was %s before it served", gen, how)
                if self.reload:
                    if not self._reload_again():
                        logger.error(
                            "%s failed (%s): waiting for a change to try again (--reload)",
                            gen,
                            how,
                        )
                    return
                self.exit_code = code if code > 0 else 1
                self.stopping = True
                return
            why = "it was not ready in time" if gen.timed_out else how
            logger.error(
                "reload failed (%s: %s); %s still serves the old code", gen, why, self.current
            )
            self._notify("ready", f"reload failed ({why}); still serving {self.current}")
            self._reload_again()
            return
        if gen is self.current:
            self.current = None
            if code < 0 and self.pending is None:
                logger.error("%s was %s: starting a new one", gen, how)
                self._start_generation()
            elif code >= 0:
                logger.error("%s exited with status %d: shutting down", gen, code)
                self.exit_code = code or 1
                self._shutdown(close_idle=True)
            return
        logger.info("%s has drained and exited (%s)", gen, how)

    # -- signals ------------------------------------------------------------------------------

    def _handle_signals(self) -> None:
        while self.signals:
            sig = self.signals.pop(0)
            if sig == signal.SIGCHLD:
                continue  # reaped next
            name = signal.Signals(sig).name
            action = on_signal(sig, self.stopping)
            if action == "exit":
                logger.warning("%s: exiting now", name)
                self._exit_now()
            elif action == "again":
                logger.warning(
                    "%s again: already shutting down (SIGINT or SIGQUIT exits at once)", name
                )
            elif action in ("drain", "drain-close-idle"):
                # Refused first, logged next: whoever reads the line may
                # count on new connections being refused.
                self._shutdown(close_idle=action == "drain-close-idle")
                logger.info("%s received: shutting down (SIGINT or SIGQUIT exits at once)", name)
            elif action == "reload":
                self._reload()
            elif action == "reopen-logs":
                self._reopen_logs()
            elif action == "more" and self.current is not None:
                self.count += 1
                self._tell(self.current, Command.MORE)
            elif action == "fewer" and self.current is not None and self.count > 1:
                self.count -= 1
                self._tell(self.current, Command.FEWER)
            elif action == "ignored":
                logger.info("%s ignored while shutting down", name)

    def _reopen_logs(self) -> None:
        """SIGUSR1 (logrotate renamed --access-log-file): reopen our copy,
        then every live generation reopens its own (a draining one still
        logs).  Without the file, nothing to do."""
        if self.access_log_fd < 0:
            return
        reopen_access_log(self.config["access_log_file"], self.access_log_fd)
        for gen in self.gens_live():
            self._tell(gen, Command.REOPEN_LOGS)

    def _shutdown(self, close_idle: bool) -> None:
        if not self.stopping:
            self.stopping = True
            grace = self.shutdown_timeout + STOP_GRACE
            if self.reload and close_idle:
                grace = RELOAD_STOP_GRACE  # Ctrl-C in development: now, not in 30 s
            self.stop_deadline = time.monotonic() + grace
            if self.watcher is not None:
                if self.watcher.out_fd >= 0:
                    self.sel.unregister(self.watcher.out_fd)
                self.watcher.stop()
            refuse_new_connections(
                self.socks[fd] for fd, d in self.listeners.items() if d["owned"]
            )
            self._notify("stopping", "draining")
        command = Command.DRAIN_CLOSE_IDLE if close_idle else Command.DRAIN
        for gen in self.gens_live():
            self._drain(gen, command)

    def _exit_now(self) -> None:
        self.stopping = True
        self.exit_code = 1
        for gen in self.gens_live():
            try:
                os.kill(gen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        for gen in self.gens_live():
            try:
                os.waitpid(gen.pid, 0)
            except ChildProcessError:
                pass
            gen.state = "gone"
            self._close_fds(gen)
            self.gens.remove(gen)
        self.current = self.pending = None

    def _reload(self) -> None:
        if self.pending is not None:
            logger.info("SIGHUP: a reload is already under way (%s)", self.pending)
            return
        if self.current is None:
            logger.warning("SIGHUP: not serving yet; ignored")
            return
        logger.info("SIGHUP received: starting generation %d with fresh code", self.number + 1)
        self._notify("reloading", "reloading")
        self._start_generation()

    # -- --reload ------------------------------------------------------------------------------

    def _start_watcher(self) -> None:
        from pounce._reload import Watcher, spec_from_config

        self.watcher = Watcher.spawn(spec_from_config(self.config, os.getcwd()))
        self.sel.register(self.watcher.out_fd, selectors.EVENT_READ, self.watcher)

    def _watcher_readable(self) -> None:
        was_ready = self.watcher.ready
        paths = self.watcher.read()
        if paths is None:  # EOF: it died; the reaper says how
            self.sel.unregister(self.watcher.out_fd)
            self.watcher.close_fds()
            return
        if self.watcher.ready and not was_ready:
            logger.info(
                "reload: watching %s for %s",
                ", ".join(self.watcher.dirs),
                self.config["reload_include"] or "nothing",
            )
        if not paths or self.stopping:
            return
        shown = ", ".join(self._shown_path(p) for p in paths[:3])
        if len(paths) > 3:
            shown += f" and {len(paths) - 3} more"
        if self.pending is not None:
            # One load at a time: this one comes right after the pending one.
            logger.info("reload: %s changed; reloading once %s is done", shown, self.pending)
            self.reload_again = True
            return
        logger.info("reload: %s changed; starting generation %d", shown, self.number + 1)
        self._notify("reloading", "reloading")
        self._start_generation()

    def _shown_path(self, path: str) -> str:
        """Relative to the watched directory it is in."""
        for d in self.watcher.dirs:
            if path.startswith(d.rstrip(os.sep) + os.sep):
                return os.path.relpath(path, d)
        return path

    def _reload_again(self) -> bool:
        """After a load ended (served or failed): start the one a change
        asked for meanwhile."""
        if not self.reload_again or self.stopping:
            return False
        self.reload_again = False
        logger.info("reload: starting generation %d for the later change", self.number + 1)
        self._start_generation()
        return True

    def _reap_orphans(self, deadline: float) -> None:
        """After Ctrl-C: the workers of a generation killed at the deadline
        die by PR_SET_PDEATHSIG and, the master being their subreaper, are
        its children: wait for them, so no process of the group outlives
        the master."""
        while time.monotonic() < deadline:
            try:
                pid, _ = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                time.sleep(0.01)
            elif self.watcher is not None and pid == self.watcher.pid:
                self.watcher.pid = 0

    def _watcher_gone(self, code: int) -> None:
        if self.stopping:
            return
        how = f"exit status {code}" if code >= 0 else f"killed by {signal.Signals(-code).name}"
        logger.error("reload: the file watcher exited (%s); files are no longer watched", how)
        if self.watcher.out_fd >= 0:
            self.sel.unregister(self.watcher.out_fd)
        self.watcher.close_fds()

    # -- timers ---------------------------------------------------------------------------------

    def _handle_timers(self) -> None:
        now = time.monotonic()
        p = self.pending
        if p is not None and self.current is not None and now >= p.started + RELOAD_READY_TIMEOUT:
            if not p.timed_out:
                p.timed_out = True
                os.kill(p.pid, signal.SIGKILL)
        late = [g for g in self.gens if g.state == "draining" and now >= g.kill_at]
        if self.stopping and now >= self.stop_deadline:
            late = self.gens_live()
        for gen in late:
            logger.warning("%s did not stop in time: killing it", gen)
            try:
                os.kill(gen.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            gen.kill_at = now + 5.0
        if late and self.stopping:
            self.stop_deadline = now + 5.0


def _become_subreaper() -> None:
    """PR_SET_CHILD_SUBREAPER (Linux): orphans of our descendants are
    re-parented to us, not to PID 1.  Best effort."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):  # pragma: no cover - not Linux
        pass


# -- 3. in a generation: importing the app -----------------------------------------------------

def _is_machinery(filename: str) -> bool:
    import importlib

    ours = os.path.dirname(os.path.abspath(__file__))
    theirs = os.path.dirname(os.path.abspath(importlib.__file__))
    return filename.startswith(("<frozen importlib", ours + os.sep, theirs + os.sep))


def _print_app_traceback(exc: BaseException) -> None:
    """The traceback from the first frame of the app's code on, without the
    frames of pounce and importlib that lead to it."""
    import traceback

    tb = exc.__traceback__
    while tb is not None and _is_machinery(tb.tb_frame.f_code.co_filename):
        tb = tb.tb_next
    if tb is None and isinstance(exc, SyntaxError):
        tb_to_print = None  # the file, line and caret say it all
    else:
        tb_to_print = tb or exc.__traceback__
    traceback.print_exception(type(exc), exc, tb_to_print)


def load_app(app_spec: str, config: Any) -> Any:
    """Import APP; on failure print the one-line error (and the app's own
    traceback when its code raised) and raise SystemExit(1)."""
    from pounce._cli import fail
    from pounce._importer import AppImportError, import_app

    try:
        return import_app(app_spec, factory=config.factory, app_dir=config.app_dir)
    except AppImportError as e:
        fail(str(e), 1)
    except Exception as e:
        # The app's own code raised while being imported: its traceback
        # is the useful part.
        _print_app_traceback(e)
        fail(f"importing {app_spec!r} raised the exception above", 1)


if __name__ == "__main__":
    main()
