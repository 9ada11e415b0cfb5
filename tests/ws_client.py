"""A small raw-frame WebSocket client over a plain socket (RFC 6455).

The conformance tests need to send frames no well-behaved client would
send (unmasked, reserved bits, unknown opcodes, broken fragmentation, bad
close codes, byte-by-byte writes) and to see exactly what the server sends
back, including whether it closed the TCP connection.  Real clients refuse
to do most of that, so this one builds every frame by hand.

It reuses RawConn from tests/server.py for the handshake (HTTP/1.1) and the
read buffer.  Everything here runs in the pytest process; nothing is
thread-safe.
"""

from __future__ import annotations

import base64
import hashlib
import os
import socket
import struct
import time
import zlib
from dataclasses import dataclass

from tests.server import SERVER_KIND, ConnectionClosed, RawConn, Response, Server

# RFC 6455 §1.3: the GUID appended to the key for Sec-WebSocket-Accept.
GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

OP_CONT, OP_TEXT, OP_BINARY = 0x0, 0x1, 0x2
OP_CLOSE, OP_PING, OP_PONG = 0x8, 0x9, 0xA
RSV1, RSV2, RSV3 = 0x4, 0x2, 0x1

#: Returned by read_close() when the server dropped TCP without a close frame.
ABNORMAL = 1006
#: A close frame with an empty payload (RFC 6455 §7.1.5: "no status code").
NO_STATUS = 1005


def accept_for(key: str) -> str:
    """Sec-WebSocket-Accept for `key` (RFC 6455 §4.2.2 item 5.4)."""
    return base64.b64encode(hashlib.sha1(key.encode() + GUID).digest()).decode()


def new_key() -> str:
    return base64.b64encode(os.urandom(16)).decode()


