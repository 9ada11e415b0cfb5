"""Thread-mode stress: 4 worker threads in one process, many client threads.

This is the load `make tsan` (scripts/tsan.sh) runs against a
ThreadSanitizer build of the extension: on a GIL build with several thread
workers the C runtime releases the GIL around epoll waits and socket I/O, so
the workers' network code really runs in parallel, and any memory the
workers share without synchronisation shows up as a TSan report.  The mix
covers every path that touches a connection from more than one place:
keep-alive, pipelining, Content-Length and chunked request bodies,
streaming responses, large responses under backpressure (with
`Accept-Encoding: gzip`, so compression is exercised once it exists),
clients that vanish mid-head, mid-body and mid-response (some with a RST),
HTTP/2 connections multiplexing those requests (with streams reset by the
client), and a graceful SIGTERM drain at the end.

Durations: POUNCE_TSAN=1 (set by scripts/tsan.sh) runs the mix for
POUNCE_STRESS_SECONDS (default 20 s; about 2,500 scenarios, some 10,000
requests, under TSan).
A normal `make test` runs the same mix for 1.5 s, which still checks every
response byte, so the test is meaningful without TSan too.

The server runs the ASGI app defined at the bottom of this module
(`tests.test_tsan_stress:app`), so the routes the test depends on live next
to it.
"""

from __future__ import annotations

import asyncio
import hashlib
import os
import random
import socket
import struct
import threading
import time
import zlib

import pytest

from tests.server import RawConn, build_request
from tests.apps._support import simple_lifespan

APP = "tests.test_tsan_stress:app"
UNDER_TSAN = os.environ.get("POUNCE_TSAN") == "1"
SECONDS = float(os.environ.get("POUNCE_STRESS_SECONDS", "20" if UNDER_TSAN else "1.5"))
# Under TSan every server-side memory access is instrumented; give slow
# answers room before a client calls them failures.
CLIENT_TIMEOUT = 60.0 if UNDER_TSAN else 15.0
WORKERS = 4
CLIENTS = 6

pytestmark = pytest.mark.pounce_only("Pounce's thread worker mode and its extension")

_PATTERN = bytes(range(256)) * 1024  # 256 KiB


def pattern(n: int) -> bytes:
    reps, rest = divmod(n, len(_PATTERN))
    return _PATTERN * reps + _PATTERN[:rest]


def _arg(scope, name: str, default: int) -> int:
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        k, _, v = part.partition("=")
        if k == name:
            return int(v)
    return default


# -- the server side ---------------------------------------------------------------


async def _read_body(receive) -> bytes | None:
    """The whole request body, or None if the client went away first."""
    chunks = []
    while True:
        msg = await receive()
        if msg["type"] == "http.disconnect":
            return None
        chunks.append(msg.get("body", b""))
        if not msg.get("more_body", False):
            return b"".join(chunks)


async def _respond(send, worker: int, body: bytes, extra=()):
    headers = [(b"content-type", b"text/plain"), (b"x-worker", str(worker).encode()), *extra]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def app(scope, receive, send):
    """/ -> "ok"; /echo -> the body and its sha256; /big?n= -> n pattern
    bytes; /stream?n= -> n chunks with a loop turn between them; /wait ->
    reads until the client disconnects and never answers.  Every response
    names its worker in x-worker."""
    if scope["type"] == "lifespan":
        return await simple_lifespan(receive, send)
    worker = scope["extensions"]["pounce.worker"]
    path = scope["path"]
    if path == "/":
        await _respond(send, worker, b"ok")
    elif path == "/echo":
        body = await _read_body(receive)
        if body is not None:
            digest = hashlib.sha256(body).hexdigest().encode()
            await _respond(send, worker, body, [(b"x-sha256", digest)])
    elif path == "/big":
        await _respond(send, worker, pattern(_arg(scope, "n", 100_000)))
    elif path == "/stream":
        n = _arg(scope, "n", 10)
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/plain"),
                                (b"x-worker", str(worker).encode())]})
        for i in range(n):
            await send({"type": "http.response.body", "body": b"chunk %d\n" % i,
                        "more_body": True})
            await asyncio.sleep(0)
        await send({"type": "http.response.body", "body": b""})
    elif path == "/wait":
        while (await receive())["type"] != "http.disconnect":
            pass


# -- the client side ---------------------------------------------------------------


def _stream_body(n: int) -> bytes:
    return b"".join(b"chunk %d\n" % i for i in range(n))


def _decoded(resp) -> bytes:
    enc = (resp.header("content-encoding") or "identity").lower()
    if enc == "gzip":
        return zlib.decompress(resp.body, 16 + zlib.MAX_WBITS)
    assert enc == "identity", f"asked for gzip only, got {enc}"
    return resp.body


def _chunked(body: bytes, rng: random.Random) -> bytes:
    out, i = [], 0
    while i < len(body):
        n = rng.randint(1, 20_000)
        out.append(b"%x\r\n" % len(body[i:i + n]) + body[i:i + n] + b"\r\n")
        i += n
    return b"".join(out) + b"0\r\n\r\n"


