"""Hostile HTTP/2 clients against the real server (issue 15, "Defences").

Each test drives raw frames (tests/h2client.py: hyperframe + hpack, what the
h2 package will not send) at one attack or malformation from the spec and
checks three things:

  (a) what the server answers: the connection goes on and serves a normal
      request afterwards, or it is closed with the expected GOAWAY code;
  (b) the server's CPU time and memory stay bounded: utime+stime from
      /proc/PID/stat, VmRSS and VmHWM (the peak) from /proc/PID/status,
      summed over the server's process tree, before and after;
  (c) a fresh connection is still served (h2_get, the h2 package's own
      state machine).

What each attack gets, and why, is docs/http2-policy.md; it is written from
what these tests observe. Every loop is bounded in count and time, every
wait has a timeout, everything targets 127.0.0.1.
"""

from __future__ import annotations

import os
import socket
import time
import uuid
from pathlib import Path

import pytest

from tests.h2client import (
    SETTINGS_INITIAL_WINDOW_SIZE,
    H2Raw,
    h2_get,
    request_headers,
)
from tests.server import RawConn, read_record, wait_record
from tests.test_hostile import server_pids

APP = "tests.apps.h2_defences:app"
pytestmark = pytest.mark.pounce_only("HTTP/2 is Pounce's (the uvicorn of the suite has none)")

TICKS = os.sysconf("SC_CLK_TCK")
MiB = 1 << 20

#: The module server's options: short deadlines so the timeout cases take a
#: second, a small header limit so the header cases need small blocks.
REQUEST_TIMEOUT = 1.0
HEADER_TIMEOUT = 1.0
MAX_HEADER_SIZE = 8192
WRITE_BUFFER = 65536

#: How much the server may grow (peak RSS over its whole tree) or burn (CPU
#: seconds) during one attack. An attack that got through would cost far
#: more: the flows below are sized so an unbounded server buffers 64 MiB or
#: more, or spins for as long as the attack lasts.
RSS_SLACK = 24 * MiB
ASAN = os.environ.get("POUNCE_ASAN") == "1"
CPU_LIMIT = 4.0





def usage(srv) -> dict:
    """CPU seconds (utime+stime), VmRSS and VmHWM in bytes, summed over the
    server's processes."""
    cpu = rss = hwm = 0
    for p in server_pids(srv.proc.pid):
        try:
            stat = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            status = Path(f"/proc/{p}/status").read_text()
        except OSError:
            continue
        cpu += int(stat[11]) + int(stat[12])
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                rss += int(line.split()[1]) * 1024
            elif line.startswith("VmHWM:"):
                hwm += int(line.split()[1]) * 1024
    return {"cpu": cpu / TICKS, "rss": rss, "hwm": hwm}


def assert_bounded(srv, before: dict, what: str) -> dict:
    """(b): the attack cost at most CPU_LIMIT seconds and RSS_SLACK of peak
    memory. Returns the deltas (the tests print them with -s)."""
    after = usage(srv)
    d = {k: after[k] - before[k] for k in after}
    print(f"{what}: cpu {d['cpu']:.2f}s rss {d['rss'] / MiB:+.1f} MiB "
          f"peak {d['hwm'] / MiB:+.1f} MiB")
    # Under `make asan` every instruction costs several and RSS is mostly
    # ASan's quarantine of freed memory (256 MiB by default) and shadow: the
    # CPU bound is widened, the memory bounds are left to the plain runs.
    assert d["cpu"] < CPU_LIMIT * (3 if ASAN else 1), (
        f"{what}: the server burnt {d['cpu']:.2f}s of CPU")
    if not ASAN:
        assert d["hwm"] < RSS_SLACK, (
            f"{what}: the server's peak RSS grew {d['hwm'] / MiB:.1f} MiB")
        assert d["rss"] < RSS_SLACK, f"{what}: the server's RSS grew {d['rss'] / MiB:.1f} MiB"
    return d


