"""--metrics-port: Prometheus text exposition (format 0.0.4) of the workers'
counters, served at ``GET /metrics``.

The counters live in C (``_pounce.MetricsTable``, csrc/runtime/pn_metrics.h):
one slot per worker in shared memory, written only by its worker.  The
supervisor reads them with ``snapshot()`` and renders them here.  It serves
them from its own selector loop (``MetricsServer``), never from a worker,
never calling the app, and without a thread of its own: in process mode
the supervisor forks workers, which a thread would make unsafe.

Every metric comes twice: ``pounce_<name>`` summed over the workers (what
dashboards want), and ``pounce_worker_<name>`` with a ``worker`` label (the
worker's slot in the table, stable across restarts: a replacement worker
takes a free slot and carries its counters on, so no counter ever goes
down while the table lives).  The table belongs to the supervisor, so a
reload (SIGHUP: a new generation) starts from zero; Prometheus's rate()
and increase() take a counter reset in their stride.
"""

from __future__ import annotations

import errno
import logging
import selectors
import socket
from typing import Any, Callable

from pounce._listeners import ListenError

__all__ = ["bind_metrics", "render", "MetricsServer", "CONTENT_TYPE"]

logger = logging.getLogger("pounce")

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

METHODS = ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "other")
CLASSES = ("none", "1xx", "2xx", "3xx", "4xx", "5xx")

#: Scrapes served at once; a further connection closes the oldest.
MAX_CLIENTS = 16
#: Largest scrape request head we read.
MAX_REQUEST = 8192


def bind_metrics(config: Any) -> socket.socket | None:
    """The listening socket of --metrics-port, or None when it is off.
    Raises ListenError (its text is the whole message) when it cannot bind."""
    port = int(config.metrics_port)
    if port <= 0:
        return None
    host = config.metrics_host or "127.0.0.1"
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    shown = f"[{host}]:{port}" if family == socket.AF_INET6 else f"{host}:{port}"
    try:
        sock = socket.create_server((host, port), family=family, backlog=64)
    except OSError as e:
        raise ListenError(f"{shown} (--metrics-port)", e.strerror or str(e), e.errno) from None
    sock.set_inheritable(False)
    return sock


# -- rendering ---------------------------------------------------------------------


def _labels(pairs: list[tuple[str, str]]) -> str:
    if not pairs:
        return ""
    inner = ",".join(
        f'{k}="' + v.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"') + '"'
        for k, v in pairs
    )
    return "{" + inner + "}"


def _num(v: float | int) -> str:
    if isinstance(v, int):
        return str(v)
    return repr(float(v))


class _Out:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_: str) -> None:
        self.lines.append(f"# HELP {name} {help_}")
        self.lines.append(f"# TYPE {name} {kind}")

    def sample(self, name: str, labels: list[tuple[str, str]], value: float | int) -> None:
        self.lines.append(f"{name}{_labels(labels)} {_num(value)}")


# (name without prefix, type, help, how to read one slot's value)
_SCALARS: list[tuple[str, str, str, Callable[[dict[str, Any]], int]]] = [
    ("requests_in_flight", "gauge",
     "ASGI app calls running now (HTTP requests and WebSocket sessions).",
     lambda s: s["in_flight"]),
    ("connections_open", "gauge", "Client connections open now.", lambda s: s["connections_open"]),
    ("connections_total", "counter", "Client connections accepted.",
     lambda s: s["connections_total"]),
    ("received_bytes_total", "counter", "Bytes read from client sockets.", lambda s: s["bytes_in"]),
    ("sent_bytes_total", "counter", "Bytes written to client sockets.", lambda s: s["bytes_out"]),
    ("websocket_sessions_total", "counter", "WebSocket sessions accepted.",
     lambda s: s["ws_opened"]),
    ("websocket_sessions_open", "gauge",
     "WebSocket sessions accepted whose app call still runs.",
     lambda s: max(0, s["ws_opened"] - s["ws_closed"])),
    ("websocket_messages_received_total", "counter", "WebSocket messages received from clients.",
     lambda s: s["ws_messages_in"]),
    ("websocket_messages_sent_total", "counter", "WebSocket messages sent by the app.",
     lambda s: s["ws_messages_out"]),
    ("compression_input_bytes_total", "counter",
     "Response bytes given to the compressor (gzip, zstd, br).", lambda s: s["compress_in"]),
    ("compression_output_bytes_total", "counter",
     "Compressed response bytes the compressor made of them.", lambda s: s["compress_out"]),
    ("compression_saved_bytes", "gauge",
     "Bytes saved by response compression: input minus output (a gauge: incompressible "
     "data can make it shrink).",
     lambda s: s["compress_in"] - s["compress_out"]),
]


