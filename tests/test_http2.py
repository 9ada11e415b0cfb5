"""HTTP/2 (issue 15) through the real server, with real clients.

Clients: curl (--http2-prior-knowledge over cleartext, --http2 with ALPN
over TLS, --cacert the test CA), httpx with http2=True, h2load, and raw
frames with the h2 package (tests the other clients cannot express: a
stream whose reader holds back its window, RST_STREAM from the client,
GOAWAY on drain).  Apps: tests/apps/h2_app.py (raw ASGI, on top of
tests/apps/asgi_http.py) and tests/apps/h2_frameworks.py (Starlette and
FastAPI, unchanged).

Most tests run twice, over h2c (cleartext, prior knowledge) and over TLS
(ALPN h2): the module starts one server of each and serves both, so this
file runs TLS itself and is not in the Makefile's TLS_TEST_FILES (under
POUNCE_TEST_TLS=1 it is skipped).  Every server listens on 127.0.0.1,
every wait is bounded.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import re
import signal
import socket
import ssl
import subprocess
import time
import uuid
import zlib
from urllib.parse import quote

import h2.config
import h2.connection
import h2.errors
import h2.events
import httpx
import pytest
import zstandard
from hyperframe.frame import DataFrame, Frame, GoAwayFrame

from tests.apps.asgi_http import pattern
from tests.h2client import H2Raw
from tests.server import TLS, RawConn, build_request, wait_record
from tests.tls_certs import tool_env

pytestmark = [
    pytest.mark.pounce_only("HTTP/2 is Pounce's own transport (uvicorn has none)"),
    pytest.mark.skipif(TLS, reason="runs its cleartext and TLS servers itself "
                       "(not one of the Makefile's TLS_TEST_FILES)"),
]

APP = "tests.apps.h2_app:app"
MODES = ["h2c", "tls"]
CONNECTION_SPECIFIC = {"connection", "keep-alive", "proxy-connection", "transfer-encoding",
                       "upgrade"}


# ---- servers and clients ----------------------------------------------------------


def tls_args(certs) -> tuple[str, ...]:
    return ("--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key))


class Target:
    """One server and how each client reaches it over HTTP/2."""

    def __init__(self, mode: str, srv, certs):
        self.mode, self.srv, self.certs = mode, srv, certs
        self.tls = mode == "tls"
        self.url = f"{'https' if self.tls else 'http'}://127.0.0.1:{srv.port}"

    def ssl_context(self, alpn=("h2",)) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.certs.ca))
        if alpn:
            ctx.set_alpn_protocols(list(alpn))
        return ctx

    def client(self, **kw) -> httpx.Client:
        if self.tls:
            return httpx.Client(http2=True, verify=self.ssl_context(None), timeout=5, **kw)
        return httpx.Client(http1=False, http2=True, timeout=5, **kw)

    def async_client(self, **kw) -> httpx.AsyncClient:
        if self.tls:
            return httpx.AsyncClient(http2=True, verify=self.ssl_context(None), timeout=20, **kw)
        return httpx.AsyncClient(http1=False, http2=True, timeout=20, **kw)

    def curl_args(self) -> list[str]:
        if self.tls:
            return ["--http2", "--cacert", str(self.certs.ca)]
        return ["--http2-prior-knowledge"]

    def h2(self, **kw) -> "H2Conn":
        return H2Conn(self.srv.port, self.ssl_context() if self.tls else None, **kw)


def curl(*args: str, timeout: float = 20) -> subprocess.CompletedProcess:
    out = subprocess.run(["curl", "-sS", "--max-time", str(int(timeout) - 2), *args],
                         capture_output=True, timeout=timeout, env=tool_env())
    assert out.returncode == 0, (out.returncode, out.stderr)
    return out


@pytest.fixture(scope="module")
def servers(module_server_factory, certs):
    return {"h2c": module_server_factory(APP),
            "tls": module_server_factory(APP, *tls_args(certs))}


@pytest.fixture(params=MODES)
def target(request, servers, certs) -> Target:
    return Target(request.param, servers[request.param], certs)


@pytest.fixture
def token():
    return uuid.uuid4().hex


# ---- a raw HTTP/2 client (the h2 package) ------------------------------------------


class H2Conn:
    """An HTTP/2 client connection driven by hand: requests go out when
    asked, frames are read only in pump(), and each stream's received data
    is acknowledged (WINDOW_UPDATE) unless the stream is in `hold`, whose
    bytes return only the connection's window."""

    def __init__(self, port: int, tls_ctx: ssl.SSLContext | None, settings=None,
                 timeout: float = 10):
        sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        if tls_ctx is not None:
            sock = tls_ctx.wrap_socket(sock, server_hostname="127.0.0.1")
            assert sock.selected_alpn_protocol() == "h2", sock.selected_alpn_protocol()
        self.sock = sock
        self.conn = h2.connection.H2Connection(
            h2.config.H2Configuration(client_side=True, header_encoding=None))
        self.conn.initiate_connection()
        if settings:
            self.conn.update_settings(settings)
        self.flush()
        self.streams: dict[int, dict] = {}
        self.hold: set[int] = set()
        self.goaway: h2.events.ConnectionTerminated | None = None
        self.remote_settings = False
        self.closed = False
        self.wait(lambda: self.remote_settings, what="server SETTINGS")

    def flush(self) -> None:
        data = self.conn.data_to_send()
        if data:
            self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def request(self, method: str, path: str, headers=(), body: bytes | None = None,
                end: bool = True) -> int:
        sid = self.conn.get_next_available_stream_id()
        hs = [(b":method", method.encode()), (b":scheme", b"https" if isinstance(
            self.sock, ssl.SSLSocket) else b"http"), (b":authority", b"127.0.0.1"),
              (b":path", path.encode()), *headers]
        self.streams[sid] = {"status": None, "headers": [], "data": bytearray(),
                             "ended": False, "reset": None}
        self.conn.send_headers(sid, hs, end_stream=end and not body)
        self.flush()
        if body:
            self.send_body(sid, body, end)
        return sid

    def send_body(self, sid: int, body: bytes, end: bool = True, timeout: float = 10) -> None:
        """DATA frames as the windows and the frame size allow."""
        view, deadline = memoryview(body), time.monotonic() + timeout
        while view:
            n = min(len(view), self.conn.local_flow_control_window(sid),
                    self.conn.max_outbound_frame_size)
            if n <= 0:
                assert time.monotonic() < deadline, f"stream {sid}: no window for the body"
                self.pump(0.2)
                continue
            self.conn.send_data(sid, bytes(view[:n]), end_stream=end and n == len(view))
            view = view[n:]
            self.flush()

    def reset(self, sid: int, code=h2.errors.ErrorCodes.CANCEL) -> None:
        self.conn.reset_stream(sid, code)
        self.flush()

    def release(self, sid: int) -> None:
        """Stop holding sid's window: acknowledge all it has received."""
        self.hold.discard(sid)
        n = len(self.streams[sid]["data"])
        if n:
            self.conn.increment_flow_control_window(n, stream_id=sid)
        self.flush()

    def pump(self, timeout: float) -> None:
        self.sock.settimeout(timeout)
        try:
            data = self.sock.recv(65536)
        except (socket.timeout, TimeoutError):
            return
        except ConnectionResetError:
            data = b""
        if not data:
            self.closed = True
            return
        for ev in self.conn.receive_data(data):
            st = self.streams.get(getattr(ev, "stream_id", 0) or 0)
            if isinstance(ev, h2.events.RemoteSettingsChanged):
                self.remote_settings = True
            elif isinstance(ev, h2.events.ResponseReceived):
                st["headers"] = [(k.decode(), v.decode()) for k, v in ev.headers]
                st["status"] = int(dict(st["headers"])[":status"])
            elif isinstance(ev, h2.events.DataReceived):
                st["data"] += ev.data
                if ev.stream_id in self.hold:
                    # The connection's window comes back, the stream's does not.
                    self.conn.increment_flow_control_window(ev.flow_controlled_length)
                else:
                    self.conn.acknowledge_received_data(ev.flow_controlled_length, ev.stream_id)
            elif isinstance(ev, h2.events.StreamEnded):
                st["ended"] = True
            elif isinstance(ev, h2.events.StreamReset):
                if st is not None:
                    st["reset"] = ev.error_code
            elif isinstance(ev, h2.events.ConnectionTerminated):
                self.goaway = ev
        self.flush()

    def wait(self, cond, timeout: float = 10, what: str = "condition") -> None:
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                seen = {k: (v["status"], len(v["data"]), v["ended"], v["reset"])
                        for k, v in self.streams.items()}
                raise AssertionError(f"{what}: not within {timeout}s (closed={self.closed}); "
                                     f"streams (status, bytes, ended, reset): {seen}")
            self.pump(min(left, 0.5))

    def done(self, sid: int) -> bool:
        st = self.streams[sid]
        return st["ended"] or st["reset"] is not None

    def response(self, sid: int, timeout: float = 10) -> dict:
        self.wait(lambda: self.done(sid), timeout, f"stream {sid}")
        return self.streams[sid]


