"""--reload: the file watcher of the master, in a small helper process.

The master (``_master.py``) forks its generations, so it must stay
single-threaded: a watcher thread alive across fork() is unsafe (its locks
may be held by a thread that does not exist in the child).  So the watcher
runs in its own process, spawned (posix_spawn, no fork of the master's
state) as ``python -m pounce._reload SPEC``:

* it uses watchfiles (inotify on Linux through the Rust ``notify`` crate,
  never polling), filtered by --reload-include / --reload-exclude;
* once its inotify watches are in place it writes the line ``"ready"`` to
  its stdout, a pipe the master's selector watches (the master logs
  "reload: watching ..." then, so a test or a user knows edits count from
  there); then, for every batch of changes, one line: a JSON list of the
  changed paths;
* its stdin is the other pipe: EOF (the master exited, even by SIGKILL)
  ends it; it ignores the terminal's SIGINT/SIGHUP/SIGQUIT, which are the
  master's business (it shares the master's process group).

A file change then takes the path of SIGHUP: a new generation imports the
app afresh; the old one keeps serving until the new one is ready, and stays
if the new one fails (a syntax error, say).

Master side (main thread of the master): ``Watcher.spawn``, ``read``,
``close``.  Helper side: ``main``.
"""

from __future__ import annotations

import fnmatch
import json
import os
import signal
import sys
from typing import Any

__all__ = ["MISSING", "missing", "split_list", "spec_from_config", "Watcher", "main"]

MISSING = (
    "--reload needs the watchfiles package: pip install 'pounce-asgi[reload]' "
    "(or pip install watchfiles)"
)

#: watchfiles: yield a batch once no new change came for this long (ms) ...
STEP_MS = 50
#: ... or at the latest after this long (ms) of continuous changes.
DEBOUNCE_MS = 400


def missing() -> bool:
    """True when watchfiles cannot be imported (checked before binding)."""
    import importlib.util

    return importlib.util.find_spec("watchfiles") is None


def split_list(text: str) -> list[str]:
    """'a, b,,c' -> ['a', 'b', 'c'] (the text form of the repeatable options)."""
    return [p.strip() for p in text.split(",") if p.strip()]


def spec_from_config(config: dict[str, Any], cwd: str) -> dict[str, Any]:
    dirs = [os.path.abspath(os.path.join(cwd, d)) for d in split_list(config["reload_dir"])]
    return {
        "dirs": dirs or [os.path.abspath(cwd)],
        "include": split_list(config["reload_include"]),
        "exclude": split_list(config["reload_exclude"]),
    }


# -- master side ---------------------------------------------------------------------


class Watcher:
    """The helper process as the master sees it: a pid and two pipe ends."""

    def __init__(self, pid: int, out_fd: int, in_fd: int, dirs: list[str]) -> None:
        self.pid = pid  # 0 once the master reaped it
        self.out_fd = out_fd  # read end of the helper's stdout: change lines
        self.in_fd = in_fd  # write end of the helper's stdin: closed = stop
        self.dirs = dirs
        self.ready = False  # its "ready" line came
        self._partial = b""

    @classmethod
    def spawn(cls, spec: dict[str, Any]) -> "Watcher":
        out_r, out_w = os.pipe2(os.O_CLOEXEC)
        in_r, in_w = os.pipe2(os.O_CLOEXEC)
        try:
            argv = [sys.executable, "-P", "-m", "pounce._reload", json.dumps(spec)]
            pid = os.posix_spawn(
                sys.executable,
                argv,
                os.environ,
                file_actions=[
                    (os.POSIX_SPAWN_DUP2, in_r, 0),
                    (os.POSIX_SPAWN_DUP2, out_w, 1),
                ],
                setsigmask=(),  # the master may have some blocked
            )
        finally:
            os.close(out_w)
            os.close(in_r)
        os.set_blocking(out_r, False)
        return cls(pid, out_r, in_w, spec["dirs"])

    def read(self) -> list[str] | None:
        """The paths of the batches that arrived (possibly none); None at
        EOF (the helper is gone).  Sets ``ready`` when that line came."""
        try:
            data = os.read(self.out_fd, 65536)
        except BlockingIOError:
            return []
        except OSError:
            data = b""
        if not data:
            return None
        *lines, self._partial = (self._partial + data).split(b"\n")
        paths: list[str] = []
        for line in lines:
            try:
                value = json.loads(line)
            except ValueError:
                continue
            if value == "ready":
                self.ready = True
            elif isinstance(value, list):
                paths += value
        return paths

    def close_fds(self) -> None:
        """In a forked generation, or once the master is done with it."""
        for name in ("out_fd", "in_fd"):
            fd = getattr(self, name)
            if fd >= 0:
                os.close(fd)
                setattr(self, name, -1)

    def stop(self) -> None:
        """Close the pipes and end the helper now (the master reaps it)."""
        self.close_fds()
        if self.pid <= 0:
            return  # reaped already
        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass


