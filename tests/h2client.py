"""A small raw-frame HTTP/2 client for tests that misbehave on purpose.

The `h2` package (h2.connection.H2Connection) refuses to send what a hostile
client sends: HEADERS followed at once by RST_STREAM thousands of times,
CONTINUATION frames without end, uppercase header names, DATA past
content-length, more streams than the server allows. So the sending side
here builds frames with hyperframe and header blocks with hpack (the two
libraries h2 is made of), or takes hand-built bytes, and the reading side
parses whatever comes back without judging it:

    c = H2Raw.connect(srv)            # TLS + ALPN h2 under POUNCE_TEST_TLS=1
    c.preface({SETTINGS_INITIAL_WINDOW_SIZE: 0})
    c.send(c.headers(1, request_headers("/"), end_stream=True))
    c.read_until(lambda c: 1 in c.ended or c.closed, timeout=5)
    c.status(1), c.body(1), c.resets.get(1), c.goaway

What was read is kept per stream: decoded header blocks (`heads[sid]`, a
list of blocks: interim, final, trailers), DATA bytes (`data[sid]`),
END_STREAM (`ended`), RST_STREAM codes (`resets[sid]`), and for the
connection: the GOAWAY (`goaway`: error code, last stream id, debug data),
PING ACKs counted (`ping_acks`), SETTINGS ACKs counted (`settings_acks`),
the server's SETTINGS (`server_settings`), and `closed` once the server
closed the connection (EOF or reset).

The server's SETTINGS are ACKed and its PINGs answered as they are read
(the client would otherwise be the misbehaving one); DATA is given back with
WINDOW_UPDATEs unless `auto_window` is False (the zero-window reader).

h2_get() is the well-behaved side: one request on a fresh connection with
the real h2 state machine, the "is the server still serving" check.

Used from the pytest process only; not thread-safe (one thread per H2Raw).
"""

from __future__ import annotations

import socket
import ssl
import time
from typing import Callable, Iterable

import h2.config
import h2.connection
import h2.events
from h2.errors import ErrorCodes
from h2.settings import SettingCodes
from hpack import Decoder, Encoder
from hyperframe.frame import (
    ContinuationFrame,
    DataFrame,
    Frame,
    GoAwayFrame,
    HeadersFrame,
    PingFrame,
    RstStreamFrame,
    SettingsFrame,
    WindowUpdateFrame,
)

from tests.server import TLS, tls_client_context

PREFACE = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n"

SETTINGS_HEADER_TABLE_SIZE = SettingCodes.HEADER_TABLE_SIZE
SETTINGS_ENABLE_PUSH = SettingCodes.ENABLE_PUSH
SETTINGS_MAX_CONCURRENT_STREAMS = SettingCodes.MAX_CONCURRENT_STREAMS
SETTINGS_INITIAL_WINDOW_SIZE = SettingCodes.INITIAL_WINDOW_SIZE
SETTINGS_MAX_FRAME_SIZE = SettingCodes.MAX_FRAME_SIZE
SETTINGS_MAX_HEADER_LIST_SIZE = SettingCodes.MAX_HEADER_LIST_SIZE


def error_name(code: int | None) -> str | None:
    """ErrorCodes name for a code (PROTOCOL_ERROR, ...), or the number."""
    if code is None:
        return None
    try:
        return ErrorCodes(code).name
    except ValueError:
        return str(code)


def h2_context() -> ssl.SSLContext:
    """A client context trusting the test CA that offers ALPN h2 only."""
    ctx = tls_client_context()
    ctx.set_alpn_protocols(["h2"])
    return ctx


def open_socket(host: str, port: int, tls: bool = TLS, timeout: float = 5.0,
                rcvbuf: int | None = None) -> socket.socket:
    """A TCP connection to host:port (TLS with ALPN h2 when `tls`). `rcvbuf`
    shrinks the receive buffer before connecting (a client that does not
    read then backs the server up after a few KiB)."""
    s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    if rcvbuf is not None:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
    s.settimeout(timeout)
    s.connect((host, port))
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if tls:
        s = h2_context().wrap_socket(s, server_hostname=host)
        if s.selected_alpn_protocol() != "h2":
            s.close()
            raise AssertionError(f"ALPN chose {s.selected_alpn_protocol()!r}, not h2")
    return s