def assert_fresh_served(srv) -> None:
    """(c): a new connection still gets its answer."""
    assert h2_get(srv, "/") == (200, b"ok")


def assert_conn_serves(c: H2Raw, sid: int) -> None:
    """(a), the surviving side: this connection still answers GET /."""
    status, body = c.get(sid, "/")
    assert (status, body) == (200, b"ok"), (status, body, c.resets.get(sid), c.goaway)


def token() -> str:
    return uuid.uuid4().hex


@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(
        APP, "--request-timeout", str(REQUEST_TIMEOUT), "--header-timeout", str(HEADER_TIMEOUT),
        "--max-header-size", str(MAX_HEADER_SIZE), "--write-buffer-size", str(WRITE_BUFFER),
        "--no-access-log")


def connect(srv) -> H2Raw:
    """A connection with the preface and empty SETTINGS sent."""
    c = H2Raw.connect(srv)
    c.preface()
    return c


# -- rapid reset (CVE-2023-44487) -----------------------------------------------------


def test_rapid_reset_ends_in_goaway(srv, record_dir):
    """HEADERS + RST_STREAM in a loop: nghttp2's reset rate limit (burst
    1000, then 33/s) ends the connection with GOAWAY; the streams reset in
    the same read never reach the app, so the server's work stays small."""
    t = token()
    before = usage(srv)
    c = connect(srv)
    hs = request_headers(f"/echo?token={t}")
    sid, pairs, deadline = 1, 0, time.monotonic() + 6
    while pairs < 6000 and time.monotonic() < deadline and c.goaway is None and not c.closed:
        batch = []
        for _ in range(100):
            batch += [c.headers(sid, hs, end_stream=True), c.rst(sid)]
            sid += 2
        try:
            c.send(*batch)
        except OSError:
            break
        pairs += 100
        c.drain()
    c.read_until(lambda c: c.goaway is not None or c.closed, 5)
    print(f"rapid reset: {pairs} pairs sent, GOAWAY {c.goaway_name()} "
          f"last-stream {c.goaway and c.goaway[1]}")
    assert c.goaway is not None, f"no GOAWAY after {pairs} HEADERS+RST_STREAM pairs"
    assert c.goaway_name() in ("ENHANCE_YOUR_CALM", "INTERNAL_ERROR"), c.goaway
    assert c.goaway[1] >= 1999, "GOAWAY before the burst of 1000 resets was spent"
    assert c.wait_closed(5), "the server kept the connection open after its GOAWAY"
    c.close()
    # Each pair goes out in one write, so nearly all arrive in one read:
    # those streams never reach the app (a pair cut by a segment may).
    # The app records one line at least ("body 0", or "disconnect") per call.
    called = sum(1 for line in read_record(record_dir, t) if not line.startswith("complete"))
    print(f"rapid reset: {called} of {pairs} streams reached the app")
    assert called < pairs // 20, f"{called} of {pairs} reset streams reached the app"
    assert_bounded(srv, before, "rapid reset")
    assert_fresh_served(srv)


# -- CONTINUATION flood (CVE-2024-27316) ---------------------------------------------


