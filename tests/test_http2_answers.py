"""The worker's own answers over HTTP/2 (issue 15): --health-path, --static
files, --limit-concurrency's 503 and the --request-id header behave on an
HTTP/2 stream as over HTTP/1.1 (tests/test_health.py, test_static.py,
test_shedding.py, test_request_id.py say how that is).

The worker decides such an answer once (pn_worker.c's answer_decide,
pn_static_answer) and writes it through the stream's ops
(pn_worker_answer_stream), never calling the app: the app
(tests/apps/shed.py) counts its calls, so "without the app" is checked.

Clients: httpx with http2=True and http1=False (HTTP/2 with prior
knowledge; every test checks the response really was HTTP/2), curl
--http2-prior-knowledge, and raw frames from the h2 package where a test
needs two streams on one connection at a precise moment.  Under
POUNCE_TEST_TLS=1 the same clients speak h2 through ALPN.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import shutil
import signal
import socket
import subprocess
import threading
import time
import urllib.request

import h2.config
import h2.connection
import h2.events
import httpx
import pytest
from hpack import Decoder, Encoder
from hyperframe.frame import (ContinuationFrame, DataFrame, Frame, GoAwayFrame, HeadersFrame,
                              RstStreamFrame, SettingsFrame)

from tests.server import SERVER_KIND, TLS, tls_client_context

pytestmark = pytest.mark.skipif(SERVER_KIND != "pounce", reason="pounce's own options")

APP = "tests.apps.shed:app"
CURL = shutil.which("curl")
CACHE_CONTROL = "public, max-age=60"


def _pattern(n: int, seed: int) -> bytes:
    block = bytes((i * 7 + seed) % 251 for i in range(251))
    return (block * (n // 251 + 1))[:n]


HELLO = b"hello over h2\n"
BIG = _pattern(3 << 20, 2)  # past the 16 KiB the cache keeps: sendfile, many DATA frames
MID = _pattern(40 << 10, 3)  # sent from its file too, within one --write-buffer-size
JS = b"console.log('identity variant');\n" * 8
JS_GZ = gzip.compress(JS, mtime=0)


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    d = tmp_path_factory.mktemp("h2-static")
    (d / "hello.txt").write_bytes(HELLO)
    (d / "big.bin").write_bytes(BIG)
    (d / "mid.bin").write_bytes(MID)
    (d / "app.js").write_bytes(JS)
    (d / "app.js.gz").write_bytes(JS_GZ)
    return d


@pytest.fixture(scope="module")
def srv(module_server_factory, site):
    """One worker: health, a static mount, the request ID, and a concurrency
    limit of 1 (static answers and health checks are never shed)."""
    return module_server_factory(
        APP, "--workers", "1", "--health-path", "/healthz", "--static", f"/static={site}",
        "--static-cache-control", CACHE_CONTROL, "--request-id", "--limit-concurrency", "1")


def client(timeout: float = 10) -> httpx.Client:
    # http1=False: HTTP/2 with prior knowledge over cleartext, h2 by ALPN over TLS.
    return httpx.Client(http1=False, http2=True, timeout=timeout)


def h2get(srv, path: str, method: str = "GET", headers=None, timeout: float = 10) -> httpx.Response:
    with client(timeout) as c:
        r = c.request(method, srv.url + path, headers=headers)
    assert r.http_version == "HTTP/2", r.http_version
    return r


def count(srv) -> int:
    return int(h2get(srv, "/count").text)


class H2Conn:
    """Raw HTTP/2 with the h2 package: a client connection whose frames the
    test sends when it chooses."""

    def __init__(self, srv, connect_only: bool = False):
        self.sock = socket.create_connection((srv.host, srv.port), timeout=10)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if TLS:
            ctx = tls_client_context()
            ctx.set_alpn_protocols(["h2"])
            self.sock = ctx.wrap_socket(self.sock, server_hostname=srv.host)
        self.authority = f"{srv.host}:{srv.port}"
        self.conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        self.streams: dict[int, dict] = {}
        self.terminated = None
        self.started = False
        if not connect_only:
            self.start()

    def start(self, flush: bool = True) -> None:
        self.conn.initiate_connection()
        self.started = True
        if flush:
            self.flush()

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def send_request(self, method: str, path: str, flush: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        scheme = "https" if TLS else "http"
        self.conn.send_headers(sid, [(":method", method), (":path", path), (":scheme", scheme),
                                     (":authority", self.authority)], end_stream=True)
        self.streams[sid] = {"headers": None, "body": b"", "ended": False, "reset": None}
        if flush:
            self.flush()
        return sid

    def _pump(self) -> bool:
        try:
            data = self.sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            return False
        for ev in self.conn.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", 0))
            if isinstance(ev, h2.events.ResponseReceived) and st is not None:
                st["headers"] = [(k.decode(), v.decode()) for k, v in ev.headers]
            elif isinstance(ev, h2.events.DataReceived) and st is not None:
                st["body"] += ev.data
                self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded) and st is not None:
                st["ended"] = True
            elif isinstance(ev, h2.events.StreamReset) and st is not None:
                st["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.terminated = ev
        self.flush()
        return True

    def response(self, sid: int, timeout: float = 10.0) -> dict:
        """Wait for stream sid to end: {"status", "headers" (dict), "body"}."""
        st = self.streams[sid]
        deadline = time.monotonic() + timeout
        while not st["ended"] and st["reset"] is None:
            assert time.monotonic() < deadline, f"stream {sid} unanswered: {st}"
            if not self._pump():
                raise AssertionError(f"connection closed, stream {sid}: {st}, {self.terminated}")
        assert st["reset"] is None, f"stream {sid} reset: {st['reset']}"
        headers = dict(st["headers"])
        return {"status": int(headers[":status"]), "headers": headers, "body": st["body"]}

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass


# -- --health-path -----------------------------------------------------------


def test_health_200_head_and_405_without_the_app(srv):
    before = count(srv)
    with client() as c:
        for _ in range(3):  # several streams of one connection
            r = c.get(srv.url + "/healthz")
            assert r.http_version == "HTTP/2"
            assert (r.status_code, r.content) == (200, b"ok\n")
            assert r.headers["cache-control"] == "no-store"
            assert r.headers["content-type"] == "text/plain; charset=utf-8"
            assert r.headers["content-length"] == "3"
            assert r.headers["x-request-id"]
            assert r.headers["date"] and r.headers["server"]
        r = c.head(srv.url + "/healthz")
        assert (r.status_code, r.content, r.headers["content-length"]) == (200, b"", "3")
        r = c.get(srv.url + "/healthz?verbose=1")  # the query is ignored
        assert (r.status_code, r.content) == (200, b"ok\n")
        r = c.post(srv.url + "/healthz", content=b"x" * 100)
        assert (r.status_code, r.content) == (405, b"Method Not Allowed\n")
        assert r.headers["allow"] == "GET, HEAD"
        r = c.get(srv.url + "/healthz")  # the connection goes on after the 405
        assert r.status_code == 200
        r = c.get(srv.url + "/healthz/")  # not the health path: the app's
        assert (r.status_code, r.content) == (200, b"hello")
    assert count(srv) == before + 1
    # Health checks write no access line, over HTTP/2 either.
    srv.wait_log(r'"GET /healthz/ HTTP/2\.0" 200', timeout=5)
    assert '"GET /healthz HTTP/2' not in srv.log_text()
    assert '"HEAD /healthz HTTP/2' not in srv.log_text()


def test_health_head_with_curl(srv):
    assert CURL, "curl is missing: make deps installs it"
    p = subprocess.run([CURL, "-sS", "--http2-prior-knowledge" if not TLS else "--http2", "-I",
                        "--max-time", "10", srv.url + "/healthz"], capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    head = p.stdout.decode().lower()
    assert head.startswith("http/2 200"), head
    assert "content-length: 3" in head and "cache-control: no-store" in head


PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + SettingsFrame(0).serialize()


def _raw_socket(srv) -> socket.socket:
    sock = socket.create_connection((srv.host, srv.port), timeout=10)
    if TLS:
        ctx = tls_client_context()
        ctx.set_alpn_protocols(["h2"])
        sock = ctx.wrap_socket(sock, server_hostname=srv.host)
    return sock


def _headers_frames(srv, path: str, split: bool = False):
    """GET path on stream 1 as bytes; split: (HEADERS without END_HEADERS,
    the CONTINUATION that ends the block)."""
    block = Encoder().encode([(":method", "GET"), (":scheme", "https" if TLS else "http"),
                              (":authority", f"{srv.host}:{srv.port}"), (":path", path)])
    if not split:
        return HeadersFrame(1, data=block, flags=["END_STREAM", "END_HEADERS"]).serialize()
    return (HeadersFrame(1, data=block[:5], flags=["END_STREAM"]).serialize(),
            ContinuationFrame(1, data=block[5:], flags=["END_HEADERS"]).serialize())


def _frames(sock, decoder, until_stream_end: int, timeout: float = 10.0):
    """Read frames until stream `until_stream_end` ends (or the connection
    does): [(frame, decoded headers or None)]."""
    buf, out = b"", []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        while len(buf) >= 9:
            f, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            f.parse_body(memoryview(buf[9:9 + length]))
            buf = buf[9 + length:]
            hdrs = None
            if isinstance(f, (HeadersFrame, ContinuationFrame)):
                hdrs = [(k.decode() if isinstance(k, bytes) else k,
                         v.decode() if isinstance(v, bytes) else v) for k, v in decoder.decode(f.data)]
            out.append((f, hdrs))
            if f.stream_id == until_stream_end and ("END_STREAM" in f.flags
                                                    or isinstance(f, RstStreamFrame)):
                return out
        try:
            data = sock.recv(65536)
        except (ConnectionResetError, socket.timeout):
            data = b""
        if not data:
            return out
        buf += data
    return out


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_health_says_503_during_a_shutdown_drain(server_factory, mode):
    """A drain answers new streams with GOAWAY, so a health check that
    reaches the worker during a shutdown drain is one whose stream began
    before it: HEADERS without END_HEADERS before SIGTERM (the stream is
    then one the server processed, below the GOAWAY's last stream ID), its
    CONTINUATION after.  It gets 503 "draining", as over HTTP/1.1."""
    s = server_factory(APP, "--workers", "1", "--worker-mode", mode, "--health-path", "/healthz",
                       "--shutdown-timeout", "10")
    busy, sock = _raw_socket(s), _raw_socket(s)
    try:
        # (Raw frames for the busy stream too: the h2 package refuses frames
        # that follow a GOAWAY, even on a stream below its last stream ID.)
        busy.sendall(PREFACE + _headers_frames(s, "/slow?s=2"))  # keeps the drain going
        first, rest = _headers_frames(s, "/healthz", split=True)
        sock.sendall(PREFACE + first)
        time.sleep(0.3)
        s.proc.send_signal(signal.SIGTERM)
        s.wait_log(r"SIGTERM received: shutting down", timeout=5)
        time.sleep(0.5)  # the order reaches the worker
        sock.sendall(rest)
        got = _frames(sock, Decoder(), 1)
        goaway = [f for f, _ in got if isinstance(f, GoAwayFrame)]
        assert goaway and goaway[0].last_stream_id == 1, got  # the drain, stream 1 included
        heads = [h for f, h in got if f.stream_id == 1 and h]
        body = b"".join(f.data for f, _ in got if f.stream_id == 1 and isinstance(f, DataFrame))
        assert heads, got
        fields = dict(heads[0])
        assert (fields[":status"], body) == ("503", b"draining\n"), got
        assert fields["cache-control"] == "no-store"
        assert "retry-after" not in fields  # the drain's 503 is not a shed
        slow = [h for f, h in _frames(busy, Decoder(), 1) if f.stream_id == 1 and h]
        assert slow and dict(slow[0])[":status"] == "200"  # the stream in flight completes
    finally:
        busy.close()
        sock.close()
    assert s.wait(15) == 0


# -- --limit-concurrency ------------------------------------------------------


def test_limit_concurrency_503_on_a_second_stream(srv):
    before = count(srv)
    c = H2Conn(srv)
    try:
        slow = c.send_request("GET", "/slow?s=1")
        time.sleep(0.3)  # the app runs: the worker's one slot is taken
        t0 = time.monotonic()
        shed = c.send_request("GET", "/")
        r = c.response(shed)
        assert time.monotonic() - t0 < 0.7  # at once, not after the slow one
        assert (r["status"], r["body"]) == (503, b"Service Unavailable\n")
        assert r["headers"]["retry-after"] == "1"
        assert r["headers"]["x-request-id"]
        head = c.send_request("HEAD", "/")
        r = c.response(head)
        assert (r["status"], r["body"], r["headers"]["content-length"]) == (503, b"", "20")
        # Health and static answers are never shed.
        assert c.response(c.send_request("GET", "/healthz"))["status"] == 200
        assert c.response(c.send_request("GET", "/static/hello.txt"))["status"] == 200
        r = c.response(slow)  # the stream in flight is unharmed
        assert (r["status"], r["body"]) == (200, b"done")
    finally:
        c.close()
    assert count(srv) == before + 1  # only the slow request ran the app
    srv.wait_log(r'"GET / HTTP/2\.0" 503', timeout=5)


# -- --static ------------------------------------------------------------------


def test_static_200_with_validators_and_request_id(srv, site):
    before = count(srv)
    r = h2get(srv, "/static/hello.txt")
    assert (r.status_code, r.content) == (200, HELLO)
    st = (site / "hello.txt").stat()
    assert r.headers["etag"] == f'"{st.st_mtime_ns:x}-{st.st_size:x}"'
    assert r.headers["content-length"] == str(len(HELLO))
    assert r.headers["content-type"] == "text/plain; charset=utf-8"
    assert r.headers["accept-ranges"] == "bytes"
    assert r.headers["cache-control"] == CACHE_CONTROL
    assert r.headers["last-modified"] and r.headers["date"] and r.headers["server"]
    rid = r.headers["x-request-id"]
    assert len(rid) >= 16
    # An ID the client sent is kept (--request-id), on the static answer too.
    r = h2get(srv, "/static/hello.txt", headers={"x-request-id": "my-trace-id-42"})
    assert r.headers["x-request-id"] == "my-trace-id-42"
    r = h2get(srv, "/static/hello.txt", "HEAD")
    assert (r.status_code, r.content) == (200, b"")
    assert r.headers["content-length"] == str(len(HELLO)) and r.headers["etag"]
    assert count(srv) == before
    srv.wait_log(r'"GET /static/hello\.txt HTTP/2\.0" 200 ' + str(len(HELLO)), timeout=5)
    srv.wait_log(r'"HEAD /static/hello\.txt HTTP/2\.0" 200 0', timeout=5)


def test_static_304_on_if_none_match(srv):
    etag = h2get(srv, "/static/hello.txt").headers["etag"]
    r = h2get(srv, "/static/hello.txt", headers={"if-none-match": etag})
    assert (r.status_code, r.content) == (304, b"")
    assert r.headers["etag"] == etag
    assert "content-length" not in r.headers
    assert r.headers["x-request-id"]
    # curl, the other client, asks the same.
    p = subprocess.run([CURL, "-sS", "--http2-prior-knowledge" if not TLS else "--http2",
                        "-D", "-", "-o", "/dev/null", "-H", f"If-None-Match: {etag}",
                        "--max-time", "10", srv.url + "/static/hello.txt"],
                       capture_output=True, timeout=20)
    assert p.returncode == 0, p.stderr
    assert p.stdout.decode().lower().startswith("http/2 304"), p.stdout


@pytest.mark.parametrize("path,data", [("/static/hello.txt", HELLO), ("/static/mid.bin", MID),
                                       ("/static/big.bin", BIG)],
                         ids=["cached", "sendfile", "large"])
def test_static_range_206(srv, path, data):
    lo, hi = 3, 9 if len(data) < 100 else len(data) - 5
    r = h2get(srv, path, headers={"range": f"bytes={lo}-{hi}"}, timeout=4)
    assert r.status_code == 206
    assert r.content == data[lo:hi + 1]
    assert r.headers["content-range"] == f"bytes {lo}-{hi}/{len(data)}"
    assert r.headers["content-length"] == str(hi - lo + 1)
    r = h2get(srv, path, headers={"range": f"bytes={len(data)}-"})
    assert (r.status_code, r.headers["content-range"]) == (416, f"bytes */{len(data)}")
    assert r.content == b"Range Not Satisfiable\n"


def test_static_precompressed_sibling(srv):
    with client() as c:
        with c.stream("GET", srv.url + "/static/app.js",
                      headers={"accept-encoding": "gzip"}) as r:
            assert r.http_version == "HTTP/2"
            raw = b"".join(r.iter_raw())
        assert r.status_code == 200
        assert r.headers["content-encoding"] == "gzip"
        assert r.headers["vary"] == "Accept-Encoding"
        assert r.headers["content-type"].startswith("text/javascript") or \
            r.headers["content-type"].startswith("application/javascript")
        assert raw == JS_GZ
        r = c.get(srv.url + "/static/app.js", headers={"accept-encoding": "identity"})
        assert r.content == JS and "content-encoding" not in r.headers
        assert r.headers["vary"] == "Accept-Encoding"


def test_static_large_file_intact(srv):
    with client(timeout=4) as c:  # 3 MiB over loopback: milliseconds
        for _ in range(2):  # twice on one connection: the stream after it still works
            r = c.get(srv.url + "/static/big.bin")
            assert r.http_version == "HTTP/2"
            assert r.status_code == 200
            assert r.headers["content-length"] == str(len(BIG))
            assert hashlib.sha256(r.content).digest() == hashlib.sha256(BIG).digest()


def test_static_concurrent_streams(srv):
    """Several static answers in flight on one connection, two from their
    files among them (one past --write-buffer-size): each arrives whole."""
    c = H2Conn(srv)
    try:
        # One write: the answers are made in one read of the socket.
        sids = [c.send_request("GET", p, flush=False)
                for p in ("/static/mid.bin", "/static/hello.txt", "/static/app.js",
                          "/static/nope.txt", "/healthz", "/static/big.bin")]
        c.flush()
        got = [c.response(s, timeout=20) for s in sids]
    finally:
        c.close()
    assert [g["status"] for g in got] == [200, 200, 200, 404, 200, 200]
    assert got[0]["body"] == MID and got[1]["body"] == HELLO and got[2]["body"] == JS
    assert got[5]["body"] == BIG
    assert got[3]["body"] == b"Not Found\n"


def test_static_404_and_what_falls_through_to_the_app(srv):
    before = count(srv)
    r = h2get(srv, "/static/missing.txt")  # the mount owns its URL space
    assert (r.status_code, r.content) == (404, b"Not Found\n")
    assert r.headers["x-request-id"]
    r = h2get(srv, "/static/hello.txt", "POST")
    assert (r.status_code, r.headers["allow"]) == (405, "GET, HEAD")
    r = h2get(srv, "/static")  # the mount's root without '/'
    assert (r.status_code, r.headers["location"]) == (301, "/static/")
    assert count(srv) == before
    r = h2get(srv, "/staticky/hello.txt")  # outside every mount: the app's
    assert (r.status_code, r.content) == (200, b"hello")
    r = h2get(srv, "/other")
    assert (r.status_code, r.content) == (200, b"hello")
    assert count(srv) == before + 2
    srv.wait_log(r'"GET /static/missing\.txt HTTP/2\.0" 404', timeout=5)


def test_http1_answers_unchanged_beside_http2(srv):
    """The same server answers HTTP/1.1 as before while HTTP/2 streams are
    answered: one decision, two emitters."""
    with httpx.Client(http1=True, http2=False, timeout=10) as c:
        r = c.get(srv.url + "/static/hello.txt")
        assert r.http_version == "HTTP/1.1" and r.content == HELLO
        r1 = c.get(srv.url + "/healthz")
    r2 = h2get(srv, "/static/hello.txt")
    skip = {"date", "x-request-id"}
    assert {k: v for k, v in r.headers.items() if k not in skip} == \
        {k: v for k, v in r2.headers.items() if k not in skip}
    assert (r1.status_code, r1.content) == (200, b"ok\n")


def test_threads_share_nothing(srv):
    """Many HTTP/2 clients at once asking for answers of every kind: all
    answered, the server still serving after (bounded: 8 x 20 requests)."""
    errors: list = []

    def one() -> None:
        try:
            with client() as c:
                for i in range(20):
                    path = ("/static/hello.txt", "/healthz", "/static/app.js")[i % 3]
                    r = c.get(srv.url + path)
                    assert r.status_code == 200 and r.http_version == "HTTP/2", (path, r)
        except Exception as e:  # noqa: BLE001
            errors.append(e)

    ts = [threading.Thread(target=one) for _ in range(8)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(30)
    assert not errors, errors[:3]
    assert h2get(srv, "/healthz").status_code == 200


def test_answers_are_counted_in_metrics(server_factory, site):
    """--metrics-port: the stream's answers count as the server's own
    responses (pounce_server_responses_total), never as app requests."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        mport = s.getsockname()[1]
    srv = server_factory(APP, "--workers", "1", "--health-path", "/healthz",
                         "--static", f"/static={site}", "--metrics-port", str(mport))
    with client() as c:
        for path in ("/healthz", "/healthz", "/static/hello.txt", "/static/missing.txt"):
            assert c.get(srv.url + path).http_version == "HTTP/2"
        assert c.post(srv.url + "/healthz").status_code == 405

    def scrape() -> dict:
        with urllib.request.urlopen(f"http://127.0.0.1:{mport}/metrics", timeout=5) as r:
            text = r.read().decode()
        out: dict = {}
        for line in text.splitlines():
            m = re.match(r'pounce_server_responses_total\{status_class="(\dxx)"[^}]*\} (\S+)', line)
            if m:
                out[m.group(1)] = out.get(m.group(1), 0) + float(m.group(2))
            if line.startswith("pounce_requests_total{"):
                out["app"] = out.get("app", 0) + float(line.rsplit(" ", 1)[1])
        return out

    deadline = time.monotonic() + 5
    while (got := scrape()) != {"2xx": 3, "4xx": 2} and time.monotonic() < deadline:
        time.sleep(0.1)
    assert got == {"2xx": 3, "4xx": 2}, got