# -- helper side ----------------------------------------------------------------------


def _make_filter(include: list[str], exclude: list[str], roots: list[str]) -> Any:
    from watchfiles import DefaultFilter

    class Filter(DefaultFilter):
        """watchfiles' defaults (.git, __pycache__, .venv, editor swap files
        ...) and then the globs, tried against the file name and against the
        path relative to each watched directory."""

        def __call__(self, change: Any, path: str) -> bool:
            if not super().__call__(change, path):
                return False
            names = [os.path.basename(path)]
            for root in roots:
                rel = os.path.relpath(path, root)
                if not rel.startswith(".."):
                    names.append(rel)

            def hit(patterns: list[str]) -> bool:
                return any(fnmatch.fnmatchcase(n, p) for n in names for p in patterns)

            return hit(include) and not hit(exclude)

    return Filter()


def main() -> None:
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGQUIT, signal.SIGTTIN, signal.SIGTTOU):
        signal.signal(sig, signal.SIG_IGN)
    spec = json.loads(sys.argv[1])
    import threading

    stop = threading.Event()

    def wait_for_eof() -> None:
        try:
            while os.read(0, 4096):
                pass
        except OSError:
            pass
        stop.set()

    threading.Thread(target=wait_for_eof, daemon=True).start()
    watch_filter = _make_filter(spec["include"], spec["exclude"], spec["dirs"])
    out = sys.stdout.buffer

    def say(value: Any) -> None:
        out.write(json.dumps(value).encode() + b"\n")
        out.flush()

    try:
        for changes in _watch(spec["dirs"], watch_filter, stop, lambda: say("ready")):
            say(sorted({p for _, p in changes}))
    except BrokenPipeError:
        pass  # the master is gone


def _watch(dirs: list[str], watch_filter: Any, stop: Any, ready: Any) -> Any:
    """watchfiles.watch(), but calling ready() once the watches are set:
    the loop of watch() around watchfiles' Rust backend (RustNotify, in its
    documented "Rust backend" API).  Should that move, watch() itself, with
    ready() called just before (a few ms early)."""
    import watchfiles

    try:
        from watchfiles._rust_notify import RustNotify
    except ImportError:  # pragma: no cover - a future watchfiles
        ready()
        yield from watchfiles.watch(
            *dirs,
            watch_filter=watch_filter,
            stop_event=stop,
            step=STEP_MS,
            debounce=DEBOUNCE_MS,
            raise_interrupt=False,
        )
        return
    # (paths, debug, force_polling, poll_delay_ms, recursive, ignore_permission_denied)
    with RustNotify(dirs, False, False, 300, True, False) as notify:
        ready()
        while True:
            raw = notify.watch(DEBOUNCE_MS, STEP_MS, 5_000, stop)
            if raw == "stop":
                return
            if isinstance(raw, str):  # "timeout"; "signal" cannot come (SIGINT ignored)
                continue
            changes = {
                (watchfiles.Change(c), p) for c, p in raw if watch_filter(watchfiles.Change(c), p)
            }
            if changes:
                yield changes


if __name__ == "__main__":
    main()