@pytest.mark.parametrize("kind", ["empty", "full"])
def test_continuation_flood_is_cut(srv, kind):
    """HEADERS without END_HEADERS, then CONTINUATIONs without end: the
    ninth CONTINUATION of one block (nghttp2's max_continuations, 8) ends
    the connection. Observed: closed without a GOAWAY (nghttp2 fails the
    session without queueing one). "empty" frames grow nothing, only their
    count can stop them; "full" ones carry 16 KB of literal fields each."""
    before = usage(srv)
    c = connect(srv)
    c.send(c.headers(1, request_headers("/", extra=[("x-a", "a")]), end_headers=False))
    if kind == "empty":
        frame = c.continuation(1, b"")
    else:
        # Four 4 KB literal fields never indexed (RFC 7541 §6.2.3): whole
        # fields per frame, so the block stays valid HPACK however long.
        field = b"\x10\x05x-pad" + _hpack_int(4000, 7) + b"p" * 4000
        frame = c.continuation(1, field * 4)
    sent, deadline = 0, time.monotonic() + 4
    try:
        while sent < 10000 and time.monotonic() < deadline and not c.closed:
            c.send(frame * 5)
            sent += 5
            c.drain()
    except OSError:
        pass
    c.read_until(lambda c: c.closed, 5)
    print(f"continuation flood ({kind}): {sent} frames sent, GOAWAY {c.goaway_name()}, "
          f"closed {c.closed}")
    assert c.closed, f"still open after {sent} CONTINUATION frames"
    assert sent <= 100, f"the server read {sent} CONTINUATION frames of one block"
    if c.goaway is not None:
        assert c.goaway_name() in ("PROTOCOL_ERROR", "ENHANCE_YOUR_CALM", "COMPRESSION_ERROR",
                                   "INTERNAL_ERROR"), c.goaway
    assert 1 not in c.heads, "the flooded stream got an answer"
    c.close()
    assert_bounded(srv, before, f"continuation flood {kind}")
    assert_fresh_served(srv)


def test_eight_continuations_are_a_request(srv):
    """The limit's other side: a block split over HEADERS and 8
    CONTINUATIONs is an ordinary request."""
    c = connect(srv)
    block = c.encode(request_headers("/"))
    frames = c.headers(1, block=block[:2], end_stream=True, end_headers=False)
    rest = [block[2:]] + [b""] * 7
    for i, part in enumerate(rest):
        frames += c.continuation(1, part, end_headers=i == len(rest) - 1)
    c.send(frames)
    c.read_until(c.done(1), 5)
    assert (c.status(1), c.body(1)) == (200, b"ok"), (c.resets, c.goaway, c.closed)
    c.close()


# -- HPACK bomb (RFC 7541 §4.2/§7.3) ------------------------------------------------------


def hpack_bomb_block(refs: int, value_len: int = 4000) -> bytes:
    """A header block: the request's pseudo-headers (static-table indexes,
    :authority a literal never added to the table), one literal field with
    incremental indexing (a ~4 KiB value entering the dynamic table as index
    62), then `refs` one-byte indexed references to it. ~refs bytes on the
    wire, refs * (value_len + 38) bytes decoded (RFC 7541 §4.1 sizes)."""
    from tests.server import TLS

    authority = b"127.0.0.1"
    pseudo = bytes([0x82, 0x87 if TLS else 0x86, 0x84])  # GET, https/http, /
    pseudo += bytes([0x01, len(authority)]) + authority  # literal w/o indexing, name 1
    name = b"x-bomb"
    lit = bytes([0x40, len(name)]) + name + _hpack_int(value_len, 7) + b"a" * value_len
    return pseudo + lit + bytes([0x80 | 62]) * refs


