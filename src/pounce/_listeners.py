"""The listening sockets: bound (or adopted) once, before any worker starts.

Every worker — thread or process — accepts from the sockets made here; the
C core only ever sees their file descriptors.  This module is the bottom of
the Python shell's server side: it imports nothing of pounce but the
extension's ``Config`` type and ``_systemd``'s LISTEN_FDS parser.

Where the sockets come from, first match wins:

1. systemd socket activation (``LISTEN_PID`` is ours, ``LISTEN_FDS`` >= 1),
   unless a bind option (host, port, uds, fd) was also given explicitly:
   that is a configuration error (ListenError), never a silent choice,
   because either way one of the two addresses would go unserved;
2. ``--fd``; 3. ``--uds``; 4. TCP ``--host``/``--port``.

A reload needs none of this: the master (``_master.py``) binds once and
every generation it forks inherits its sockets.

Every failure is a ``ListenError`` (an OSError) whose ``str()`` is the whole
message, naming the address: ``cannot listen on 127.0.0.1:8000: Address
already in use``, ``cannot listen on unix:/run/x.sock: Permission denied``.

Main thread only (the supervisor's), like everything that opens or closes
these sockets.  The Unix socket is bound under a temporary umask of 0o777
(process-wide, so no other thread may create files meanwhile: workers do
not exist yet), then chmod'ed to ``--uds-permissions``: the socket never
exists with a wider mode than asked for.
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
from typing import Any, Callable, Collection, Mapping

from pounce._pounce import Config
from pounce._systemd import listen_fds

__all__ = [
    "BIND_SETTINGS",
    "ListenError",
    "Listener",
    "bind_listeners",
    "extra_reuse_port_listeners",
    "close_listeners",
]

logger = logging.getLogger("pounce")

#: The settings that say where to listen; given explicitly, they conflict
#: with systemd socket activation.
BIND_SETTINGS = ("host", "port", "uds", "fd")


class ListenError(OSError):
    """A socket could not be bound or adopted.  ``str()`` is the complete
    one-line message (print it as is); ``address`` is what it was about."""

    def __init__(self, address: str, reason: str, err: int | None = None) -> None:
        super().__init__(err or 0, reason)
        self.address = address
        self.reason = reason
        self.message = f"cannot listen on {address}: {reason}"

    def __str__(self) -> str:
        return self.message


class Listener:
    """A bound, listening socket and what scope["server"] says about it.

    ``origin`` says where it came from: "bound" (by us, from the config),
    "fd" (--fd), "systemd" (socket activation; ``name`` is its
    FileDescriptorName) or "inherited" (by a generation from the master)."""

    def __init__(
        self,
        sock: socket.socket,
        server: Any,
        is_unix: bool,
        display: str,
        origin: str = "bound",
        name: str = "",
    ) -> None:
        self.sock = sock
        self.server = server
        self.is_unix = is_unix
        self.display = display
        self.origin = origin
        self.name = name

    def describe(self) -> dict[str, Any]:
        return {
            "fd": self.sock.fileno(),
            "server": list(self.server),
            "unix": self.is_unix,
            "display": self.display,
        }


def _host_port(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _tcp_display(host: str, port: int) -> str:
    return "http://" + _host_port(host, port)


def _reason(e: OSError) -> str:
    # "Address already in use", not "[Errno 98] Address already in use".
    return e.strerror or str(e)


def _check_fd(fd: int, what: str) -> None:
    """Refuse anything but a listening stream socket of a family we serve,
    before it reaches the C core."""
    try:
        st = os.fstat(fd)
    except OSError as e:
        raise ListenError(what, _reason(e), e.errno) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(what, "not a socket")
    probe = socket.socket(fileno=os.dup(fd))
    try:
        family, kind = probe.family, probe.type
        accepting = probe.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN)
    finally:
        probe.close()
    if family not in (socket.AF_INET, socket.AF_INET6, socket.AF_UNIX):
        raise ListenError(what, f"unsupported address family {family!r} (TCP or Unix sockets only)")
    if kind != socket.SOCK_STREAM:
        name = getattr(kind, "name", str(kind))
        raise ListenError(what, f"a {name} socket, not a stream socket (ListenStream=)")
    if not accepting:
        raise ListenError(what, "the socket is not listening (listen() was never called)")


def _adopt(fd: int, origin: str = "inherited", name: str = "") -> Listener:
    # Close-on-exec, like the sockets we bind: a subprocess of the app must
    # not keep our port open.  (Forked workers still get it; a reload
    # passes it on explicitly.)
    os.set_inheritable(fd, False)
    sock = socket.socket(fileno=fd)
    sock.setblocking(False)
    if sock.family == socket.AF_UNIX:
        path = sock.getsockname()
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        if path.startswith("\0"):
            path = "@" + path[1:]  # abstract, as ss(8) and systemd show it
        return Listener(sock, (path, None), True, f"unix:{path}", origin, name)
    host, port = sock.getsockname()[:2]
    return Listener(sock, (host, port), False, _tcp_display(host, port), origin, name)


def _open(
    where: str, family: int, proto: int, setup: Callable[[socket.socket], None]
) -> socket.socket:
    """A new stream socket, non-blocking once ``setup`` (bind, listen) has
    run; closed again if anything fails.  Every OSError becomes a
    ListenError about ``where``."""
    try:
        sock = socket.socket(family, socket.SOCK_STREAM, proto)
    except OSError as e:
        raise ListenError(where, _reason(e), e.errno) from None
    try:
        setup(sock)
        sock.setblocking(False)
    except OSError as e:
        sock.close()
        raise ListenError(where, _reason(e), e.errno) from None
    except BaseException:
        sock.close()
        raise
    return sock


def _bind_tcp(config: Config, reuse_port: bool) -> Listener:
    where = _host_port(config.host or "*", config.port)
    try:
        infos = socket.getaddrinfo(
            config.host or None, config.port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )
    except OSError as e:
        raise ListenError(where, _reason(e), e.errno) from None
    if not infos:
        raise ListenError(where, "the host name resolves to no address")
    family, _, proto, _, addr = infos[0]

    def setup(sock: socket.socket) -> None:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        if family == socket.AF_INET6:
            sock.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 1)
        sock.bind(addr)
        sock.listen(int(config.backlog))

    sock = _open(_host_port(addr[0], config.port), family, proto, setup)
    host, port = sock.getsockname()[:2]
    return Listener(sock, (host, port), False, _tcp_display(host, port))


def _remove_stale_socket(path: str, where: str) -> None:
    """Unlink a socket file left by a server that is gone; refuse to steal
    one another server still answers on, or to remove anything else."""
    try:
        st = os.lstat(path)
    except FileNotFoundError:
        return
    except OSError as e:
        raise ListenError(where, _reason(e), e.errno) from None
    if not stat.S_ISSOCK(st.st_mode):
        raise ListenError(where, "the path exists and is not a socket")
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(path)
    except OSError:
        pass  # ECONNREFUSED: nobody listens; EACCES etc.: bind will say
    else:
        raise ListenError(
            where, "Address already in use (another server answers there)", errno.EADDRINUSE
        )
    finally:
        probe.close()
    try:
        os.unlink(path)  # a stale socket from an earlier run
    except FileNotFoundError:
        pass
    except OSError as e:
        raise ListenError(where, _reason(e), e.errno) from None


def _bind_unix(config: Config) -> Listener:
    path = config.uds
    where = f"unix:{path}"
    mode = int(config.uds_permissions)
    _remove_stale_socket(path, where)

    def setup(sock: socket.socket) -> None:
        # bind() creates the file with 0o777 & ~umask: under umask 0o777 it
        # starts at mode 0 (and nobody can connect before listen() anyway),
        # then gets exactly `mode`, never a wider one in between.
        old = os.umask(0o777)
        try:
            sock.bind(path)
        finally:
            os.umask(old)
        try:
            os.chmod(path, mode)
            sock.listen(int(config.backlog))
        except BaseException:
            _unlink_quietly(path)
            raise

    sock = _open(where, socket.AF_UNIX, 0, setup)
    return Listener(sock, (path, None), True, where)


def _unlink_quietly(path: str) -> None:
    try:
        os.unlink(path)
    except OSError:
        pass


def _explicit_bind(
    config: Config, explicit: Collection[str] | Mapping[str, str] | None
) -> list[str]:
    """The sources of the bind options given explicitly (e.g. "--port",
    "POUNCE_HOST").  Without ``explicit`` (pounce.run(), a Config made in
    Python) a bind setting counts as given when it is not its default."""
    if explicit is None:
        default = Config()
        return [
            "--" + n.replace("_", "-")
            for n in BIND_SETTINGS
            if getattr(config, n) != getattr(default, n)
        ]
    labels = explicit if isinstance(explicit, Mapping) else {}
    return [labels.get(n) or "--" + n.replace("_", "-") for n in BIND_SETTINGS if n in explicit]


def _activated(config: Config, explicit: Any) -> list[Listener]:
    try:
        passed = listen_fds()
    except ValueError as e:
        raise ListenError("the sockets systemd passed", str(e)) from None
    if not passed:
        return []
    given = _explicit_bind(config, explicit)
    what = ", ".join(f"fd {fd} ({name})" for fd, name in passed)
    if given:
        for fd, _ in passed:
            _close_quietly(fd)
        raise ListenError(
            what,
            f"systemd passed listening sockets (LISTEN_FDS) and {', '.join(given)} "
            "also says where to listen; use one or the other",
        )
    out: list[Listener] = []
    try:
        for fd, name in passed:
            _check_fd(fd, f"fd {fd} ({name}) from systemd")
            out.append(_adopt(fd, "systemd", name))
    except BaseException:
        for lst in out:
            lst.sock.close()
        for fd, _ in passed[len(out) :]:
            _close_quietly(fd)
        raise
    logger.info(
        "systemd socket activation: serving %s",
        ", ".join(f"{lst.display} (fd {lst.sock.fileno()}, {lst.name!r})" for lst in out),
    )
    return out


def _close_quietly(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def bind_listeners(
    config: Config, *, explicit: Collection[str] | Mapping[str, str] | None = None
) -> list[Listener]:
    """The listening sockets to serve, bound or adopted before any worker
    starts (so every worker, thread or process, shares them); see the
    module docstring for the order.  ``explicit`` names the settings given
    on the command line, in the environment or a config file (the
    ``origins`` load_config fills in); None means "those not at their
    default".  Raises ListenError."""
    activated = _activated(config, explicit)
    if activated:
        listeners = activated
    elif config.fd >= 0:
        _check_fd(config.fd, f"fd {config.fd}")
        listeners = [_adopt(config.fd, "fd")]
    elif config.uds:
        listeners = [_bind_unix(config)]
    else:
        listeners = [_bind_tcp(config, config.reuse_port)]
    if config.ssl_certfile:
        # Every listener speaks TLS (the C core's handshake phase): say so
        # where the log names it ("Listening on https://...").
        for lst in listeners:
            if lst.display.startswith("http://"):
                lst.display = "https://" + lst.display[len("http://") :]
    return listeners


def extra_reuse_port_listeners(
    config: Config, first: list[Listener], count: int
) -> list[list[Listener]]:
    """With --reuse-port, one more SO_REUSEPORT socket per extra worker, on
    the port the first one got (so --port 0 works too)."""
    out = [first]
    if config.reuse_port and count > 1 and first[0].origin == "systemd":
        # One socket per worker would need a port of our own; the passed
        # sockets are shared (ReusePort= in the .socket unit is systemd's).
        logger.warning("--reuse-port is ignored with sockets passed by systemd")
    if (
        not config.reuse_port
        or config.uds
        or config.fd >= 0
        or count <= 1
        or first[0].origin == "systemd"
    ):
        return out + [first] * (count - 1)
    port = first[0].server[1]
    for _ in range(count - 1):
        out.append([_bind_tcp(config.replace(port=port), True)])
    return out


def close_listeners(listeners: list[Listener], config: Config, unlink: bool = True) -> None:
    for lst in listeners:
        lst.sock.close()
    if unlink and config.uds and config.fd < 0:
        try:
            os.unlink(config.uds)
        except OSError:
            pass
