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


@pytest.mark.parametrize("workers", [2, 4])
@pytest.mark.parametrize("mode", MODES)
def test_a_burst_of_connections_is_shared_fairly(server_factory, mode, workers):
    """The issue's criterion: 20 bursts of 64 connections, no worker above
    1.5 times the mean in at least 19 of them.  (Without the balance table,
    on this 2-CPU machine: 16/20 with 2 processes, 13/20 with 4, 11/20 with
    4 threads; docs/workers.md has the numbers.)"""
    srv = server_factory(APP, "--workers", str(workers), "--worker-mode", mode, "--no-access-log")
    splits = trials(srv, workers)
    unfair = [s for s in splits if not fair(Counter(dict(enumerate(s))), workers, 64)]
    assert len(unfair) <= 1, f"unfair bursts: {unfair} (all: {splits})"
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", MODES)
def test_a_blocked_worker_does_not_stall_new_connections(server_factory, record_dir, mode):
    """One worker's event loop is blocked by its request handler: it holds
    fewer connections than the other, which would stand aside for it, but
    takes none.  The other must serve every new connection anyway, without
    waiting for the blocked one."""
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode, "--no-access-log")
    token = uuid.uuid4().hex
    blocker = RawConn(srv.host, srv.port, timeout=10)
    try:
        blocker.send(build_request("GET", f"/block?token={token}"))
        blocked = started_on(record_dir, token)
        t0 = time.monotonic()
        split = burst(srv.host, srv.port, 24, timeout=5.0)
        took = time.monotonic() - t0
        release(record_dir, token)
        assert blocker.read_response().status == 200
    finally:
        release(record_dir, token)
        blocker.close()
    assert split == Counter({1 - blocked: 24}), split
    # One connection per wait (PN_BALANCE_WAIT_MS, 3 ms): about 0.1 s; a stall: 5 s.
    assert took < 2.0, f"24 connections took {took:.2f} s with worker {blocked} blocked"
    assert srv.stop() == 0


# -- the table and a bare Worker, without a server ---------------------------------


def test_the_table_gives_each_live_worker_its_own_cleared_slot():
    from pounce import _pounce

    table = _pounce.BalanceTable(4)
    assert table.slots == 4
    assert [table.assign([]), table.assign([0]), table.assign([0, 1, 3])] == [0, 1, 2]
    assert table.assign(range(4)) == -1
    assert table.get(2) == (False, 0, 0)
    with pytest.raises(IndexError):
        table.get(4)
    with pytest.raises(ValueError):
        _pounce.BalanceTable(0)


def _bare_worker(table=None, slot=-1):
    import asyncio

    import pounce
    from pounce import _pounce

    async def app(scope, receive, send):  # never called: no request is sent
        raise AssertionError("no request expected")

    loop = asyncio.new_event_loop()
    lsock = socket.create_server(("127.0.0.1", 0), backlog=64)
    lsock.setblocking(False)
    addr = lsock.getsockname()
    worker = _pounce.Worker(pounce.Config(), app, loop, [(lsock.fileno(), addr, False)],
                            shared_listeners=True, balance=table, balance_slot=slot)
    return loop, lsock, addr, worker


def _readable(fd: int, timeout: float) -> bool:
    sel = selectors.DefaultSelector()
    try:
        sel.register(fd, selectors.EVENT_READ)
        return bool(sel.select(timeout))
    finally:
        sel.close()


def test_a_worker_publishes_its_connections_and_clears_its_slot_when_it_drains():
    from pounce import _pounce

    table = _pounce.BalanceTable(4)
    slot = table.assign([0])
    loop, lsock, addr, worker = _bare_worker(table, slot)
    conns = []
    try:
        assert table.get(slot) == (True, 0, 0)
        conns = [socket.create_connection(addr, timeout=5) for _ in range(2)]
        for _ in range(50):
            if worker.connections == 2:
                break
            _readable(worker.fileno(), 0.1)
            worker.poll()
        assert table.get(slot) == (True, 2, 2)
        worker.drain()
        assert table.get(slot)[:2] == (False, 0)
    finally:
        worker.close()
        for c in conns:
            c.close()
        lsock.close()
        loop.close()


@pytest.mark.parametrize("balanced", [False, True], ids=["plain", "balanced"])
def test_a_listener_shut_down_under_a_worker_is_dropped_without_spinning(balanced):
    """A draining server shuts its listening sockets down (SHUT_RD) so new
    connections are refused at once, while workers still poll them: accept()
    then fails with EINVAL on a socket that stays readable.  The worker must
    drop it from its epoll set, not wake up for it again and again."""
    from pounce import _pounce

    table = _pounce.BalanceTable(2) if balanced else None
    loop, lsock, addr, worker = _bare_worker(table, 0 if balanced else -1)
    try:
        lsock.shutdown(socket.SHUT_RD)
        assert _readable(lsock.fileno(), 0)
        assert _readable(worker.fileno(), 1.0)
        worker.poll()
        assert not _readable(worker.fileno(), 0.1)
        with pytest.raises(ConnectionRefusedError):
            socket.create_connection(addr, timeout=5)
        if balanced:
            assert table.get(0)[0] is False  # accepts nothing any more
    finally:
        worker.close()
        lsock.close()
        loop.close()