def _hpack_int(n: int, prefix: int) -> bytes:
    """An HPACK integer (RFC 7541 §5.1) with an empty first-byte prefix."""
    limit = (1 << prefix) - 1
    if n < limit:
        return bytes([n])
    out, n = [limit], n - limit
    while n >= 128:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def test_hpack_bomb_is_bounded(srv):
    """A 12 KB block decoding to ~48 MB of fields (one 4 KB value in the
    dynamic table, 12000 references to it): refused on the stream (431 or
    RST_STREAM) or the connection closed with GOAWAY, and the server never
    holds the decoded list. Repeated on 8 streams: an unbounded decoder
    would need ~384 MB."""
    before = usage(srv)
    c = connect(srv)
    block = hpack_bomb_block(12000)
    assert len(block) < 16384  # one HEADERS frame, the server's MAX_FRAME_SIZE
    outcomes = []
    for sid in range(1, 17, 2):
        # Each block adds the same 4 KB entry again, evicting the last one;
        # nothing this connection's encoder made is in the table, so it and
        # the server's decoder stay in step for the GET below.
        c.send(c.headers(sid, block=block, end_stream=True))
        c.read_until(c.done(sid), 5)
        outcomes.append(c.status(sid) or c.reset_name(sid) or c.goaway_name()
                        or ("closed" if c.closed else None))
        if c.goaway is not None or c.closed:
            break
    print(f"hpack bomb: {outcomes}")
    # Memory first: the decoded lists (~48 MB each) must never be held.
    assert_bounded(srv, before, "hpack bomb")
    for o in outcomes:
        assert o in (431, "PROTOCOL_ERROR", "REFUSED_STREAM", "INTERNAL_ERROR",
                     "COMPRESSION_ERROR", "ENHANCE_YOUR_CALM"), outcomes
    if c.goaway is None and not c.closed:
        # The connection survived: its HPACK state is still in step.
        assert_conn_serves(c, 101)
    c.close()
    assert_fresh_served(srv)


# -- SETTINGS and PING floods from a client that does not read ------------------------


class Flood:
    """Send `frame` over and over without reading (a 4 KiB receive buffer,
    so the server's ACKs back up at once) for `seconds`, at most
    `max_frames`. outcome: "closed" (a send failed: the server closed),
    "throttled" (the last send made no progress for 0.5 s: the server
    stopped reading) or "accepted" (everything went out and still does).
    A send cut mid-frame keeps the rest in `pending`; finish() sends it
    (reading meanwhile) so the connection's framing stays whole."""

    def __init__(self, srv, frame: bytes, seconds: float = 3.0, max_frames: int = 2_000_000):
        self.c = H2Raw.connect(srv, rcvbuf=4096)
        self.c.preface()
        self.pending = b""
        self.outcome, sent = "accepted", 0
        batch = frame * 500
        deadline = time.monotonic() + seconds
        self.c.sock.settimeout(0.5)
        while time.monotonic() < deadline and (self.pending or sent < max_frames * len(frame)):
            if not self.pending:
                self.pending = batch
            try:
                n = self.c.sock.send(self.pending)
            except (socket.timeout, TimeoutError, *ssl_want_errors()):
                self.outcome = "throttled"  # and go on: does the server close?
                continue
            except OSError:
                self.outcome = "closed"
                break
            self.outcome = "accepted"
            sent += n
            self.pending = self.pending[n:]
        self.frames = sent // len(frame)

    def finish(self, timeout: float = 5.0) -> None:
        """Send what is pending; raises OSError if the server closed."""
        deadline = time.monotonic() + timeout
        while self.pending and time.monotonic() < deadline and not self.c.closed:
            self.c.drain(0.05)
            self.c.sock.settimeout(0.2)
            try:
                self.pending = self.pending[self.c.sock.send(self.pending):]
            except (socket.timeout, TimeoutError, *ssl_want_errors()):
                pass
        if self.c.closed:
            raise ConnectionResetError("the server closed")
        assert not self.pending, "the server never took the rest of the flood"


def ssl_want_errors():
    import ssl

    return (ssl.SSLWantWriteError, ssl.SSLWantReadError)