# ---- curl ---------------------------------------------------------------------------


def test_curl_speaks_h2_response_head(target):
    out = curl(*target.curl_args(), "-D", "-", "-o", "/dev/null", "-w", "%{http_version}",
               "-H", "X-Test: 1", f"{target.url}/?via=curl")
    text = out.stdout.decode()
    head, _, version = text.rpartition("\r\n\r\n")
    assert version == "2", text
    lines = head.split("\r\n")
    assert lines[0].startswith("HTTP/2 200"), lines
    names = [line.partition(":")[0] for line in lines[1:]]
    assert names == [n.lower() for n in names], names  # HTTP/2 field names are lower case
    assert not CONNECTION_SPECIFIC & set(names), names
    assert "date" in names and "server" in names, names
    assert "content-type" in names and "content-length" in names, names
    body = curl(*target.curl_args(), f"{target.url}/").stdout
    assert body == b"ok"


@pytest.mark.parametrize("case", ["lower", "as-written"])
def test_connection_specific_fields_dropped(target, case):
    """The app's connection-specific fields are dropped whatever their case
    (a client must treat a response with them as malformed, RFC 9113
    8.2.2), its other fields kept."""
    out = curl(*target.curl_args(), "-D", "-", "-o", "/dev/null",
               f"{target.url}/conn-headers?case={case}")
    fields = dict(line.partition(": ")[::2]
                  for line in out.stdout.decode().split("\r\n")[1:] if line)
    assert fields.get("x-kept") == "Yes", fields
    assert not CONNECTION_SPECIFIC & set(fields), fields


