"""Soak: 200k requests of mixed kinds against one server; memory and file
descriptors must stay flat.  And 2,000 concurrent keep-alive connections
under load (issue 17; `make bench-c10k` is the 10,000-connection run).

Runs when POUNCE_SOAK=1 (CI sets it: .ci/run), skipped otherwise so that
`make test` stays fast.  POUNCE_SOAK_REQUESTS changes the total.

A few client processes (spawned, so they do not share the test's GIL) loop
over a mix of:
  * keep-alive: sequential GETs on one connection;
  * pipelining: 64 requests written at once, then 64 responses read;
  * streaming: chunked responses of several pieces;
  * uploads: Content-Length and chunked POST bodies, echoed back and checked;
  * disconnects mid-request: half a body then close, and a large response
    abandoned after its first bytes.
The test samples the server's RSS and open descriptors from /proc while
they run and prints the curve.  After warm-up (the first quarter of the
requests) RSS may not grow by more than RSS_GROWTH_BOUND, and once the
clients are gone the descriptor count must return to its starting value.

test_c2k_concurrent_connections holds C2K_CONNECTIONS keep-alive connections
to one worker at once for C2K_SECONDS (two spawned client processes, each a
selectors loop over its half: every connection sends a small POST, reads the
echoed answer whole, and sends the next at once).  No socket error, every
answer 200 with the request's own body, every connection open at the same
time (the server's sockets counted in /proc), RSS after warm-up (the first
quarter) grows by less than C2K_RSS_GROWTH_BOUND, and the descriptors return
to their start once the clients close.  A client that gets no answer within
C2K_REPLY_TIMEOUT counts an error: with `--max-connections 500` the
connections beyond 500 wait in the listen backlog and the test fails so.

RSS and descriptors are summed over the server's process tree, so that a
worker the master forks (rather than runs as a thread) is counted too.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import selectors
import socket
import time
from pathlib import Path

import pytest

APP = "tests.apps.hardening:app"
TOTAL = int(os.environ.get("POUNCE_SOAK_REQUESTS", "200000"))
CLIENTS = 3
RSS_GROWTH_BOUND = 2 << 20  # bytes, after warm-up (measured: under 100 KiB)
TIME_LIMIT = 170.0  # seconds for the whole run

pytestmark = [
    pytest.mark.skipif(os.environ.get("POUNCE_SOAK") != "1",
                       reason="soak runs in CI only (set POUNCE_SOAK=1)"),
    pytest.mark.timeout(TIME_LIMIT + 60),
]

PAGE = os.sysconf("SC_PAGE_SIZE")


def _tree(pid: int) -> list[int]:
    """pid and its descendants (the master and the worker it forked)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                todo += [int(c) for c in Path(f"/proc/{p}/task/{tid}/children").read_text().split()]
        except OSError:
            pass  # it exited
    return out