@pytest.mark.parametrize("what", ["PING", "SETTINGS"])
def test_ack_flood_from_a_non_reader(srv, what):
    """PINGs or SETTINGS (each owes an ACK) from a client that never reads:
    at most 1000 ACKs wait (nghttp2's max_outbound_ack; beyond it the
    connection is closed, observed without a GOAWAY, though one would be
    accepted), or the server stops reading and TCP throttles the client.
    Either way the server's memory stays flat. Observed: SETTINGS (9 bytes,
    ~1800 in one 16 KiB read) closed at once, PINGs throttled."""
    before = usage(srv)
    frame = H2Raw.ping(b"flooding") if what == "PING" else H2Raw.settings({})
    f = Flood(srv, frame)
    c, sent, outcome = f.c, f.frames, f.outcome
    # Now read what the server sent: the ACKs, and maybe a GOAWAY.
    c.read_until(lambda c: c.closed or c.goaway is not None, 2)
    acks = c.ping_acks if what == "PING" else c.settings_acks
    print(f"{what} flood: {sent} frames sent, outcome {outcome}, {acks} acks read, "
          f"GOAWAY {c.goaway_name()}, closed {c.closed}")
    assert outcome in ("closed", "throttled") or c.goaway is not None or c.closed, (
        f"{sent} {what} frames accepted in full and the connection still open")
    if c.goaway is not None:
        assert c.goaway_name() == "ENHANCE_YOUR_CALM", c.goaway
    if not c.closed and c.goaway is None:
        # Throttled but alive. Once the client reads again the server takes
        # the rest of the flood; this client reads slower than the server
        # answers, so the ACKs queue past 1000 and the server may close it
        # then (observed after 1-7 s of reading). Or the connection serves.
        try:
            f.finish()
            status, body = c.get(1, "/")
        except OSError:
            status, body = None, b""
        print(f"{what} flood, after reading: GET {status}, closed {c.closed}")
        assert (status, body) == (200, b"ok") or c.closed, (status, c.goaway)
    c.close()
    assert_bounded(srv, before, f"{what} flood")
    assert_fresh_served(srv)


# -- a zero-window reader ------------------------------------------------------------


def test_zero_window_reader(srv, record_dir):
    """SETTINGS_INITIAL_WINDOW_SIZE 0: the server may send no DATA. The app
    sends 64 MiB; send() waits once --write-buffer-size is held, the stream
    is reset (RST_STREAM CANCEL) after --request-timeout, the server's
    memory never holds the body, and the connection goes on."""
    t = token()
    before = usage(srv)
    c = H2Raw.connect(srv, auto_window=False)
    c.preface({SETTINGS_INITIAL_WINDOW_SIZE: 0})
    start = time.monotonic()
    c.request(1, f"/big?size={64 * MiB}&chunk={256 * 1024}&token={t}")
    c.read_until(lambda c: 1 in c.resets or c.closed, REQUEST_TIMEOUT + 4)
    took = time.monotonic() - start
    print(f"zero window: status {c.status(1)}, {len(c.body(1))} body bytes, "
          f"reset {c.reset_name(1)} after {took:.2f}s")
    assert c.status(1) == 200  # the head needs no window
    assert c.body(1) == b""
    assert c.reset_name(1) == "CANCEL", (c.resets, c.goaway)
    assert REQUEST_TIMEOUT * 0.8 <= took <= REQUEST_TIMEOUT + 3, took
    # The app's later sends are discarded: it finishes (no error) promptly.
    wait_record(record_dir, t, "sent", timeout=5)
    d = assert_bounded(srv, before, "zero window")
    assert ASAN or d["hwm"] < 16 * MiB  # (ASan: see assert_bounded)
    # The connection goes on; this stream needs a window to get its body.
    c.send(c.window_update(0, 1 << 20), c.settings({SETTINGS_INITIAL_WINDOW_SIZE: 65535}))
    c.auto_window = True
    assert_conn_serves(c, 3)
    c.close()
    assert_fresh_served(srv)