def mask_bytes(payload: bytes, key: bytes) -> bytes:
    """XOR with the 4-byte key repeated (RFC 6455 §5.3)."""
    if not payload:
        return b""
    n = len(payload)
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(payload, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def build_frame(
    opcode: int,
    payload: bytes = b"",
    *,
    fin: bool = True,
    rsv: int = 0,
    mask: bool = True,
    mask_key: bytes | None = None,
    length_bytes: int | None = None,
) -> bytes:
    """One frame.  `rsv` is a combination of RSV1/RSV2/RSV3; `length_bytes`
    forces the 7-bit (0), 16-bit (2) or 64-bit (8) length encoding, for
    non-minimal encodings."""
    b0 = (0x80 if fin else 0) | (rsv & 0x7) << 4 | (opcode & 0xF)
    n = len(payload)
    if length_bytes is None:
        length_bytes = 0 if n < 126 else 2 if n < 65536 else 8
    m = 0x80 if mask else 0
    if length_bytes == 0:
        head = struct.pack("!BB", b0, m | n)
    elif length_bytes == 2:
        head = struct.pack("!BBH", b0, m | 126, n)
    else:
        head = struct.pack("!BBQ", b0, m | 127, n)
    if not mask:
        return head + payload
    key = mask_key if mask_key is not None else os.urandom(4)
    return head + key + mask_bytes(payload, key)


def close_payload(code: int | None = None, reason: bytes | str = b"") -> bytes:
    if code is None:
        return b""
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


@dataclass
class Frame:
    fin: bool
    rsv: int
    opcode: int
    payload: bytes
    masked: bool

    @property
    def close_code(self) -> int:
        """The status code of a close frame; 1005 when it has none."""
        assert self.opcode == OP_CLOSE, self
        if len(self.payload) < 2:
            return NO_STATUS
        return struct.unpack("!H", self.payload[:2])[0]

    @property
    def close_reason(self) -> str:
        return self.payload[2:].decode("utf-8")


class HandshakeFailed(AssertionError):
    def __init__(self, resp: Response):
        super().__init__(f"handshake answered {resp.status}: {resp.raw_head!r} {resp.body[:200]!r}")
        self.response = resp


# -- permessage-deflate (RFC 7692) ---------------------------------------------


def parse_extensions(value: str | None) -> list[tuple[str, dict[str, str | None]]]:
    """Sec-WebSocket-Extensions → [(name, {param: value or None})]."""
    out = []
    if not value:
        return out
    for ext in value.split(","):
        parts = [p.strip() for p in ext.split(";")]
        params: dict[str, str | None] = {}
        for p in parts[1:]:
            k, eq, v = p.partition("=")
            params[k.strip()] = v.strip().strip('"') if eq else None
        out.append((parts[0], params))
    return out


class Deflate:
    """One direction of permessage-deflate: RFC 7692 §7.2.1 compression
    (strip the final 00 00 ff ff) and §7.2.2 decompression (append it)."""

    def __init__(self, wbits: int = 15, no_context_takeover: bool = False):
        self.wbits = wbits
        self.reset_each = no_context_takeover
        self._c = None
        self._d = None

    def compress(self, data: bytes) -> bytes:
        if self._c is None or self.reset_each:
            self._c = zlib.compressobj(zlib.Z_DEFAULT_COMPRESSION, zlib.DEFLATED, -self.wbits)
        out = self._c.compress(data) + self._c.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    def decompress(self, data: bytes) -> bytes:
        """Raises zlib.error when the peer used a larger window than
        `wbits` ("invalid distance too far back")."""
        if self._d is None or self.reset_each:
            self._d = zlib.decompressobj(-self.wbits)
        return self._d.decompress(data + b"\x00\x00\xff\xff")


# -- the client ----------------------------------------------------------------


class WSClient:
    """One WebSocket connection made by hand.  Use connect_ws() to make one."""

    def __init__(self, conn: RawConn, response: Response):
        self.conn = conn
        self.response = response
        self.extensions = parse_extensions(response.header("sec-websocket-extensions"))
        self.inflater: Deflate | None = None

    # -- writing --

    def send_raw(self, data: bytes, chunk: int | None = None, pause: float = 0.0) -> None:
        """Write bytes; with `chunk`, as separate TCP writes of that size
        (TCP_NODELAY is on, so each goes out as its own segment)."""
        if chunk is None:
            self.conn.send(data)
            return
        for i in range(0, len(data), chunk):
            self.conn.send(data[i : i + chunk])
            if pause:
                time.sleep(pause)

    def send_frame(self, opcode: int, payload: bytes | str = b"", chunk: int | None = None, **kw) -> None:
        if isinstance(payload, str):
            payload = payload.encode()
        self.send_raw(build_frame(opcode, payload, **kw), chunk)

    def send_text(self, text: str | bytes, **kw) -> None:
        self.send_frame(OP_TEXT, text, **kw)

    def send_binary(self, data: bytes, **kw) -> None:
        self.send_frame(OP_BINARY, data, **kw)

    def send_close(self, code: int | None = 1000, reason: bytes | str = b"", **kw) -> None:
        self.send_frame(OP_CLOSE, close_payload(code, reason), **kw)

    def send_ping(self, payload: bytes = b"", **kw) -> None:
        self.send_frame(OP_PING, payload, **kw)

    # -- reading --

    def _read(self, n: int) -> bytes:
        return self.conn.read_exact(n)

    def read_frame(self, timeout: float = 5.0) -> Frame:
        """The next frame; raises ConnectionClosed on EOF and socket.timeout
        (TimeoutError) when nothing arrives in time."""
        old = self.conn.sock.gettimeout()
        self.conn.sock.settimeout(timeout)
        try:
            b0, b1 = self._read(2)
            n = b1 & 0x7F
            if n == 126:
                n = struct.unpack("!H", self._read(2))[0]
            elif n == 127:
                n = struct.unpack("!Q", self._read(8))[0]
            key = self._read(4) if b1 & 0x80 else None
            payload = self._read(n)
            if key:
                payload = mask_bytes(payload, key)
            return Frame(bool(b0 & 0x80), (b0 >> 4) & 0x7, b0 & 0xF, payload, key is not None)
        finally:
            self.conn.sock.settimeout(old)

    def read_message(self, timeout: float = 5.0) -> tuple[int, bytes]:
        """(opcode, payload) of the next data message, reassembled and
        decompressed; pings are answered, pongs skipped.  A close frame
        raises AssertionError with its code."""
        deadline = time.monotonic() + timeout
        opcode, parts, compressed = None, [], False
        while True:
            f = self.read_frame(max(0.01, deadline - time.monotonic()))
            assert not f.masked, "server frames must not be masked (RFC 6455 §5.1)"
            if f.opcode == OP_PING:
                self.send_frame(OP_PONG, f.payload)
                continue
            if f.opcode == OP_PONG:
                continue
            if f.opcode == OP_CLOSE:
                raise AssertionError(f"expected a message, got close {f.close_code} {f.payload[2:]!r}")
            if opcode is None:
                assert f.opcode in (OP_TEXT, OP_BINARY), f"message starts with opcode {f.opcode}"
                opcode, compressed = f.opcode, bool(f.rsv & RSV1)
                assert f.rsv & ~RSV1 == 0, f
            else:
                assert f.opcode == OP_CONT and f.rsv == 0, f
            parts.append(f.payload)
            if f.fin:
                data = b"".join(parts)
                if compressed:
                    assert self.inflater is not None, "RSV1 without permessage-deflate"
                    data = self.inflater.decompress(data)
                return opcode, data

    def read_text(self, timeout: float = 5.0) -> str:
        op, data = self.read_message(timeout)
        assert op == OP_TEXT, (op, data[:100])
        return data.decode("utf-8")

    def read_binary(self, timeout: float = 5.0) -> bytes:
        op, data = self.read_message(timeout)
        assert op == OP_BINARY, (op, data[:100])
        return data

    def read_close(self, timeout: float = 5.0) -> Frame | None:
        """Skip data and pong frames until a close frame; None if the server
        dropped TCP without one."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self.read_frame(max(0.01, deadline - time.monotonic()))
            except ConnectionClosed:
                return None
            if f.opcode == OP_CLOSE:
                return f

    def expect_close(self, code: int, timeout: float = 5.0) -> Frame:
        """The server fails or closes the connection with `code`, then closes
        TCP (RFC 6455 §7.1.1: the server closes the TCP connection first)."""
        f = self.read_close(timeout)
        assert f is not None, f"server dropped TCP without a close frame (wanted {code})"
        assert f.close_code == code, f"close code {f.close_code} {f.payload[2:]!r}, wanted {code}"
        # Answer the close (the server may wait for it) and see TCP close.
        try:
            self.send_close(code if code not in (1005, 1006, 1015) else 1000)
        except OSError:
            pass
        self.expect_eof()
        return f

    def expect_eof(self, timeout: float = 3.0) -> None:
        """After the close handshake the server closes the TCP connection
        and sends nothing more."""
        old = self.conn.sock.gettimeout()
        self.conn.sock.settimeout(timeout)
        try:
            while True:
                try:
                    f = self.read_frame(timeout)
                except ConnectionClosed:
                    return
                raise AssertionError(f"frame after close: {f}")
        except (socket.timeout, TimeoutError):
            raise AssertionError(f"server did not close TCP within {timeout}s after the close handshake")
        finally:
            self.conn.sock.settimeout(old)

    def close(self, code: int = 1000, reason: str = "") -> Frame:
        """Clean close from our side: send close, read the echo, see EOF."""
        self.send_close(code, reason)
        f = self.read_close()
        assert f is not None, "no close frame in answer to ours"
        self.expect_eof()
        return f

    def abort(self) -> None:
        self.conn.close()

    def __enter__(self) -> "WSClient":
        return self

    def __exit__(self, *exc) -> None:
        self.conn.close()


def handshake_request(
    path: str = "/",
    *,
    key: str | None = None,
    version: str | None = "13",
    subprotocols=(),
    extensions: str | None = None,
    headers=(),
    host: str = "127.0.0.1",
) -> bytes:
    hs = [("Host", host), ("Upgrade", "websocket"), ("Connection", "Upgrade")]
    if key is not None:
        hs.append(("Sec-WebSocket-Key", key))
    if version is not None:
        hs.append(("Sec-WebSocket-Version", version))
    if subprotocols:
        hs.append(("Sec-WebSocket-Protocol", ", ".join(subprotocols)))
    if extensions:
        hs.append(("Sec-WebSocket-Extensions", extensions))
    hs.extend(headers)
    head = f"GET {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode("latin-1")


def handshake(server: Server, path: str = "/", *, timeout: float = 5.0, **kw) -> tuple[RawConn, Response]:
    """Send a handshake and read the answer (any status) without judging it."""
    conn = server.connect(timeout=timeout)
    try:
        conn.send(handshake_request(path, **kw))
        resp = conn.read_response()
    except BaseException:
        conn.close()
        raise
    return conn, resp


def connect_ws(server: Server, path: str = "/", *, deflate: Deflate | None = None, timeout: float = 5.0, **kw) -> WSClient:
    """Open a WebSocket; checks the 101 and Sec-WebSocket-Accept.  With
    `deflate`, the compressor the test will use; the inflater for the
    server's messages follows what the server answered."""
    kw.setdefault("key", new_key())
    conn, resp = handshake(server, path, timeout=timeout, **kw)
    if resp.status != 101:
        conn.close()
        raise HandshakeFailed(resp)
    assert resp.header("sec-websocket-accept") == accept_for(kw["key"]), resp.raw_head
    assert (resp.header("upgrade") or "").lower() == "websocket", resp.raw_head
    assert "upgrade" in (resp.header("connection") or "").lower(), resp.raw_head
    ws = WSClient(conn, resp)
    for name, params in ws.extensions:
        if name == "permessage-deflate":
            bits = params.get("server_max_window_bits")
            ws.inflater = Deflate(int(bits) if bits else 15, "server_no_context_takeover" in params)
    return ws


def no_deflate_args() -> list[str]:
    """The server option that turns permessage-deflate off (uvicorn spells it
    as an option with a value)."""
    if SERVER_KIND == "uvicorn":
        return ["--ws-per-message-deflate", "false"]
    return ["--no-ws-per-message-deflate"]