def test_many_requests_share_one_connection(target):
    urls = [f"{target.url}/sleep?s=0.3&id={i}" for i in range(8)]
    if not target.tls:
        # curl 7.88 (Debian 12) cannot reuse an --http2-prior-knowledge
        # connection ("Error in the HTTP2 framing layer" on the second
        # transfer; hypercorn gets the same), so h2c's many requests on one
        # connection go through nghttp, which multiplexes all its URIs.
        t0 = time.monotonic()
        out = subprocess.run(["nghttp", "-n", "-s", "-t", "10", *urls], capture_output=True,
                             text=True, timeout=20, env=tool_env())
        elapsed = time.monotonic() - t0
        assert out.returncode == 0, out.stdout + out.stderr
        rows = re.findall(r"^\s*\d+\s+\+\S+\s+\+\S+\s+\S+\s+(\d+)\s+\d+\s+(\S+)$",
                          out.stdout, re.M)
        assert sorted(rows) == sorted(("200", u.removeprefix(target.url)) for u in urls), out.stdout
        assert elapsed < 8 * 0.3, elapsed  # multiplexed, not one after the other
        return
    # Several URLs one after another reuse the connection.
    out = curl(*target.curl_args(), "-w", "%{http_version} %{num_connects}\n",
               *[a for i in range(3) for a in (f"{target.url}/", "-o", "/dev/null")])
    assert out.stdout.decode().split() == ["2", "1", "2", "0", "2", "0"], out.stdout
    # --parallel: eight at once, multiplexed on the one connection.
    t0 = time.monotonic()
    out = curl(*target.curl_args(), "--parallel", "--parallel-max", "8",
               "-w", "%{http_version} %{response_code} %{num_connects} %{local_port}\n",
               *[a for u in urls for a in (u, "-o", "/dev/null")])
    elapsed = time.monotonic() - t0
    rows = [line.split() for line in out.stdout.decode().splitlines()]
    assert len(rows) == 8, rows
    assert {r[0] for r in rows} == {"2"} and {r[1] for r in rows} == {"200"}, rows
    assert sum(int(r[2]) for r in rows) == 1, rows  # one connect for all eight
    assert len({r[3] for r in rows}) == 1, rows  # from one local port
    assert elapsed < 8 * 0.3, elapsed  # multiplexed, not one after the other


