"""Running the server: ``serve()``, the top of the Python shell's server side.

The layers import downward only, as in uvicorn and granian:

    _server.serve          binds, picks the worker mode, runs the Supervisor
      _supervisor          starts, watches, replaces and reloads workers
        _runner            one worker: event loop, lifespan, _pounce.Worker
        _listeners         the listening sockets, bound once before any worker

``pounce.run`` and the CLI (``pounce``, ``python -m pounce``) both end here.
Main thread only.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from pounce import _pounce
from pounce._listeners import bind_listeners
from pounce._pounce import Config
from pounce._runner import gil_enabled
from pounce._supervisor import Supervisor

__all__ = ["serve", "resolve_workers"]

logger = logging.getLogger("pounce")


def _usable_cpus() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def resolve_workers(config: Config) -> tuple[int, str, str]:
    """(count, mode, why)"""
    count = config.workers or _usable_cpus()
    mode: str = config.worker_mode
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


def serve(app: Any, config: Config, reload_argv: list[str] | None = None) -> int:
    """Run the server until SIGINT/SIGTERM; returns the exit status.

    reload_argv is the command that starts a fresh Pounce for SIGHUP (the
    CLI passes its own command line); without it SIGHUP is refused."""
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