def request_headers(path: str = "/", method: str = "GET", authority: str = "127.0.0.1",
                    extra: Iterable[tuple[str, str]] = (), scheme: str | None = None) -> list:
    """A well-formed request's header list (pseudo-headers first)."""
    if scheme is None:
        scheme = "https" if TLS else "http"
    return [(":method", method), (":scheme", scheme), (":authority", authority),
            (":path", path), *extra]


class H2Raw:
    """One HTTP/2 connection driven frame by frame (see the module doc)."""

    def __init__(self, sock: socket.socket, auto_window: bool = True):
        self.sock = sock
        self.auto_window = auto_window
        #: False: the server's SETTINGS are recorded but not acknowledged
        #: (the limits they announce are then still pending on its side).
        self.ack_settings = True
        # Over TLS the server's SETTINGS come before our preface is sent;
        # the answers wait for it (a SETTINGS ACK first is a bad preface).
        self.preface_sent = False
        self._held: list[bytes] = []
        self.encoder = Encoder()
        self.decoder = Decoder()
        # Big enough for the HPACK-bomb answers we might get back.
        self.decoder.max_header_list_size = 1 << 24
        self.buf = bytearray()
        self.frames: list[Frame] = []
        self.heads: dict[int, list[list[tuple[str, str]]]] = {}
        self.data: dict[int, bytearray] = {}
        self.ended: set[int] = set()
        self.resets: dict[int, int] = {}
        self.goaway: tuple[int, int, bytes] | None = None
        self.server_settings: dict[int, int] = {}
        self.server_settings_seen = False
        self.ping_acks = 0
        self.settings_acks = 0
        self.closed = False
        self.bytes_read = 0
        self._block: bytearray | None = None
        self._block_sid = 0
        self._block_end_stream = False

    @classmethod
    def connect(cls, srv, tls: bool = TLS, timeout: float = 5.0, rcvbuf: int | None = None,
                auto_window: bool = True) -> "H2Raw":
        return cls(open_socket(srv.host, srv.port, tls=tls, timeout=timeout, rcvbuf=rcvbuf),
                   auto_window=auto_window)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "H2Raw":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- frames out -------------------------------------------------------------
    # Builders return bytes so a test can pack thousands of frames into one
    # write; send() writes them.

    def send(self, *chunks: bytes) -> None:
        self.sock.sendall(b"".join(chunks))

    def preface(self, settings: dict | None = None, wait: bool = True) -> None:
        """The connection preface and the client's SETTINGS; with `wait`,
        also read until the server's SETTINGS came (and were ACKed, unless
        ack_settings is off) and ours were ACKed. Waiting matters before a
        test opens a header block: an ACK this client sends while it reads
        must not fall between a HEADERS and its CONTINUATIONs."""
        self.send(PREFACE, self.settings(settings or {}), *self._held)
        self.preface_sent, self._held = True, []
        if wait and not self.read_until(
                lambda c: c.server_settings_seen and c.settings_acks > 0, 5):
            raise AssertionError(f"no SETTINGS exchange (GOAWAY {self.goaway}, "
                                 f"closed {self.closed})")

    @staticmethod
    def settings(values: dict | None = None, ack: bool = False) -> bytes:
        f = SettingsFrame(0)
        if ack:
            f.flags.add("ACK")
        else:
            f.settings = {int(k): v for k, v in (values or {}).items()}
        return f.serialize()

    def encode(self, headers: Iterable[tuple[str, str]]) -> bytes:
        """An HPACK block from this connection's encoder (its dynamic table
        stays in step with the server's decoder as long as every block it
        makes is sent, in order)."""
        return self.encoder.encode([(k.encode() if isinstance(k, str) else k,
                                     v.encode() if isinstance(v, str) else v)
                                    for k, v in headers])

    def headers(self, sid: int, headers=None, end_stream: bool = False,
                end_headers: bool = True, block: bytes | None = None) -> bytes:
        """A HEADERS frame: `headers` encoded, or a ready `block` (raw HPACK)."""
        f = HeadersFrame(sid)
        f.data = block if block is not None else self.encode(headers or [])
        if end_stream:
            f.flags.add("END_STREAM")
        if end_headers:
            f.flags.add("END_HEADERS")
        return f.serialize()

    @staticmethod
    def continuation(sid: int, block: bytes = b"", end_headers: bool = False) -> bytes:
        f = ContinuationFrame(sid)
        f.data = block
        if end_headers:
            f.flags.add("END_HEADERS")
        return f.serialize()

    @staticmethod
    def data_frame(sid: int, payload: bytes, end_stream: bool = False) -> bytes:
        f = DataFrame(sid)
        f.data = payload
        if end_stream:
            f.flags.add("END_STREAM")
        return f.serialize()

    @staticmethod
    def rst(sid: int, code: int = ErrorCodes.CANCEL) -> bytes:
        f = RstStreamFrame(sid)
        f.error_code = int(code)
        return f.serialize()

    @staticmethod
    def ping(payload: bytes = b"\0" * 8, ack: bool = False) -> bytes:
        f = PingFrame(0)
        f.opaque_data = payload
        if ack:
            f.flags.add("ACK")
        return f.serialize()

    @staticmethod
    def window_update(sid: int, increment: int) -> bytes:
        f = WindowUpdateFrame(sid)
        f.window_increment = increment
        return f.serialize()

    @staticmethod
    def goaway_frame(last_sid: int = 0, code: int = ErrorCodes.NO_ERROR) -> bytes:
        f = GoAwayFrame(0)
        f.last_stream_id = last_sid
        f.error_code = int(code)
        return f.serialize()

    def request(self, sid: int, path: str = "/", method: str = "GET", extra=(),
                body: bytes | None = None) -> None:
        """Send a well-formed request on stream `sid` (no wait)."""
        hs = request_headers(path, method, extra=extra)
        if body is None:
            self.send(self.headers(sid, hs, end_stream=True))
        else:
            hs.append(("content-length", str(len(body))))
            self.send(self.headers(sid, hs), self.data_frame(sid, body, end_stream=True))

    # -- frames in --------------------------------------------------------------

    def _fill(self, timeout: float) -> bool:
        """Read once (waiting up to `timeout`); False on EOF, reset or timeout."""
        if self.closed:
            return False
        self.sock.settimeout(max(timeout, 0.001))
        try:
            chunk = self.sock.recv(1 << 16)
        except (socket.timeout, TimeoutError):
            return False
        except (ConnectionResetError, BrokenPipeError, ssl.SSLError, OSError):
            chunk = b""
        if not chunk:
            self.closed = True
            return False
        self.bytes_read += len(chunk)
        self.buf += chunk
        self._parse()
        return True

    def _parse(self) -> None:
        replies = []
        while len(self.buf) >= 9:
            frame, length = Frame.parse_frame_header(memoryview(self.buf[:9]))
            if len(self.buf) < 9 + length:
                break
            frame.parse_body(memoryview(bytes(self.buf[9:9 + length])))
            del self.buf[:9 + length]
            self.frames.append(frame)
            replies.extend(self._on_frame(frame))
        if replies and not self.preface_sent:
            self._held.extend(replies)
        elif replies and not self.closed:
            try:
                self.sock.sendall(b"".join(replies))
            except OSError:
                pass

    def _on_frame(self, f: Frame) -> list[bytes]:
        out = []
        if isinstance(f, SettingsFrame):
            if "ACK" in f.flags:
                self.settings_acks += 1
            else:
                self.server_settings.update(f.settings)
                self.server_settings_seen = True
                if self.ack_settings:
                    out.append(self.settings(ack=True))
        elif isinstance(f, PingFrame):
            if "ACK" in f.flags:
                self.ping_acks += 1
            else:
                out.append(self.ping(f.opaque_data, ack=True))
        elif isinstance(f, GoAwayFrame):
            self.goaway = (f.error_code, f.last_stream_id, bytes(f.additional_data))
        elif isinstance(f, RstStreamFrame):
            self.resets[f.stream_id] = f.error_code
        elif isinstance(f, (HeadersFrame, ContinuationFrame)):
            if isinstance(f, HeadersFrame):
                self._block, self._block_sid = bytearray(f.data), f.stream_id
                self._block_end_stream = "END_STREAM" in f.flags
            elif self._block is not None:
                self._block += f.data
            if "END_HEADERS" in f.flags and self._block is not None:
                fields = self.decoder.decode(bytes(self._block), raw=True)
                self.heads.setdefault(self._block_sid, []).append(
                    [(k.decode("latin-1"), v.decode("latin-1")) for k, v in fields])
                if self._block_end_stream:
                    self.ended.add(self._block_sid)
                self._block = None
        elif isinstance(f, DataFrame):
            self.data.setdefault(f.stream_id, bytearray()).extend(f.data)
            if "END_STREAM" in f.flags:
                self.ended.add(f.stream_id)
            n = f.flow_controlled_length
            if self.auto_window and n:
                out.append(self.window_update(0, n))
                if "END_STREAM" not in f.flags:
                    out.append(self.window_update(f.stream_id, n))
        return out

    def read_until(self, pred: Callable[["H2Raw"], bool], timeout: float = 5.0) -> bool:
        """Read and process frames until pred(self) holds (True), or the
        connection closes or `timeout` passes (pred's last value)."""
        deadline = time.monotonic() + timeout
        while not pred(self):
            left = deadline - time.monotonic()
            if left <= 0 or self.closed:
                return pred(self)
            self._fill(left)
        return True

    def read_for(self, seconds: float) -> None:
        """Read and process everything that arrives for `seconds`."""
        self.read_until(lambda c: False, seconds)

    def drain(self, limit: float = 0.0) -> None:
        """Process what is readable now (or within `limit` seconds)."""
        while self._fill(limit):
            pass

    # -- what came back ---------------------------------------------------------

    def response_head(self, sid: int) -> list[tuple[str, str]] | None:
        """The final (non-1xx) response head of stream `sid`, if any."""
        for block in self.heads.get(sid, []):
            status = dict(block).get(":status")
            if status is not None and not status.startswith("1"):
                return block
        return None

    def status(self, sid: int) -> int | None:
        head = self.response_head(sid)
        return int(dict(head)[":status"]) if head else None

    def body(self, sid: int) -> bytes:
        return bytes(self.data.get(sid, b""))

    def done(self, sid: int) -> Callable[["H2Raw"], bool]:
        """A read_until predicate: stream `sid` ended, was reset, or the
        connection went away."""
        return lambda c: sid in c.ended or sid in c.resets or c.goaway is not None or c.closed

    def goaway_name(self) -> str | None:
        return error_name(self.goaway[0]) if self.goaway else None

    def reset_name(self, sid: int) -> str | None:
        return error_name(self.resets.get(sid))

    def get(self, sid: int, path: str = "/", timeout: float = 5.0) -> tuple[int | None, bytes]:
        """One GET on stream `sid` of this connection: (status, body)."""
        self.request(sid, path)
        self.read_until(self.done(sid), timeout)
        return self.status(sid), self.body(sid)

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Read (and process) until the server closes; True if it did."""
        return self.read_until(lambda c: c.closed, timeout)


def h2_get(srv, path: str = "/", tls: bool = TLS, timeout: float = 5.0) -> tuple[int, bytes]:
    """One GET over a fresh connection with the h2 package's own state
    machine (a well-behaved client). Returns (status, body)."""
    sock = open_socket(srv.host, srv.port, tls=tls, timeout=timeout)
    conn = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True,
                                                                header_encoding=None))
    try:
        conn.initiate_connection()
        sid = conn.get_next_available_stream_id()
        conn.send_headers(sid, request_headers(path), end_stream=True)
        sock.sendall(conn.data_to_send())
        status, body = None, bytearray()
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            sock.settimeout(max(deadline - time.monotonic(), 0.001))
            chunk = sock.recv(1 << 16)
            if not chunk:
                raise AssertionError(f"connection closed before the response (status {status})")
            for ev in conn.receive_data(chunk):
                if isinstance(ev, h2.events.ResponseReceived) and ev.stream_id == sid:
                    status = int(dict(ev.headers)[b":status"])
                elif isinstance(ev, h2.events.DataReceived) and ev.stream_id == sid:
                    body += ev.data
                    conn.acknowledge_received_data(ev.flow_controlled_length, sid)
                elif isinstance(ev, h2.events.StreamReset) and ev.stream_id == sid:
                    raise AssertionError(f"stream reset: {error_name(ev.error_code)}")
                elif isinstance(ev, h2.events.StreamEnded) and ev.stream_id == sid:
                    return status, bytes(body)
                elif isinstance(ev, h2.events.ConnectionTerminated):
                    raise AssertionError(f"GOAWAY {error_name(ev.error_code)}")
            out = conn.data_to_send()
            if out:
                sock.sendall(out)
        raise AssertionError(f"no complete response within {timeout}s (status {status})")
    finally:
        sock.close()