def test_zero_window_reader_finished_response(srv, record_dir):
    """The app's whole (small) response is queued and the app is done, but
    the window stays 0: the stream is reset (RST_STREAM CANCEL) after
    --request-timeout instead of holding its queue forever."""
    t = token()
    c = H2Raw.connect(srv, auto_window=False)
    c.preface({SETTINGS_INITIAL_WINDOW_SIZE: 0})
    start = time.monotonic()
    c.request(1, f"/big?size=1000&chunk=1000&token={t}")
    wait_record(record_dir, t, "sent", timeout=5)
    c.read_until(lambda c: 1 in c.resets or c.closed, REQUEST_TIMEOUT + 4)
    took = time.monotonic() - start
    print(f"zero window, finished response: reset {c.reset_name(1)} after {took:.2f}s")
    assert c.status(1) == 200 and c.body(1) == b""
    assert c.reset_name(1) == "CANCEL", (c.resets, c.goaway, c.closed)
    assert REQUEST_TIMEOUT * 0.8 <= took <= REQUEST_TIMEOUT + 3, took
    assert not c.closed
    c.close()
    assert_fresh_served(srv)


# -- empty frames (CVE-2019-9518) ------------------------------------------------------


def test_empty_data_flood(srv):
    """100000 empty DATA frames on one request stream: nothing to buffer,
    little to do; the stream ends by itself at the latest after
    --request-timeout (its app waits for a body that never comes), the
    connection goes on."""
    before = usage(srv)
    c = connect(srv)
    c.send(c.headers(1, request_headers("/echo", "POST")))
    frames = c.data_frame(1, b"") * 1000
    sent = 0
    while sent < 100_000 and not c.closed:
        c.send(frames)
        sent += 1000
        c.drain()
    print(f"empty DATA: {sent} sent, stream 1 reset {c.reset_name(1)}, GOAWAY {c.goaway_name()}")
    if c.goaway is not None:
        # nghttp2 >= 1.65 (Debian sid) counts empty frames as "glitches" and
        # ends a connection that sends too many: that is a defence too.
        assert c.goaway_name() == "ENHANCE_YOUR_CALM", c.goaway
    else:
        # nghttp2 1.52 (Debian 12) lets them through at no cost.
        assert not c.closed
        assert_conn_serves(c, 3)
    c.close()
    assert_bounded(srv, before, "empty DATA flood")
    assert_fresh_served(srv)


# -- more streams than MAX_CONCURRENT_STREAMS (RFC 9113 §5.1.2) ---------------------------


@pytest.fixture(scope="module")
def srv4(module_server_factory):
    return module_server_factory(APP, "--h2-max-concurrent-streams", "4", "--no-access-log")


def open_four(c: H2Raw, record_dir) -> list[str]:
    """Four requests that wait in the app for 1.5 s (or the disconnect)."""
    toks = [token() for _ in range(4)]
    for i, t in enumerate(toks):
        c.request(1 + 2 * i, f"/wait?s=1.5&token={t}")
    for t in toks:
        wait_record(record_dir, t, "start", timeout=5)
    return toks


def test_streams_beyond_max_concurrent_before_ack_are_refused(srv4, record_dir):
    """While the client has not acknowledged the server's SETTINGS, a
    stream beyond MAX_CONCURRENT_STREAMS (4) is refused with RST_STREAM
    REFUSED_STREAM (safe to retry); the four finish and the connection goes
    on serving."""
    before = usage(srv4)
    c = H2Raw.connect(srv4)
    c.ack_settings = False
    c.preface()
    assert c.server_settings.get(3) == 4, c.server_settings  # MAX_CONCURRENT_STREAMS
    open_four(c, record_dir)
    extra = token()
    c.request(9, f"/wait?s=0.1&token={extra}")
    c.request(11, "/")
    c.read_until(lambda c: 9 in c.resets and 11 in c.resets, 3)
    print(f"max concurrent, not acked: stream 9 {c.reset_name(9)}, 11 {c.reset_name(11)}")
    assert c.reset_name(9) == "REFUSED_STREAM", (c.resets, c.goaway)
    assert c.reset_name(11) == "REFUSED_STREAM", (c.resets, c.goaway)
    assert read_record(record_dir, extra) == [], "a refused stream reached the app"
    c.read_until(lambda c: all(sid in c.ended for sid in (1, 3, 5, 7)), 5)
    assert [c.status(sid) for sid in (1, 3, 5, 7)] == [200] * 4
    assert c.goaway is None
    assert_conn_serves(c, 13)
    c.close()
    assert_bounded(srv4, before, "max concurrent streams, not acked")
    assert_fresh_served(srv4)