def render(snapshot: dict[str, Any], buckets: tuple[float, ...]) -> str:
    """The exposition text of a MetricsTable.snapshot()."""
    slots = snapshot["slots"]
    out = _Out()
    out.family("pounce_workers", "gauge", "Workers running now.")
    out.sample("pounce_workers", [], sum(1 for s in slots if s["live"]))
    out.family("pounce_worker_restarts_total", "counter",
               "Workers started to replace one that was recycled (--max-requests) or died.")
    out.sample("pounce_worker_restarts_total", [], snapshot["restarts"])

    for per_worker in (False, True):
        pre = "pounce_worker_" if per_worker else "pounce_"
        rows = list(enumerate(slots)) if per_worker else [(None, None)]

        def wl(i: int | None) -> list[tuple[str, str]]:
            return [("worker", str(i))] if i is not None else []

        def value(fn: Callable[[dict[str, Any]], int], s: dict[str, Any] | None) -> int:
            return fn(s) if s is not None else sum(fn(x) for x in slots)

        name = pre + "requests_total"
        out.family(name, "counter",
                   "HTTP requests the app answered, by method and status class "
                   "(none: the client left before any response).")
        for i, s in rows:
            for m, method in enumerate(METHODS):
                for c, cls in enumerate(CLASSES):
                    n = value(lambda x, m=m, c=c: x["requests"][m][c], s)
                    if n:
                        out.sample(name, [("method", method), ("status_class", cls), *wl(i)], n)

        name = pre + "server_responses_total"
        out.family(name, "counter",
                   "Responses the server made without calling the app (errors before "
                   "dispatch, --limit-concurrency 503s, --health-path), by status class.")
        for i, s in rows:
            for c, cls in enumerate(CLASSES[1:], 1):
                n = value(lambda x, c=c: x["early"][c], s)
                if n:
                    out.sample(name, [("status_class", cls), *wl(i)], n)

        name = pre + "request_duration_seconds"
        out.family(name, "histogram",
                   "Time from a request's head to the end of its app call, in seconds.")
        for i, s in rows:
            counts = [value(lambda x, b=b: x["duration_buckets"][b], s)
                      for b in range(len(buckets) + 1)]
            total = 0
            for bound, n in zip((*buckets, None), counts):
                total += n
                le = "+Inf" if bound is None else _num(bound)
                out.sample(name + "_bucket", [*wl(i), ("le", le)], total)
            out.sample(name + "_sum", wl(i), value(lambda x: x["duration_sum_ns"], s) / 1e9)
            out.sample(name + "_count", wl(i), total)

        for short, kind, help_, fn in _SCALARS:
            name = pre + short
            out.family(name, kind, help_)
            for i, s in rows:
                out.sample(name, wl(i), value(fn, s))
        if per_worker:
            name = "pounce_worker_starts_total"
            out.family(name, "counter", "Workers that ran in this slot.")
            for i, s in rows:
                out.sample(name, wl(i), s["starts"])
    return "\n".join(out.lines) + "\n"


# -- serving ---------------------------------------------------------------------------


def _response(status: str, body: bytes, ctype: str, head_only: bool = False,
              extra: str = "") -> bytes:
    head = (
        f"HTTP/1.1 {status}\r\nContent-Type: {ctype}\r\nContent-Length: {len(body)}\r\n"
        f"Cache-Control: no-store\r\n{extra}Connection: close\r\n\r\n"
    ).encode()
    return head if head_only else head + body


