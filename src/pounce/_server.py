"""Running the server: the top of the Python shell's server side below the
master.

The layers import downward only, as in uvicorn and granian:

    _master                the main process of ``pounce APP``: signals,
                           listeners, pid file; one generation per load of the app
      _server              serve() for pounce.run(); run_generation() for a generation
        _supervisor        starts, watches and replaces workers
          _runner          one worker: event loop, lifespan, _pounce.Worker
          _listeners       the listening sockets, bound once before any worker
          _control         the bytes and signals between the processes

Main thread only.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from pounce import _pounce
from pounce._control import (
    open_access_log_at_start,
    remove_pid_file,
    resolve_workers,
    write_pid_file,
)
from pounce._listeners import (
    ListenError,
    Listener,
    bind_listeners,
    close_listeners,
    extra_reuse_port_listeners,
)
from pounce._pounce import Config

__all__ = [
    "serve",
    "run_generation",
    "resolve_workers",
    "log_startup",
    "log_static",
    "log_listen_error",
    "owned_sockets",
]

logger = logging.getLogger("pounce")


def warn_about_proxies(config: Config) -> None:
    """Settings that are legal but cannot be what the operator meant."""
    trusted = [p.strip() for p in config.forwarded_allow_ips.split(",") if p.strip()]
    if config.proxy_protocol and not trusted:
        logger.warning(
            "--proxy-protocol with an empty --forwarded-allow-ips: no peer may send a "
            "PROXY header, so every connection will be closed"
        )
    if "*" in trusted and (config.proxy_headers or config.proxy_protocol):
        logger.warning(
            "--forwarded-allow-ips '*': every peer may say who the client is; keep it "
            "for networks where only your proxies can reach Pounce"
        )


def loop_name(choice: str) -> str:
    """The event loop the workers will run for --loop CHOICE, as
    _runner.new_event_loop picks it: uvloop when asked for or, with auto,
    when it imports; asyncio otherwise."""
    if choice == "asyncio":
        return "asyncio"
    try:
        import uvloop  # type: ignore[import-not-found]  # noqa: F401
    except ImportError:
        return "asyncio" if choice == "auto" else "uvloop (not installed)"
    return "uvloop"


def log_static(config: Config) -> None:
    """One line per --static mount: which URL prefix serves which directory."""
    for entry in filter(None, config.static_mount.split(",")):
        prefix, _, directory = entry.partition("=")
        logger.info("static: %s -> %s", prefix, directory)


def log_startup(count: int, mode: str, why: str, loop: str = "auto") -> None:
    logger.info(
        "Pounce %s on CPython %s: %d worker%s, %s mode (%s), %s",
        _pounce.VERSION,
        sys.version.split()[0],
        count,
        "" if count == 1 else "s",
        mode,
        why,
        loop_name(loop),
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


def log_listen_error(e: OSError) -> None:
    # A ListenError's text is the whole line: "cannot listen on ADDRESS: why".
    logger.error("%s", e if isinstance(e, ListenError) else f"cannot listen: {e}")


def owned_sockets(config: Config, listener_sets: list[list[Listener]]) -> list[Any]:
    """The listening sockets we bound ourselves, each once: the ones a
    shutdown may take out of LISTEN (_control.refuse_new_connections).  A
    socket from systemd or --fd belongs to whoever passed it."""
    seen: dict[int, Any] = {}
    for group in listener_sets:
        for lst in group:
            origin = getattr(lst, "origin", "fd" if config.fd >= 0 else "bound")
            if origin == "bound":
                seen.setdefault(lst.sock.fileno(), lst.sock)
    return list(seen.values())


def serve(app: Any, config: Config) -> int:
    """pounce.run(): serve ``app`` in this process until SIGINT/SIGTERM;
    returns the exit status.  SIGHUP cannot reload here (the app object was
    imported by the caller) and is refused with a warning."""
    from pounce._metrics import bind_metrics

    access_log_fd = open_access_log_at_start(config.access_log_file)
    if access_log_fd is None:
        return 1
    try:
        listeners = bind_listeners(config)
    except OSError as e:
        log_listen_error(e)
        if access_log_fd >= 0:
            os.close(access_log_fd)
        return 1
    try:
        metrics_sock = bind_metrics(config)
    except OSError as e:
        close_listeners(listeners, config)
        log_listen_error(e)
        if access_log_fd >= 0:
            os.close(access_log_fd)
        return 1
    count, mode, why = resolve_workers(config)
    log_startup(count, mode, why, config.loop)
    log_static(config)
    if config.reload or config.env_file:
        # Both belong to the pounce command: the app object is already
        # imported here, and the environment already read.
        logger.warning("reload and env_file are ignored by pounce.run(): use the pounce command")
    warn_about_proxies(config)
    sets = extra_reuse_port_listeners(config, listeners, count)
    if config.pid_file:
        write_pid_file(config.pid_file)
    from pounce._supervisor import Supervisor  # (imported when serving: see run_generation)

    sup = Supervisor(
        app,
        config,
        sets,
        count,
        mode,
        owned_socks=owned_sockets(config, sets),
        access_log_fd=access_log_fd,
        metrics_sock=metrics_sock,
    )
    try:
        return sup.run()
    finally:
        sup.close()
        if access_log_fd >= 0:
            os.close(access_log_fd)
        extra = [s for group in sets[1:] for s in group if s not in listeners]
        close_listeners(extra, config, unlink=False)
        close_listeners(listeners, config)
        if config.pid_file:
            remove_pid_file(config.pid_file)


def run_generation(
    app: Any,
    config: Config,
    listener_sets: list[list[Listener]],
    count: int,
    mode: str,
    control_fd: int,
    ready_fd: int,
    access_log_fd: int = -1,
    metrics_sock: Any = None,
) -> int:
    """One generation under the master: serve until the master's command;
    the sockets stay the master's (never closed or unlinked here)."""
    # Imported here, not at the top: the pounce command imports this module
    # for log_listen_error and owned_sockets before it execs the master, and
    # the supervisor brings asyncio with it, which that process never uses.
    from pounce._supervisor import Supervisor

    sup = Supervisor(
        app,
        config,
        listener_sets,
        count,
        mode,
        control_fd,
        ready_fd,
        access_log_fd=access_log_fd,
        metrics_sock=metrics_sock,
    )
    try:
        return sup.run()
    finally:
        sup.close()