class Client:
    """One client thread: picks scenarios at random until the deadline and
    checks every byte that comes back.  Failures are collected, not raised,
    so the main thread can report all of them."""

    def __init__(self, srv, seed: int, deadline: float):
        self.srv = srv
        self.rng = random.Random(seed)
        self.deadline = deadline
        self.counts: dict[str, int] = {}
        self.workers: set[str] = set()
        self.failures: list[str] = []

    def conn(self) -> RawConn:
        return RawConn(self.srv.host, self.srv.port, timeout=CLIENT_TIMEOUT)

    def ok(self, resp, expect: bytes) -> None:
        assert resp.status == 200, (resp.status, resp.body[:200])
        body = _decoded(resp)
        assert body == expect, (len(body), len(expect), body[:80])
        self.workers.add(resp.header("x-worker"))

    # Each scenario opens its own connection(s) and closes them.

    def keep_alive(self):
        with self.conn() as c:
            for _ in range(self.rng.randint(2, 8)):
                self.ok(c.request("GET", "/"), b"ok")

    def pipelined(self):
        reqs, expect = [], []
        for _ in range(self.rng.randint(2, 6)):
            kind = self.rng.choice(["root", "echo", "big", "stream"])
            if kind == "root":
                reqs.append(build_request("GET", "/"))
                expect.append(b"ok")
            elif kind == "echo":
                body = os.urandom(self.rng.randint(1, 4000))
                reqs.append(build_request("POST", "/echo", body=body))
                expect.append(body)
            elif kind == "big":
                n = self.rng.randint(1, 200_000)
                reqs.append(build_request("GET", f"/big?n={n}"))
                expect.append(pattern(n))
            else:
                n = self.rng.randint(1, 20)
                reqs.append(build_request("GET", f"/stream?n={n}"))
                expect.append(_stream_body(n))
        with self.conn() as c:
            c.send(b"".join(reqs))
            for e in expect:
                self.ok(c.read_response(), e)

    def bodies(self):
        with self.conn() as c:
            for _ in range(self.rng.randint(1, 3)):
                body = os.urandom(self.rng.choice([0, 1, 1000, 70_000, 300_000]))
                if self.rng.random() < 0.5:
                    resp = c.request("POST", "/echo", body=body)
                else:
                    c.send(build_request("POST", "/echo", [("Transfer-Encoding", "chunked")])
                           + _chunked(body, self.rng))
                    resp = c.read_response()
                self.ok(resp, body)
                assert resp.header("x-sha256") == hashlib.sha256(body).hexdigest()

    def streaming(self):
        with self.conn() as c:
            n = self.rng.randint(1, 200)
            resp = c.request("GET", f"/stream?n={n}")
            assert resp.chunked
            self.ok(resp, _stream_body(n))

    def big_gzip(self):
        with self.conn() as c:
            n = self.rng.choice([10_000, 600_000, 2_000_000])
            self.ok(c.request("GET", f"/big?n={n}", [("Accept-Encoding", "gzip")]), pattern(n))

    def disconnect(self):
        """Go away at a random point; with a RST half of the time."""
        c = self.conn()
        how = self.rng.choice(["head", "body", "response", "wait", "stream"])
        if how == "head":
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Le")
        elif how == "body":
            c.send(build_request("POST", "/echo", [("Content-Length", "500000")])
                   + os.urandom(self.rng.randint(0, 100_000)))
        elif how == "response":
            c.send(build_request("GET", "/big?n=4000000"))
            c.read_until(b"\r\n\r\n")
        elif how == "wait":
            c.send(build_request("GET", "/wait"))
        else:
            c.send(build_request("GET", "/stream?n=5000"))
            c.read_until(b"\r\n\r\n")
        time.sleep(self.rng.random() * 0.01)
        if self.rng.random() < 0.5:
            # SO_LINGER 0: close() sends a RST instead of a FIN.
            c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        c.close()

    def http2(self):
        """One HTTP/2 connection (prior knowledge) carrying several streams
        at once: GETs, echoed bodies, big and streamed responses, and now
        and then a stream the client resets while its app waits."""
        import h2.config
        import h2.connection
        import h2.events

        sock = socket.create_connection((self.srv.host, self.srv.port), timeout=CLIENT_TIMEOUT)
        try:
            h = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
            h.initiate_connection()
            expect: dict[int, bytes] = {}
            got: dict[int, bytearray] = {}
            sid = 1
            sent = 0  # body bytes: within the initial 65,535-byte windows, unread
            for _ in range(self.rng.randint(1, 12)):
                kind = self.rng.choice(["root", "echo", "big", "stream", "reset"])
                hdrs = [(":scheme", "http"), (":authority", "x")]
                if kind == "root":
                    h.send_headers(sid, [(":method", "GET"), (":path", "/"), *hdrs], end_stream=True)
                    expect[sid] = b"ok"
                elif kind == "echo":
                    n = self.rng.choice([1, 3000, 16_384])
                    n = n if sent + n <= 60_000 else 1
                    sent += n
                    body = os.urandom(n)
                    h.send_headers(sid, [(":method", "POST"), (":path", "/echo"), *hdrs])
                    h.send_data(sid, body, end_stream=True)
                    expect[sid] = body
                elif kind == "big":
                    n = self.rng.randint(1, 300_000)
                    h.send_headers(sid, [(":method", "GET"), (":path", f"/big?n={n}"), *hdrs],
                                   end_stream=True)
                    expect[sid] = pattern(n)
                elif kind == "stream":
                    n = self.rng.randint(1, 50)
                    h.send_headers(sid, [(":method", "GET"), (":path", f"/stream?n={n}"), *hdrs],
                                   end_stream=True)
                    expect[sid] = _stream_body(n)
                else:
                    h.send_headers(sid, [(":method", "GET"), (":path", "/wait"), *hdrs],
                                   end_stream=True)
                    sock.sendall(h.data_to_send())
                    h.reset_stream(sid)
                got[sid] = bytearray()
                sid += 2
            sock.sendall(h.data_to_send())
            ended: set[int] = set()
            while not set(expect) <= ended:
                data = sock.recv(65536)
                assert data, "the server closed the HTTP/2 connection"
                for e in h.receive_data(data):
                    if isinstance(e, h2.events.DataReceived):
                        got[e.stream_id] += e.data
                        h.acknowledge_received_data(e.flow_controlled_length, e.stream_id)
                    elif isinstance(e, h2.events.StreamEnded):
                        ended.add(e.stream_id)
                    elif isinstance(e, h2.events.StreamReset) and e.stream_id in expect:
                        raise AssertionError(f"stream {e.stream_id} reset: {e.error_code}")
                sock.sendall(h.data_to_send())
            for k, body in expect.items():
                assert bytes(got[k]) == body, (k, len(got[k]), len(body))
            h.close_connection()
            sock.sendall(h.data_to_send())
        finally:
            sock.close()

    def run(self) -> None:
        scenarios = [self.keep_alive, self.pipelined, self.bodies, self.streaming,
                     self.big_gzip, self.disconnect, self.http2]
        while time.monotonic() < self.deadline and len(self.failures) < 5:
            s = self.rng.choice(scenarios)
            try:
                s()
                self.counts[s.__name__] = self.counts.get(s.__name__, 0) + 1
            except Exception as e:  # noqa: BLE001 - every failure is reported
                self.failures.append(f"{s.__name__}: {type(e).__name__}: {e}"[:500])