class MetricsServer:
    """GET /metrics on a listening socket, from the owner's selector loop:
    ``attach(sel)`` registers it with a callable as the key's data, which the
    loop calls when ready.  Requests are tiny and the answer is a few KiB
    that the kernel takes at once, so nothing here waits for long; a client
    that connects and sends nothing holds one of MAX_CLIENTS places until a
    newer one takes it.  Not thread-safe: the owner's thread only."""

    def __init__(self, sock: socket.socket, table: Any) -> None:
        self.sock = sock
        self.table = table
        self.sel: selectors.BaseSelector | None = None
        self.clients: dict[socket.socket, bytearray] = {}

    def attach(self, sel: selectors.BaseSelector) -> None:
        self.sel = sel
        self.sock.setblocking(False)
        sel.register(self.sock, selectors.EVENT_READ, self._accept)

    def close(self, forked: bool = False) -> None:
        """Stop serving: our copy of the socket closes (another process that
        holds it, the master or the next generation, keeps it listening).
        forked: in a forked child, whose selector shares its epoll set with
        the parent's: close the fds without unregistering them, which would
        take them out of the parent's set too."""
        if forked:
            self.sel = None
        for conn in list(self.clients):
            self._drop(conn)
        if self.sel is not None:
            try:
                self.sel.unregister(self.sock)
            except (KeyError, ValueError):
                pass
            self.sel = None
        self.sock.close()

    def _drop(self, conn: socket.socket) -> None:
        self.clients.pop(conn, None)
        if self.sel is not None:
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
        conn.close()

    def _accept(self) -> None:
        for _ in range(MAX_CLIENTS):
            try:
                conn, _ = self.sock.accept()
            except (BlockingIOError, InterruptedError):
                return
            except OSError as e:
                if e.errno in (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM):
                    logger.warning("metrics: cannot accept: %s", e)
                return
            conn.setblocking(False)
            if len(self.clients) >= MAX_CLIENTS:
                self._drop(next(iter(self.clients)))
            self.clients[conn] = bytearray()
            assert self.sel is not None
            self.sel.register(conn, selectors.EVENT_READ, lambda c=conn: self._readable(c))

    def _readable(self, conn: socket.socket) -> None:
        buf = self.clients.get(conn)
        if buf is None:
            return
        try:
            data = conn.recv(4096)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buf += data
        if b"\r\n\r\n" not in buf and b"\n\n" not in buf:
            if len(buf) > MAX_REQUEST:
                self._answer(conn, _response("431 Request Header Fields Too Large", b"", "text/plain"))
            return
        self._answer(conn, self._respond(bytes(buf)))

    def _respond(self, request: bytes) -> bytes:
        line = request.split(b"\n", 1)[0].rstrip(b"\r").split(b" ")
        if len(line) != 3:
            return _response("400 Bad Request", b"bad request\n", "text/plain")
        method, target = line[0], line[1].split(b"?", 1)[0]
        if target != b"/metrics":
            return _response("404 Not Found", b"not found: try /metrics\n", "text/plain",
                             method == b"HEAD")
        if method not in (b"GET", b"HEAD"):
            return _response("405 Method Not Allowed", b"GET or HEAD\n", "text/plain",
                             extra="Allow: GET, HEAD\r\n")
        body = render(self.table.snapshot(), self.table.buckets).encode()
        return _response("200 OK", body, CONTENT_TYPE, method == b"HEAD")

    def _answer(self, conn: socket.socket, data: bytes) -> None:
        # Blocking with a short timeout: a few KiB to a client that just
        # sent its request; a client that does not read loses its answer.
        if self.sel is not None:
            try:
                self.sel.unregister(conn)
            except (KeyError, ValueError):
                pass
        self.clients.pop(conn, None)
        try:
            conn.settimeout(1.0)
            conn.sendall(data)
        except OSError:
            pass
        conn.close()
