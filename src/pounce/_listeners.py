"""The listening sockets: bound (or adopted) once, before any worker starts.

Every worker — thread or process — accepts from the sockets made here; the
C core only ever sees their file descriptors.  This module is the bottom of
the Python shell's server side: it imports nothing of pounce but the
extension's ``Config`` type.

Main thread only (the supervisor's), like everything that opens or closes
these sockets.
"""

from __future__ import annotations

import json
import os
import socket
import stat
from typing import Any

from pounce._pounce import Config

__all__ = [
    "INHERIT_ENV",
    "Listener",
    "bind_listeners",
    "extra_reuse_port_listeners",
    "close_listeners",
]

#: Set by a reloading Pounce for the Pounce it starts: the listening sockets
#: to adopt instead of binding (JSON, a list of ``Listener.describe()``).
INHERIT_ENV = "POUNCE_INHERIT_LISTENERS"


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


def _bind_tcp(config: Config, reuse_port: bool) -> Listener:
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


def bind_listeners(config: Config) -> list[Listener]:
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


def extra_reuse_port_listeners(
    config: Config, first: list[Listener], count: int
) -> list[list[Listener]]:
    """With --reuse-port, one more SO_REUSEPORT socket per extra worker, on
    the port the first one got (so --port 0 works too)."""
    out = [first]
    if not config.reuse_port or config.uds or config.fd >= 0 or count <= 1:
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