# ---- httpx ----------------------------------------------------------------------------


def test_httpx_scope_over_h2(target):
    with target.client() as c:
        r = c.get(f"{target.url}/scope?a=1&b=%20x&a=2",
                  headers=[("x-multi", "one"), ("X-Case", "Value"), ("cookie", "a=1"),
                           ("cookie", "b=2"), ("x-multi", "two")])
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    scope = r.json()
    assert scope["type"] == "http" and scope["http_version"] == "2"
    assert scope["scheme"] == ("https" if target.tls else "http")
    assert scope["method"] == "GET" and scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope" and scope["query_string"] == "a=1&b=%20x&a=2"
    assert scope["_types"]["query_string"] == "bytes" and scope["_types"]["raw_path"] == "bytes"
    assert scope["_header_types"] == ["bytes,bytes"]
    headers = scope["headers"]
    names = [k for k, _ in headers]
    assert names == [n.lower() for n in names]
    # :authority becomes host, first, since the request has no host field.
    assert headers[0] == ["host", f"127.0.0.1:{target.srv.port}"], headers
    assert not any(k.startswith(":") for k in names), headers
    # Repeated cookie fields are joined into one (RFC 9113 8.2.3) ...
    assert [v for k, v in headers if k == "cookie"] == ["a=1; b=2"], headers
    # ... other repeated fields stay as they came, in order.
    assert [v for k, v in headers if k == "x-multi"] == ["one", "two"], headers
    assert ["x-case", "Value"] in headers
    assert scope["client"][0] == "127.0.0.1" and scope["server"] == ["127.0.0.1", target.srv.port]
    if target.tls:
        assert "tls" in scope["extensions"], scope["extensions"]
    assert "http.response.pathsend" in scope["extensions"], scope["extensions"]


def test_httpx_post_bodies(target):
    with target.client() as c:
        r = c.post(f"{target.url}/echo", content=b"hello h2")
        assert (r.status_code, r.content, r.http_version) == (200, b"hello h2", "HTTP/2")
        big = os.urandom(1 << 20)
        r = c.post(f"{target.url}/upload", content=big)
        assert r.json() == {"messages": r.json()["messages"], "len": len(big),
                            "sha256": hashlib.sha256(big).hexdigest()}

        def gen():  # a streamed upload: no content-length, many DATA frames
            for i in range(64):
                yield bytes([i]) * 8192

        r = c.post(f"{target.url}/upload", content=gen())
        expect = b"".join(bytes([i]) * 8192 for i in range(64))
        got = r.json()
        assert got["len"] == len(expect) and got["sha256"] == hashlib.sha256(expect).hexdigest()
        assert got["messages"] > 1, got  # the body reached the app as it came


def test_httpx_1mib_echo(target):
    big = os.urandom(1 << 20)
    with target.client() as c:
        r = c.post(f"{target.url}/echo", content=big)
    assert r.status_code == 200 and len(r.content) == len(big)
    assert r.headers["x-sha256"] == hashlib.sha256(big).hexdigest()
    assert r.content == big


def test_httpx_streamed_response_arrives_as_it_is_sent(target, token, record_dir):
    with target.client() as c:
        r = c.get(f"{target.url}/chunks?n=200&size=1000")
        assert r.content == b"".join((b"%d:" % i).ljust(1000, b".") for i in range(200))
        # /stream-gated sends its first chunk, then waits for the test: the
        # client must see that chunk while the response is still open.
        with c.stream("GET", f"{target.url}/stream-gated?n=5&token={token}",
                      headers={"accept-encoding": "identity"}) as r:
            assert r.http_version == "HTTP/2" and r.status_code == 200
            it = r.iter_raw()
            first = next(it)
            assert first.startswith(b"chunk 0\n"), first
            lines = wait_record(record_dir, token, "first-sent")
            assert "last-sent" not in lines
            (record_dir / f"{token}.go").touch()
            rest = b"".join(it)
        assert first + rest == b"".join(b"chunk %d\n" % i for i in range(5))