def test_streams_beyond_acked_max_concurrent_end_the_connection(srv4, record_dir):
    """Once the client has acknowledged MAX_CONCURRENT_STREAMS (4), a fifth
    stream is a connection error for nghttp2: GOAWAY PROTOCOL_ERROR (last
    stream 7) and close; the four streams in flight end with it and their
    apps' receive() returns http.disconnect. (RFC 9113 §5.1.2 asks for a
    stream error; nghttp2 makes it a connection error: see
    docs/http2-policy.md.)"""
    before = usage(srv4)
    c = connect(srv4)
    toks = open_four(c, record_dir)
    extra = token()
    c.request(9, f"/wait?s=0.1&token={extra}")
    c.read_until(lambda c: c.closed, 5)
    print(f"max concurrent, acked: stream 9 {c.reset_name(9)}, GOAWAY {c.goaway}, "
          f"in flight {[c.status(s) for s in (1, 3, 5, 7)]}")
    assert c.goaway_name() == "PROTOCOL_ERROR", (c.goaway, c.resets)
    assert c.goaway[1] == 7
    assert c.closed
    assert read_record(record_dir, extra) == [], "the excess stream reached the app"
    for t in toks:
        wait_record(record_dir, t, "disconnect", timeout=3)
    c.close()
    assert_bounded(srv4, before, "max concurrent streams, acked")
    assert_fresh_served(srv4)


# -- DATA past content-length ----------------------------------------------------------


def test_data_past_content_length(srv, record_dir):
    """content-length 10, then 5 bytes (the app reads them), then 10 more:
    RST_STREAM PROTOCOL_ERROR, the app's receive() returns http.disconnect,
    the connection goes on."""
    t = token()
    rec = record_dir
    before = usage(srv)
    c = connect(srv)
    hs = request_headers(f"/echo?token={t}", "POST", extra=[("content-length", "10")])
    c.send(c.headers(1, hs), c.data_frame(1, b"12345"))
    wait_record(rec, t, "body 5")
    c.send(c.data_frame(1, b"6789012345", end_stream=True))
    c.read_until(c.done(1), 5)
    assert c.reset_name(1) == "PROTOCOL_ERROR", (c.resets, c.heads.get(1), c.goaway)
    assert c.status(1) is None
    lines = wait_record(rec, t, "disconnect")
    print(f"DATA past content-length: app saw {lines}")
    assert "complete" not in lines
    assert c.goaway is None
    assert_conn_serves(c, 3)
    c.close()
    assert_bounded(srv, before, "data past content-length")
    assert_fresh_served(srv)


# -- malformed requests (RFC 9113 §8.1.1, §8.2.2) -------------------------------------------


MALFORMED = {
    "missing-path": [h for h in request_headers("/") if h[0] != ":path"],
    "uppercase-name": request_headers("/", extra=[("X-Upper", "1")]),
    "connection-field": request_headers("/", extra=[("connection", "keep-alive")]),
    "te-gzip": request_headers("/", extra=[("te", "gzip")]),
}


@pytest.mark.parametrize("case", sorted(MALFORMED))
def test_malformed_request_is_reset(srv, case):
    """A malformed request: RST_STREAM PROTOCOL_ERROR on its stream, the app
    is not called, the connection (and its HPACK state) goes on."""
    before = usage(srv)
    c = connect(srv)
    c.send(c.headers(1, MALFORMED[case], end_stream=True))
    c.read_until(c.done(1), 5)
    print(f"malformed {case}: status {c.status(1)} reset {c.reset_name(1)} "
          f"GOAWAY {c.goaway_name()}")
    assert c.reset_name(1) == "PROTOCOL_ERROR", (c.resets, c.heads.get(1), c.goaway)
    assert c.status(1) is None
    assert c.goaway is None
    assert_conn_serves(c, 3)
    c.close()
    assert_bounded(srv, before, f"malformed {case}")
    assert_fresh_served(srv)