# One shared listening socket with the default loop (uvloop where installed),
# and one SO_REUSEPORT socket per worker with the stdlib asyncio loop, whose
# cross-thread wakeups take another path.
@pytest.mark.parametrize(
    "extra", [(), ("--reuse-port", "--loop", "asyncio")], ids=["shared", "reuse-port-asyncio"]
)
def test_thread_workers_under_mixed_load(server_factory, extra):
    srv = server_factory(APP, "--workers", str(WORKERS), "--worker-mode", "thread", *extra,
                         timeout=60 if UNDER_TSAN else 10)
    assert f"{WORKERS} workers, thread mode" in srv.log_text()
    deadline = time.monotonic() + SECONDS
    clients = [Client(srv, seed, deadline) for seed in range(CLIENTS)]
    threads = [threading.Thread(target=c.run, daemon=True) for c in clients]
    for t in threads:
        t.start()
    for t in threads:
        t.join(SECONDS + 3 * CLIENT_TIMEOUT)
    assert not any(t.is_alive() for t in threads), "a client thread hung"

    failures = [f for c in clients for f in c.failures]
    assert failures == [], failures[:10]
    counts: dict[str, int] = {}
    for c in clients:
        for k, v in c.counts.items():
            counts[k] = counts.get(k, 0) + v
    # Every kind of traffic really happened (six clients pick at random).
    assert set(counts) == {"keep_alive", "pipelined", "bodies", "streaming", "big_gzip",
                           "disconnect", "http2"}, counts
    # The load reached more than one worker thread, so they did overlap.
    workers = set().union(*(c.workers for c in clients))
    print(f"stress {SECONDS:.1f}s: {counts}, workers seen {sorted(workers)}")
    assert len(workers) >= 2, workers

    # The server is still healthy after all the abandoned connections, then
    # drains and exits cleanly with idle keep-alive connections open.
    idle = [RawConn(srv.host, srv.port, timeout=CLIENT_TIMEOUT) for _ in range(8)]
    for c in idle:
        assert c.request("GET", "/").body == b"ok"
    assert srv.stop(timeout=60 if UNDER_TSAN else 15) == 0
    for c in idle:
        c.close()
    assert "Traceback" not in srv.log_text(), srv.log_text()[-3000:]