def test_large_response_to_a_client_with_a_big_window(target):
    """curl opens a 32 MiB stream window and 1 GiB connection window, so it
    sends no WINDOW_UPDATE while the response comes: the server must go on
    writing when its socket drains, not only when a frame arrives."""
    for path in ("/big?n=1000000", "/chunks?n=4&size=300000"):
        out = curl(*target.curl_args(), "-H", "accept-encoding: identity", "-o", "/dev/null",
                   "-w", "%{http_version} %{response_code} %{size_download}",
                   f"{target.url}{path}", timeout=8)
        assert out.stdout.decode().split() == ["2", "200", "1000000" if "big" in path
                                               else "1200000"], (path, out.stdout, out.stderr)


def test_httpx_head_204_304(target):
    with target.client() as c:
        r = c.head(f"{target.url}/big?n=5000")
        assert r.status_code == 200 and r.content == b"" and r.http_version == "HTTP/2"
        assert r.headers["content-length"] == "5000"
        r = c.get(f"{target.url}/status?code=204")
        assert r.status_code == 204 and r.content == b""
        r = c.get(f"{target.url}/status?code=304")
        assert r.status_code == 304 and r.content == b"" and r.headers["etag"] == '"v1"'
        assert c.get(f"{target.url}/").text == "ok"  # the connection goes on


# ---- concurrency ----------------------------------------------------------------------


def test_100_streams_on_one_connection_run_concurrently(target):
    with target.h2() as h:
        t0 = time.monotonic()
        sids = [h.request("GET", f"/sleep?s=0.5&id={i}") for i in range(100)]
        for sid in sids:
            h.response(sid, timeout=20)
        elapsed = time.monotonic() - t0
    bodies = [json.loads(bytes(h.streams[s]["data"])) for s in sids]
    assert [h.streams[s]["status"] for s in sids] == [200] * 100
    assert sorted(int(b["id"]) for b in bodies) == list(range(100))
    assert {b["http_version"] for b in bodies} == {"2"}
    # 100 x 0.5 s one after another would be 50 s.
    assert elapsed < 5, elapsed
    # Each stream is its own task: all 100 were sleeping at once.
    assert max(b["at_start"] for b in bodies) == 100, sorted(b["at_start"] for b in bodies)
    assert len({tuple(b["client"]) for b in bodies}) == 1


def test_httpx_async_100_concurrent_requests(target):
    async def run():
        async with target.async_client() as c:
            t0 = time.monotonic()
            rs = await asyncio.gather(*[c.get(f"{target.url}/sleep?s=0.2&id={i}")
                                        for i in range(100)])
            return rs, time.monotonic() - t0

    rs, elapsed = asyncio.run(run())
    assert {r.status_code for r in rs} == {200} and {r.http_version for r in rs} == {"HTTP/2"}
    assert sorted(int(r.json()["id"]) for r in rs) == list(range(100))
    assert elapsed < 5, elapsed


def test_a_stream_whose_reader_does_not_read_blocks_no_other(target):
    n = 4 << 20
    with target.h2() as h:
        slow = h.request("GET", f"/big?n={n}")
        h.hold.add(slow)
        h.wait(lambda: len(h.streams[slow]["data"]) >= 65535 - 16384, what="slow's window")
        others = [h.request("GET", "/") for _ in range(10)]
        others += [h.request("POST", "/echo", body=b"x" * 100_000) for _ in range(3)]
        others += [h.request("GET", "/big?n=300000") for _ in range(3)]
        for sid in others:
            st = h.response(sid)
            assert st["status"] == 200 and st["ended"], (sid, st["status"], st["reset"])
        assert bytes(h.streams[others[0]]["data"]) == b"ok"
        assert bytes(h.streams[others[-1]]["data"]) == pattern(300000)
        # The slow stream got no more than its window while the others ran.
        assert len(h.streams[slow]["data"]) <= 65535
        assert not h.done(slow)
        h.release(slow)
        st = h.response(slow, timeout=20)
        assert st["ended"] and bytes(st["data"]) == pattern(n)


def test_rst_stream_reaches_that_streams_app_only(target, token, record_dir):
    with target.h2() as h:
        victim = h.request("GET", f"/wait-disconnect?token={token}")
        other = h.request("GET", "/sleep?s=0.5&id=other")
        wait_record(record_dir, token, "started")
        h.reset(victim)
        lines = wait_record(record_dir, token, "http.disconnect")
        assert "timeout" not in lines, lines
        st = h.response(other)
        assert st["status"] == 200 and json.loads(bytes(st["data"]))["id"] == "other"
        assert h.streams[victim]["status"] is None
        third = h.request("GET", "/")  # the connection goes on
        assert bytes(h.response(third)["data"]) == b"ok"
        assert h.goaway is None