def _rss(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            total += int(Path(f"/proc/{p}/statm").read_text().split()[1]) * PAGE
        except OSError:
            pass
    return total


def _nfds(pid: int) -> int:
    total = 0
    for p in _tree(pid):
        try:
            total += len(os.listdir(f"/proc/{p}/fd"))
        except OSError:
            pass
    return total


# -- client side (runs in spawned processes) --------------------------------------------


class _Conn:
    """Minimal fast client: the responses of this app are small and known."""

    def __init__(self, port: int):
        self.s = socket.create_connection(("127.0.0.1", port), timeout=10)
        self.s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buf = bytearray()

    def close(self):
        self.s.close()

    def _fill(self):
        data = self.s.recv(262144)
        if not data:
            raise ConnectionError("server closed the connection")
        self.buf += data

    def response(self) -> tuple[int, bytes]:
        while True:
            i = self.buf.find(b"\r\n\r\n")
            if i >= 0:
                break
            self._fill()
        head = bytes(self.buf[:i]).lower()
        del self.buf[:i + 4]
        status = int(head[9:12])
        j = head.find(b"content-length:")
        if j >= 0:
            e = head.find(b"\r\n", j)
            n = int(head[j + 15:e if e >= 0 else len(head)])
            while len(self.buf) < n:
                self._fill()
            body = bytes(self.buf[:n])
            del self.buf[:n]
            return status, body
        # chunked
        body = bytearray()
        while True:
            while (k := self.buf.find(b"\r\n")) < 0:
                self._fill()
            size = int(self.buf[:k], 16)
            del self.buf[:k + 2]
            while len(self.buf) < size + 2:
                self._fill()
            body += self.buf[:size]
            del self.buf[:size + 2]  # data + CRLF (or the final empty line)
            if size == 0:
                return status, bytes(body)


GET = b"GET /k HTTP/1.1\r\nHost: soak\r\n\r\n"


def _round(port: int, r: int) -> int:
    """One round of the mix; returns the number of requests it made."""
    done = 0
    # keep-alive: sequential requests on one connection
    c = _Conn(port)
    for _ in range(30):
        c.s.sendall(GET)
        assert c.response() == (200, b"")
        done += 1
    # pipelining: 2 batches of 64
    for _ in range(2):
        c.s.sendall(GET * 64)
        for _ in range(64):
            assert c.response()[0] == 200
        done += 64
    # uploads, Content-Length (up to 64 KiB) and chunked, echoed
    for k in range(4):
        body = bytes([(r + k) & 0xFF]) * (100 + (r * 7919 + k * 4099) % 65536)
        c.s.sendall(b"POST /up HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n"
                    % len(body) + body)
        assert c.response() == (200, body)
        done += 1
    for _ in range(2):
        c.s.sendall(b"POST /up HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n"
                    b"5\r\nhello\r\n6;x=y\r\n world\r\n0\r\n\r\n")
        assert c.response() == (200, b"hello world")
        done += 1
    # streaming responses
    for _ in range(8):
        c.s.sendall(b"GET /stream?n=6&size=700 HTTP/1.1\r\nHost: soak\r\n\r\n")
        assert c.response() == (200, b"s" * 4200)
        done += 1
    c.close()
    # disconnects mid-request body (the app is waiting in receive())
    for _ in range(2):
        d = _Conn(port)
        d.s.sendall(b"POST /up HTTP/1.1\r\nHost: soak\r\nContent-Length: 5000\r\n\r\n"
                    + b"x" * 700)
        d.close()
        done += 1
    # disconnect mid-response (a large body abandoned after a few bytes)
    d = _Conn(port)
    d.s.sendall(b"GET /big?size=300000 HTTP/1.1\r\nHost: soak\r\n\r\n")
    d.s.recv(100)
    d.close()
    done += 1
    # disconnects in the middle of a head
    for _ in range(2):
        d = _Conn(port)
        d.s.sendall(b"GET /half HTTP/1.1\r\nHost: so")
        d.close()
        done += 1
    return done


# -- the test ------------------------------------------------------------------------------


def _client(port, quota, slot, progress, errors):
    n = r = 0
    try:
        while n < quota:
            n += _round(port, r)
            r += 1
            progress[slot] = n
    except Exception as e:
        errors.put(f"client {slot} after {n} requests: {type(e).__name__}: {e}")


def test_soak_rss_flat_and_no_fd_leak(server_factory):
    # Default deadlines: a connection the client abandons mid-head or
    # mid-body must be closed when its FIN arrives, not at a deadline.
    srv = server_factory(APP, "--no-access-log", timeout=20)
    pid = srv.proc.pid
    # Warm-up outside the measurement: imports, first allocations, caches.
    _round(srv.port, 0)
    time.sleep(0.5)
    fds0 = _nfds(pid)

    ctx = multiprocessing.get_context("spawn")
    progress = ctx.Array("q", CLIENTS)
    errors = ctx.Queue()
    quota = TOTAL // CLIENTS + 1
    procs = [ctx.Process(target=_client, args=(srv.port, quota, i, progress, errors))
             for i in range(CLIENTS)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    curve = []  # (seconds, requests, rss bytes, fds)
    while any(p.is_alive() for p in procs):
        if time.monotonic() - t0 > TIME_LIMIT:
            for p in procs:
                p.kill()
            pytest.fail(f"soak did not finish in {TIME_LIMIT} s: {sum(progress)} requests")
        curve.append((time.monotonic() - t0, sum(progress), _rss(pid), _nfds(pid)))
        time.sleep(0.5)
    for p in procs:
        p.join(5)
    elapsed = time.monotonic() - t0
    total = sum(progress)
    curve.append((elapsed, total, _rss(pid), _nfds(pid)))
    errs = []
    while not errors.empty():
        errs.append(errors.get())

    # Descriptors: back to the start once every client connection is gone.
    deadline = time.monotonic() + 6
    while _nfds(pid) != fds0 and time.monotonic() < deadline:
        time.sleep(0.1)
    fds_end = _nfds(pid)

    print(f"\nsoak: {total} requests from {CLIENTS} processes in {elapsed:.1f} s "
          f"({total / elapsed:.0f} req/s); fds {fds0} -> {fds_end}")
    print("   t(s)  requests   RSS(KiB)  fds")
    step = max(1, len(curve) // 25)
    for t, n, rss, nf in curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else []):
        print(f"  {t:5.1f} {n:9d} {rss >> 10:10d} {nf:4d}")

    assert not errs, errs
    assert total >= TOTAL
    assert srv.proc.poll() is None, "server died"
    warm = [rss for t, n, rss, nf in curve if n >= total // 4]
    growth = max(warm) - warm[0]
    print(f"RSS after warm-up: {warm[0] >> 10} KiB -> max {max(warm) >> 10} KiB "
          f"(growth {growth >> 10} KiB, bound {RSS_GROWTH_BOUND >> 10} KiB)")
    assert growth < RSS_GROWTH_BOUND, growth
    assert fds_end == fds0, (fds0, fds_end)
    # Open descriptors while running: a few connections per client at a
    # time, not an accumulation of abandoned ones.
    peak_fds = max(nf for t, n, rss, nf in curve)
    assert peak_fds < fds0 + 20 * CLIENTS, peak_fds
    with srv.connect() as c:
        assert c.request("GET", "/").status == 200


# -- 2,000 concurrent connections under load ---------------------------------------------

C2K_CONNECTIONS = 2000
C2K_CLIENTS = 2
C2K_SECONDS = 20.0  # of load, once every connection is open
C2K_OPEN_TIMEOUT = 15.0  # seconds for a client to open its connections and get one answer on each
C2K_REPLY_TIMEOUT = 5.0  # an answer slower than this is an error
C2K_TIME_LIMIT = 60.0  # the whole test
C2K_RSS_GROWTH_BOUND = 4 << 20  # bytes after warm-up (measured: 0-1 MiB)
C2K_BODY = 16  # bytes per request body, echoed


def _c2k_client(port, n, slot, seconds, stats, errors):
    """n connections at once; each: POST, read the echo whole, again, until
    the clock says stop.  stats[slot] = [answers, connections that got their
    first answer, max latency in µs]."""
    sel = selectors.DefaultSelector()
    conns = {}
    try:
        for i in range(n):
            s = socket.socket()
            s.setblocking(False)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            s.connect_ex(("127.0.0.1", port))
            body = b"%04d:%05d:......" % (slot, i)
            body = body[:C2K_BODY]
            req = (b"POST /c2k HTTP/1.1\r\nHost: soak\r\nContent-Length: %d\r\n\r\n" % len(body)) + body
            # state: [socket, request, body, buffer, sent-at, answered once]
            conns[s.fileno()] = [s, req, body, bytearray(), 0.0, False]
            sel.register(s, selectors.EVENT_WRITE)
        started = time.monotonic()
        stop_at = None
        answers = opened = 0
        max_lat = 0.0
        next_check = 0.0
        while True:
            now = time.monotonic()
            if stop_at is None and opened == n:
                stop_at = now + seconds
            if stop_at is None and now - started > C2K_OPEN_TIMEOUT:
                raise TimeoutError(f"only {opened} of {n} connections answered within "
                                   f"{C2K_OPEN_TIMEOUT} s")
            if stop_at is not None and now >= stop_at:
                break
            for key, ev in sel.select(0.5):
                st = conns[key.fd]
                s = st[0]
                if ev & selectors.EVENT_WRITE:
                    err = s.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
                    if err:
                        raise OSError(err, f"connect: {os.strerror(err)}")
                    s.send(st[1])  # small: a fresh or idle socket takes it whole
                    st[4] = time.monotonic()
                    sel.modify(s, selectors.EVENT_READ)
                    continue
                data = s.recv(65536)
                if not data:
                    raise ConnectionError(f"connection {key.fd} closed by the server")
                buf = st[3]
                buf += data
                i = buf.find(b"\r\n\r\n")
                if i < 0:
                    continue
                head = bytes(buf[:i]).lower()
                j = head.find(b"content-length:")
                if j < 0:
                    raise AssertionError(f"answer without Content-Length: {head[:200]!r}")
                e = head.find(b"\r\n", j)
                clen = int(head[j + 15:e if e >= 0 else len(head)])
                if len(buf) < i + 4 + clen:
                    continue
                if not head.startswith(b"http/1.1 200 "):
                    raise AssertionError(f"answer {head[:40]!r}")
                got = bytes(buf[i + 4:i + 4 + clen])
                if got != st[2] or len(buf) != i + 4 + clen:
                    raise AssertionError(f"body {got!r} (+{len(buf) - i - 4 - clen} bytes), "
                                         f"want {st[2]!r}")
                buf.clear()
                t = time.monotonic()
                max_lat = max(max_lat, t - st[4])
                answers += 1
                if not st[5]:
                    st[5] = True
                    opened += 1
                s.send(st[1])
                st[4] = t
            now = time.monotonic()
            if now < next_check:
                continue
            next_check = now + 0.5
            # A request without an answer for too long: the server lost it
            # (or never accepted the connection).
            late = [st for st in conns.values() if st[4] and now - st[4] > C2K_REPLY_TIMEOUT]
            if late:
                raise TimeoutError(f"{len(late)} requests unanswered after {C2K_REPLY_TIMEOUT} s "
                                   f"({opened} of {n} connections had answered)")
            stats[slot * 3:slot * 3 + 3] = [answers, opened, int(max_lat * 1e6)]
        stats[slot * 3:slot * 3 + 3] = [answers, opened, int(max_lat * 1e6)]
    except Exception as e:
        errors.put(f"client {slot}: {type(e).__name__}: {e}")
    finally:
        for st in conns.values():
            st[0].close()


def test_c2k_concurrent_connections(server_factory):
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = C2K_CONNECTIONS + 500
    if hard < need:
        pytest.skip(f"ulimit -n hard limit {hard} < {need}")
    # The server and the spawned clients inherit it.
    resource.setrlimit(resource.RLIMIT_NOFILE, (max(soft, need), hard))
    srv = server_factory(APP, "--no-access-log", timeout=20)
    pid = srv.proc.pid
    with srv.connect() as c:
        assert c.request("POST", "/c2k", body=b"warm").status == 200
    time.sleep(0.5)
    fds0 = _nfds(pid)

    ctx = multiprocessing.get_context("spawn")
    stats = ctx.Array("q", 3 * C2K_CLIENTS)
    errors = ctx.Queue()
    per = C2K_CONNECTIONS // C2K_CLIENTS
    procs = [ctx.Process(target=_c2k_client, args=(srv.port, per, i, C2K_SECONDS, stats, errors))
             for i in range(C2K_CLIENTS)]
    t0 = time.monotonic()
    for p in procs:
        p.start()
    curve = []  # (seconds, answers, connections open, rss bytes, fds)
    try:
        while any(p.is_alive() for p in procs):
            if time.monotonic() - t0 > C2K_TIME_LIMIT:
                pytest.fail(f"c2k did not finish in {C2K_TIME_LIMIT} s: {list(stats)}")
            st = list(stats)
            curve.append((time.monotonic() - t0, sum(st[0::3]), sum(st[1::3]), _rss(pid), _nfds(pid)))
            time.sleep(0.5)
    finally:
        for p in procs:
            if p.is_alive():
                p.kill()
            p.join(5)
    elapsed = time.monotonic() - t0
    errs = []
    while not errors.empty():
        errs.append(errors.get())
    st = list(stats)
    answers, opened, max_lat_us = sum(st[0::3]), sum(st[1::3]), max(st[2::3])

    deadline = time.monotonic() + 6
    while _nfds(pid) != fds0 and time.monotonic() < deadline:
        time.sleep(0.1)
    fds_end = _nfds(pid)

    print(f"\nc2k: {C2K_CONNECTIONS} connections, {answers} answers in {elapsed:.1f} s "
          f"({answers / elapsed:.0f} req/s), slowest {max_lat_us / 1000:.0f} ms; fds {fds0} -> "
          f"{fds_end}")
    print("   t(s)   answers  open  RSS(KiB)   fds")
    step = max(1, len(curve) // 25)
    for t, n, o, rss, nf in curve[::step] + ([curve[-1]] if (len(curve) - 1) % step else []):
        print(f"  {t:5.1f} {n:9d} {o:5d} {rss >> 10:9d} {nf:5d}")

    assert not errs, errs
    assert opened == C2K_CONNECTIONS, opened
    assert srv.proc.poll() is None, "server died"
    # Every connection open at the server at once.
    peak_fds = max(nf for *_, nf in curve)
    assert peak_fds >= fds0 + C2K_CONNECTIONS, (fds0, peak_fds)
    # RSS once all are open and the load has run a quarter of its time.
    loaded = [c for c in curve if c[2] == C2K_CONNECTIONS]
    warm = [rss for t, *_, rss, nf in loaded if t >= loaded[0][0] + C2K_SECONDS / 4]
    assert len(warm) >= 10, curve
    growth = max(warm) - warm[0]
    print(f"RSS after warm-up: {warm[0] >> 10} KiB -> max {max(warm) >> 10} KiB "
          f"(growth {growth >> 10} KiB, bound {C2K_RSS_GROWTH_BOUND >> 10} KiB)")
    assert growth < C2K_RSS_GROWTH_BOUND, growth
    assert fds_end == fds0, (fds0, fds_end)
    with srv.connect() as c:
        assert c.request("GET", "/").status == 200