# -- a header list over --max-header-size ----------------------------------------------


def test_header_list_too_large_gets_431(srv, record_dir):
    """Header fields worth 16 KiB (RFC 7541 sizes) against
    --max-header-size 8192: 431 on that stream, the app not called, the
    connection goes on."""
    t = token()
    rec = record_dir
    before = usage(srv)
    c = connect(srv)
    extra = [(f"x-big-{i}", "v" * 1000) for i in range(16)]
    c.send(c.headers(1, request_headers(f"/echo?token={t}", extra=extra), end_stream=True))
    c.read_until(c.done(1), 5)
    print(f"large header list: status {c.status(1)} reset {c.reset_name(1)}")
    assert c.status(1) == 431, (c.heads.get(1), c.resets, c.goaway)
    assert read_record(rec, t) == []
    assert c.goaway is None
    assert_conn_serves(c, 3)
    c.close()
    assert_bounded(srv, before, "large header list")
    assert_fresh_served(srv)


# -- the preface ----------------------------------------------------------------------------


@pytest.mark.parametrize("case", ["before-settings", "after-settings"])
def test_garbage_after_preface_is_goaway_protocol_error(srv, case):
    """The preface, then bytes that are no valid frame where one must be:
    GOAWAY PROTOCOL_ERROR and close."""
    c = H2Raw.connect(srv)
    if case == "before-settings":
        # The first frame must be SETTINGS (RFC 9113 §3.4); an HTTP/1.1
        # request is not.
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n", b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    else:
        # DATA on stream 0 (RFC 9113 §6.1): a connection error.
        c.preface()
        c.send(b"\x00\x00\x08\x00\x00\x00\x00\x00\x00" + b"garbage!")
    c.read_until(lambda c: c.closed, 5)
    print(f"garbage {case}: GOAWAY {c.goaway_name()} closed {c.closed}")
    assert c.goaway_name() == "PROTOCOL_ERROR", (c.goaway, c.frames[:5])
    assert c.closed
    c.close()
    assert_fresh_served(srv)


def test_bad_preface_is_closed(srv):
    """"PRI * HTTP/2.0\\r\\n\\r\\n" followed by anything but "SM\\r\\n\\r\\n":
    not HTTP/2, and no HTTP/1.1 request the server would serve: the
    connection is closed (an HTTP/1.1 error answer first at most)."""
    with RawConn(srv.host, srv.port) as r:
        r.send(b"PRI * HTTP/2.0\r\n\r\nXX\r\n\r\n")
        r.sock.settimeout(5)
        got = r.read_to_eof()
    print(f"bad preface: {got[:60]!r}")
    assert not got.startswith(b"HTTP/1.1 2"), got[:200]
    assert got == b"" or got.startswith(b"HTTP/1.1 4") or got.startswith(b"HTTP/1.1 5"), got[:200]
    assert_fresh_served(srv)


@pytest.mark.parametrize("sent", [b"", b"PRI * HTTP/2.0\r\n"])
def test_preface_deadline(srv, sent):
    """No preface (or half of one) within --header-timeout: closed."""
    c = H2Raw.connect(srv)
    start = time.monotonic()
    if sent:
        c.send(sent)
    closed = c.wait_closed(HEADER_TIMEOUT + 4)
    took = time.monotonic() - start
    print(f"preface deadline ({sent!r}): closed {closed} after {took:.2f}s, "
          f"{c.bytes_read} bytes")
    assert closed
    assert HEADER_TIMEOUT * 0.8 <= took <= HEADER_TIMEOUT + 3, took
    c.close()
    assert_fresh_served(srv)
