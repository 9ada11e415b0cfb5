"""Soak: 200k requests of mixed kinds against one server; memory and file
descriptors must stay flat.

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
"""

from __future__ import annotations

import multiprocessing
import os
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


def _rss(pid: int) -> int:
    return int(Path(f"/proc/{pid}/statm").read_text().split()[1]) * PAGE


def _nfds(pid: int) -> int:
    return len(os.listdir(f"/proc/{pid}/fd"))


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