# ---- GOAWAY on drain ------------------------------------------------------------------


def read_frames(sock, buf: bytearray, timeout: float):
    """Frames from sock until EOF or timeout (raw hyperframe: the h2 state
    machine refuses frames that follow a GOAWAY, which is what this checks)."""
    deadline = time.monotonic() + timeout
    while True:
        while len(buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(buf[:9]))
            if len(buf) < 9 + length:
                break
            frame.parse_body(memoryview(bytes(buf[9:9 + length])))
            del buf[:9 + length]
            yield frame
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no EOF within {timeout}s")
        sock.settimeout(left)
        try:
            data = sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            return
        buf += data


CHUNKS = b"".join((b"%d:" % i).ljust(1000, b".") for i in range(6))


def drain_sees_goaway(t: Target, signal_server, timeout: float = 15) -> None:
    """A response in flight (6 chunks, 250 ms apart) when signal_server()
    starts the drain: GOAWAY(NO_ERROR) covering the stream comes at once,
    then the rest of the response in full, then the connection closes."""
    h = t.h2()
    sid = h.request("GET", "/chunks?n=6&size=1000&delay_ms=250")
    h.wait(lambda: h.streams[sid]["status"] == 200, what="response head")
    assert not h.done(sid), "the response was over before the signal"
    signal_server()
    goaway, data, ended, buf = None, bytearray(h.streams[sid]["data"]), False, bytearray()
    for f in read_frames(h.sock, buf, timeout):
        if isinstance(f, GoAwayFrame):
            assert goaway is None, "two GOAWAYs"
            assert not ended, "GOAWAY only after the stream ended, not at once"
            goaway = f
        elif isinstance(f, DataFrame) and f.stream_id == sid:
            data += f.data
            ended = ended or "END_STREAM" in f.flags
    h.close()
    assert goaway is not None, "no GOAWAY"
    assert goaway.error_code == 0 and goaway.last_stream_id >= sid, goaway
    assert ended and bytes(data) == CHUNKS, (ended, bytes(data))


@pytest.mark.parametrize("mode", MODES)
def test_goaway_on_sigterm_lets_the_stream_finish(server_factory, certs, mode):
    srv = server_factory(APP, *(tls_args(certs) if mode == "tls" else ()),
                         "--shutdown-timeout", "10")
    drain_sees_goaway(Target(mode, srv, certs), lambda: srv.proc.send_signal(signal.SIGTERM))
    assert srv.wait(10) == 0


def test_goaway_on_sighup_reload(server_factory):
    srv = server_factory(APP, "--workers", "1", "--worker-mode", "process")
    t = Target("h2c", srv, None)
    drain_sees_goaway(t, lambda: srv.proc.send_signal(signal.SIGHUP), timeout=20)
    srv.wait_log(r"reload: generation 2 \(pid \d+\) serves the new code", timeout=20)
    with t.client() as c:  # the new generation speaks h2
        assert c.get(f"{t.url}/").http_version == "HTTP/2"


# ---- frameworks -----------------------------------------------------------------------


@pytest.fixture(scope="module", params=["starlette", "fastapi"])
def fw(request, module_server_factory, certs):
    srv = module_server_factory(f"tests.apps.h2_frameworks:{request.param}_app", *tls_args(certs),
                                timeout=20)
    return request.param, Target("tls", srv, certs)


