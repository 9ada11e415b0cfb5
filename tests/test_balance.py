"""Balanced accept (issue 12, item 7), through the real server.

Workers that share one listening socket should each end up with a fair
share of a burst of new connections: 64 keep-alive connections opened as
fast as one client thread can, one request each; the worker that served
each is read from the answer (``scope["extensions"]["pounce.worker"]``).
The issue's criterion: no worker above 1.5 times the mean in at least 19 of
20 trials, in thread and in process mode.

And balancing must never stall the server: a worker whose event loop is
blocked takes no connection, so the others must take them all, however
many they already hold.
"""

from __future__ import annotations

import json
import selectors
import socket
import time
import uuid
from collections import Counter

import pytest

from tests.server import RawConn, build_request
from tests.test_workers import release, started_on

APP = "tests.apps.workers:app"
MODES = ["thread", "process"]
pytestmark = pytest.mark.pounce_only("Pounce's accept balancing")

REQUEST = b"GET / HTTP/1.1\r\nHost: burst\r\n\r\n"


def _response_done(data: bytes) -> bool:
    head, sep, body = data.partition(b"\r\n\r\n")
    if not sep:
        return False
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            return len(body) >= int(value)
    return False


def burst(host: str, port: int, n: int = 64, timeout: float = 10.0) -> Counter:
    """Open `n` connections at once (non-blocking connects, then one request
    on each as soon as it is connected), read one answer on each, then close
    them all.  Returns {worker id: connections it served}."""
    sel = selectors.DefaultSelector()
    socks = []
    bufs: dict[socket.socket, bytearray] = {}
    workers: Counter = Counter()
    try:
        for _ in range(n):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect_ex((host, port))
            socks.append(s)
            bufs[s] = bytearray()
            sel.register(s, selectors.EVENT_WRITE)
        deadline = time.monotonic() + timeout
        left = n
        while left:
            wait = deadline - time.monotonic()
            if wait <= 0:
                raise AssertionError(f"burst: {left} of {n} connections got no answer in {timeout} s")
            for key, events in sel.select(wait):
                s = key.fileobj
                if events & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise AssertionError(f"burst: connect failed: {err}")
                    s.send(REQUEST)
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                data = s.recv(65536)
                if not data:
                    raise AssertionError("burst: the server closed a connection")
                bufs[s] += data
                if _response_done(bytes(bufs[s])):
                    body = bytes(bufs[s]).partition(b"\r\n\r\n")[2]
                    workers[json.loads(body)["worker"]] += 1
                    sel.unregister(s)
                    left -= 1
    finally:
        sel.close()
        for s in socks:
            s.close()
    return workers


def fair(split: Counter, workers: int, n: int) -> bool:
    """The issue's criterion: no worker above 1.5 times the mean."""
    return max(split.values(), default=0) <= 1.5 * n / workers


def trials(srv, workers: int, count: int = 20, n: int = 64) -> list[list[int]]:
    """`count` bursts; each burst's connections per worker (worker 0 first)."""
    out = []
    for _ in range(count):
        split = burst(srv.host, srv.port, n)
        out.append([split.get(w, 0) for w in range(workers)])
        time.sleep(0.05)  # let the workers see the closes before the next burst
    return out