def test_frameworks_unchanged_over_h2(fw, tmp_path):
    name, t = fw
    with t.client() as c:
        r = c.get(f"{t.url}/json")
        assert r.http_version == "HTTP/2" and r.json() == {"hello": "world", "framework": name}
        assert r.headers["content-type"] == "application/json"
        r = c.post(f"{t.url}/json", json={"a": [1, 2], "b": "é"})
        assert r.json() == {"received": {"a": [1, 2], "b": "é"}}
        assert c.get(f"{t.url}/items/42", params={"q": "a b&c"}).json() == {"item_id": 42,
                                                                            "q": "a b&c"}
        assert c.get(f"{t.url}/items/x").status_code in (404, 422)
        r = c.post(f"{t.url}/form", data={"name": "Ünï", "n": "3"})
        assert r.json() == {"fields": {"name": "Ünï", "n": "3"}}
        body = os.urandom(700_000)
        r = c.post(f"{t.url}/body", content=body)
        assert r.json()["sha256"] == hashlib.sha256(body).hexdigest()
        with c.stream("GET", f"{t.url}/stream") as r:
            assert r.http_version == "HTTP/2" and "transfer-encoding" not in r.headers
            assert r.read() == "".join(f"line {i}\n" for i in range(10)).encode()
        f = tmp_path / "small.txt"
        f.write_bytes(b"a small file\n")
        r = c.get(f"{t.url}/file", params={"path": str(f)})
        assert r.status_code == 200 and r.content == b"a small file\n"
        r = c.get(f"{t.url}/boom")
        assert r.status_code == 500 and r.http_version == "HTTP/2"
        assert c.get(f"{t.url}/json").status_code == 200  # the connection goes on
    assert "boom over h2" in t.srv.log_text()


def test_frameworks_large_file_response(fw, tmp_path):
    _, t = fw
    f = tmp_path / "file.bin"
    data = os.urandom(3 << 20)
    f.write_bytes(data)
    with t.client() as c:
        r = c.get(f"{t.url}/file", params={"path": str(f)})
    assert r.status_code == 200 and r.headers["content-length"] == str(len(data))
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()


# ---- compression and pathsend on a stream ----------------------------------------------


@pytest.mark.parametrize("codec", ["gzip", "zstd"])
def test_compression_on_a_stream(target, codec):
    n = 200_000
    with target.client() as c:
        with c.stream("GET", f"{target.url}/big?n={n}", headers={"accept-encoding": codec}) as r:
            raw = b"".join(r.iter_raw())
    assert r.http_version == "HTTP/2" and r.headers["content-encoding"] == codec
    assert len(raw) < n // 4
    if codec == "gzip":
        body = zlib.decompress(raw, 31)
    else:
        body = zstandard.ZstdDecompressor().decompressobj().decompress(raw)
    assert body == pattern(n)


def test_pathsend_on_a_stream(target, tmp_path):
    f = tmp_path / "big.bin"
    data = os.urandom(5 << 20)
    f.write_bytes(data)
    with target.client() as c:
        r = c.get(f"{target.url}/pathsend", params={"path": str(f)})
    assert r.status_code == 200 and r.http_version == "HTTP/2"
    assert r.headers["content-length"] == str(len(data))
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()


def test_a_file_cut_short_while_sent_resets_its_stream_only(servers, tmp_path):
    """A file response whose file shrinks while it is sent (the DATA frames
    are read from it as the window opens): the stream is reset, never padded
    or left hanging, and the connection goes on serving."""
    f = tmp_path / "cut.bin"
    with open(f, "wb") as fh:
        fh.truncate(8 << 20)  # sparse
    small = tmp_path / "small.bin"
    small.write_bytes(b"still serving\n")
    with H2Raw.connect(servers["h2c"], tls=False, auto_window=False) as c:
        c.preface()
        c.request(1, f"/pathsend?path={quote(str(f))}")
        # The default windows (65,535 bytes) let the first bytes out; then it waits.
        assert c.read_until(lambda c: len(c.data.get(1, b"")) >= 65535, 5), c.resets
        assert c.status(1) == 200 and 1 not in c.resets
        os.truncate(f, 100_000)
        c.send(c.window_update(0, 16 << 20), c.window_update(1, 16 << 20))
        assert c.read_until(lambda c: 1 in c.resets or 1 in c.ended or c.closed, 5)
        assert c.reset_name(1) == "INTERNAL_ERROR", (c.resets, c.ended, len(c.body(1)))
        assert len(c.body(1)) <= 100_000
        assert not c.closed and c.goaway is None
        c.request(3, f"/pathsend?path={quote(str(small))}")
        assert c.read_until(c.done(3), 5)
        assert (c.status(3), c.body(3)) == (200, b"still serving\n")


# ---- h2load ---------------------------------------------------------------------------


def test_h2load_2000_requests(servers):
    srv = servers["h2c"]
    t0 = time.monotonic()
    out = subprocess.run(["h2load", "-n", "2000", "-c", "4", "-m", "16", "-T", "20",
                          f"http://127.0.0.1:{srv.port}/"],
                         capture_output=True, text=True, timeout=60, env=tool_env())
    elapsed = time.monotonic() - t0
    assert out.returncode == 0, out.stdout + out.stderr
    m = re.search(r"requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, "
                  r"(\d+) failed, (\d+) errored, (\d+) timeout", out.stdout)
    assert m, out.stdout
    assert [int(x) for x in m.groups()] == [2000, 2000, 2000, 2000, 0, 0, 0], out.stdout
    assert re.search(r"status codes: 2000 2xx", out.stdout), out.stdout
    assert "Application protocol: h2c" in out.stdout, out.stdout
    assert elapsed < 30, elapsed


# ---- --http ---------------------------------------------------------------------------


def test_http_1_refuses_h2(server_factory, certs):
    srv = server_factory(APP, "--http", "1")
    with RawConn("127.0.0.1", srv.port) as c:
        c.send(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
        resp = c.read_response()
        assert resp.status == 505 and resp.version == "HTTP/1.1"
        assert c.wait_closed()
    out = subprocess.run(["curl", "-sS", "--max-time", "5", "--http2-prior-knowledge", "-w",
                          "%{http_version}", "-o", "/dev/null", f"http://127.0.0.1:{srv.port}/"],
                         capture_output=True, text=True, timeout=10, env=tool_env())
    assert out.stdout != "2", out
    srv = server_factory(APP, "--http", "1", *tls_args(certs))
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    with Target("tls", srv, certs).ssl_context(("h2", "http/1.1")).wrap_socket(
            raw, server_hostname="127.0.0.1") as s:
        assert s.selected_alpn_protocol() == "http/1.1"
    out = curl("--http2", "--cacert", str(certs.ca), "-w", "%{http_version}", "-o", "/dev/null",
               f"https://127.0.0.1:{srv.port}/")
    assert out.stdout == b"1.1"


def test_http_2_refuses_http1(server_factory):
    srv = server_factory(APP, "--http", "2")
    with RawConn("127.0.0.1", srv.port) as c:
        resp = c.request("GET", "/")
        assert resp.status == 505
        assert c.wait_closed()
    with Target("h2c", srv, None).client() as c:
        assert c.get(f"http://127.0.0.1:{srv.port}/").text == "ok"


def test_upgrade_h2c_is_answered_over_http1(servers):
    with RawConn("127.0.0.1", servers["h2c"].port) as c:
        resp = c.request("GET", "/", [("Connection", "Upgrade, HTTP2-Settings"),
                                      ("Upgrade", "h2c"), ("HTTP2-Settings", "AAMAAABkAARAAAAA")])
        assert (resp.version, resp.status, resp.body) == ("HTTP/1.1", 200, b"ok")
        c.send(build_request("GET", "/"))  # still HTTP/1.1 on that connection
        assert c.read_response().body == b"ok"


def test_tls_without_alpn_is_http1(servers, certs):
    srv = servers["tls"]
    raw = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    ctx = ssl.create_default_context(cafile=str(certs.ca))
    with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as s:
        assert s.selected_alpn_protocol() is None
        s.sendall(build_request("GET", "/"))
        assert s.recv(65536).startswith(b"HTTP/1.1 200")
    out = curl("--http1.1", "--cacert", str(certs.ca), "-w", "%{http_version}", "-o",
               "/dev/null", f"https://127.0.0.1:{srv.port}/")
    assert out.stdout == b"1.1"


# ---- access log -----------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["common", "json"])
def test_access_log_says_http2(server_factory, tmp_path, fmt):
    log = tmp_path / "access.log"
    srv = server_factory(APP, "--access-log-format", fmt, "--access-log-file", str(log))
    with Target("h2c", srv, None).client() as c:
        assert c.get(f"http://127.0.0.1:{srv.port}/?h2=1").status_code == 200
    deadline = time.monotonic() + 5
    while not (log.exists() and log.read_text().strip()) and time.monotonic() < deadline:
        time.sleep(0.05)
    line = log.read_text().strip().splitlines()[-1]
    if fmt == "json":
        rec = json.loads(line)
        assert rec["http_version"] == "2" and rec["target"] == "/?h2=1", rec
        assert rec["status"] == 200
    else:
        assert '"GET /?h2=1 HTTP/2.0" 200 2' in line, line
