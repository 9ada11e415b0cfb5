"""WebSocket conformance through the real server, with raw frames.

The Autobahn testsuite cannot run on this machine, so this module covers its
areas with hand-built frames from tests/ws_client.py against the echo app in
tests/apps/ws_app.py: the handshake (RFC 6455 §4), framing and payload
lengths (§5.2, Autobahn 1.x), ping/pong (§5.5, 2.x), reserved bits (3.x),
opcodes (4.x), fragmentation (§5.4, 5.x), UTF-8 (§8.1, 6.x), close handling
and codes (§7, 7.x), limits (9.x) and permessage-deflate (RFC 7692, 12.x and
13.x).  Every failure case checks the exact close code and that the server
then closes TCP.

The same tests run against uvicorn (POUNCE_TEST_SERVER=uvicorn, with the
`websockets` implementation); behaviour that RFC 6455 leaves open and where
Pounce made its own choice is marked pounce_only.
"""

from __future__ import annotations

import random
import struct
import uuid
import zlib

import pytest

from tests.server import wait_record
from tests.ws_client import (
    OP_BINARY,
    OP_CLOSE,
    OP_CONT,
    OP_PING,
    OP_PONG,
    OP_TEXT,
    RSV1,
    RSV2,
    RSV3,
    Deflate,
    WSClient,
    accept_for,
    build_frame,
    connect_ws,
    handshake,
    handshake_request,
    new_key,
    no_deflate_args,
)

APP = "tests.apps.ws_app:app"
MAX_SIZE = 65536



@pytest.fixture(scope="module")
def srv(module_server_factory):
    """The echo app with default settings."""
    return module_server_factory(APP)


@pytest.fixture(scope="module")
def small(module_server_factory):
    """The echo app with --ws-max-size 65536."""
    return module_server_factory(APP, "--ws-max-size", str(MAX_SIZE))


@pytest.fixture
def token():
    return uuid.uuid4().hex


def echo(srv, **kw):
    return connect_ws(srv, "/echo", **kw)


def assert_echo(ws, text="still alive"):
    """The connection still works: one text round trip."""
    ws.send_text(text)
    assert ws.read_text() == text


# -- handshake (RFC 6455 §4.2) ----------------------------------------------------


def test_handshake_accept_value(srv):
    # The RFC's own example key and answer (§1.3).
    key = "dGhlIHNhbXBsZSBub25jZQ=="
    assert accept_for(key) == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    ws = echo(srv, key=key)
    assert ws.response.status == 101
    assert ws.response.header("sec-websocket-accept") == "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="
    ws.close()


@pytest.mark.pounce_only("uvicorn's websockets stack answers 400; §4.2.2 suggests 426, which Pounce sends")
def test_handshake_wrong_version_is_426(srv):
    conn, resp = handshake(srv, "/echo", key=new_key(), version="8")
    conn.close()
    assert resp.status == 426
    assert resp.header("sec-websocket-version") == "13"


@pytest.mark.pounce_only("uvicorn's websockets stack answers 400; §4.2.2 suggests 426, which Pounce sends")
def test_handshake_missing_version_is_426(srv):
    conn, resp = handshake(srv, "/echo", key=new_key(), version=None)
    conn.close()
    assert resp.status == 426
    assert resp.header("sec-websocket-version") == "13"


@pytest.mark.parametrize("key", ["short", "AAAAAAAAAAAAAAAAAAAAAAAAAAAA", "!!!!!!!!!!!!!!!!!!!!!!==", None])
def test_handshake_bad_key_is_400(srv, key):
    conn, resp = handshake(srv, "/echo", key=key)
    conn.close()
    assert resp.status == 400


@pytest.mark.pounce_only("uvicorn answers 405; Pounce treats any broken handshake as 400 (docs/websocket.md)")
def test_handshake_post_is_400(srv):
    conn = srv.connect()
    req = (
        "POST /echo HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        f"Sec-WebSocket-Key: {new_key()}\r\nSec-WebSocket-Version: 13\r\nContent-Length: 0\r\n\r\n"
    )
    conn.send(req.encode())
    assert conn.read_response().status == 400
    conn.close()


def test_handshake_header_variants(srv):
    # Tokens are case-insensitive and Connection may list more than one
    # (Firefox sends "keep-alive, Upgrade").
    key = new_key()
    conn = srv.connect()
    conn.send(
        (
            "GET /echo HTTP/1.1\r\nHost: x\r\nUpgrade: WebSocket\r\n"
            f"Connection: keep-alive, Upgrade\r\nsec-websocket-key: {key}\r\n"
            "SEC-WEBSOCKET-VERSION: 13\r\n\r\n"
        ).encode()
    )
    resp = conn.read_response()
    conn.close()
    assert resp.status == 101
    assert resp.header("sec-websocket-accept") == accept_for(key)


@pytest.mark.pounce_only("uvicorn never delivers a frame sent before the 101 arrived (the client broke §4.1)")
def test_frame_in_same_write_as_handshake(srv):
    # A client that does not wait for the 101 (§4.1 says it should): the
    # bytes after the head belong to the WebSocket and must not be lost.
    key = new_key()
    conn = srv.connect()
    conn.send(handshake_request("/echo", key=key) + build_frame(OP_TEXT, b"early"))
    resp = conn.read_response()
    assert resp.status == 101
    ws = WSClient(conn, resp)
    with ws:
        assert ws.read_text() == "early"
        ws.close()


def test_close_before_accept_is_403(srv):
    conn, resp = handshake(srv, "/reject", key=new_key())
    conn.close()
    assert resp.status == 403


def test_denial_response(srv):
    conn, resp = handshake(srv, "/deny", key=new_key())
    conn.close()
    assert resp.status == 401
    assert resp.body == b"denied"
    assert resp.header("x-deny") == "1"
    assert resp.header("sec-websocket-accept") is None


def test_plain_http_still_served(srv):
    with srv.connect() as c:
        assert c.request("GET", "/").body == b"ok"


# -- framing and payload lengths (Autobahn 1.x) ------------------------------------

LENGTHS = [0, 1, 125, 126, 127, 128, 65535, 65536, 1 << 20]


@pytest.mark.parametrize("n", LENGTHS)
@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_echo_lengths(srv, n, opcode):
    data = (b"*" * n) if opcode == OP_TEXT else (bytes(range(256)) * (n // 256 + 1))[:n]
    with echo(srv) as ws:
        ws.send_frame(opcode, data)
        op, got = ws.read_message()
        assert (op, len(got)) == (opcode, n)
        assert got == data
        ws.close()


@pytest.mark.parametrize("n", [0, 125, 126, 65536])
def test_frame_written_byte_by_byte(srv, n):
    data = b"x" * n
    with echo(srv) as ws:
        # The header bytes one at a time, then the payload in small pieces.
        frame = build_frame(OP_BINARY, data)
        head_len = len(frame) - n
        # A pause between header bytes makes each one its own read.
        ws.send_raw(frame[:head_len], chunk=1, pause=0.002)
        ws.send_raw(frame[head_len:], chunk=1 if n <= 126 else 997)
        assert ws.read_binary() == data
        ws.close()


def test_non_minimal_length_encoding_accepted(srv):
    # §5.2 asks senders for the minimal encoding but gives receivers no rule.
    with echo(srv) as ws:
        ws.send_frame(OP_TEXT, b"abc", length_bytes=2)
        ws.send_frame(OP_TEXT, b"defg", length_bytes=8)
        assert ws.read_text() == "abc"
        assert ws.read_text() == "defg"
        ws.close()


def test_many_messages_in_one_write(srv):
    with echo(srv) as ws:
        ws.send_raw(b"".join(build_frame(OP_TEXT, f"m{i}".encode()) for i in range(100)))
        for i in range(100):
            assert ws.read_text() == f"m{i}"
        ws.close()


def test_unmasked_frame_is_1002(srv):
    with echo(srv) as ws:
        ws.send_text("hello", mask=False)
        ws.expect_close(1002)


@pytest.mark.pounce_only("uvicorn answers 1009 (size limit) before the §5.2 top-bit rule, which Pounce checks first")
def test_length_with_top_bit_is_1002(srv):
    with echo(srv) as ws:
        ws.send_raw(bytes([0x82, 0xFF]) + struct.pack("!Q", 1 << 63) + b"\x00" * 4)
        ws.expect_close(1002)


# -- ping and pong (§5.5.2, §5.5.3; Autobahn 2.x) -----------------------------------


@pytest.mark.parametrize("payload", [b"", b"Hello, world!", bytes([0, 255, 254, 253, 252, 251, 0, 255]), b"*" * 125])
def test_ping_answered_with_same_payload(srv, payload):
    with echo(srv) as ws:
        ws.send_ping(payload)
        f = ws.read_frame()
        assert (f.opcode, f.fin, f.rsv, f.payload) == (OP_PONG, True, 0, payload)
        ws.close()


def test_ping_125_written_byte_by_byte(srv):
    with echo(srv) as ws:
        ws.send_ping(b"p" * 125, chunk=1)
        f = ws.read_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"p" * 125)
        ws.close()


def test_ping_126_is_1002(srv):
    with echo(srv) as ws:
        ws.send_ping(b"p" * 126)
        ws.expect_close(1002)


def test_unsolicited_pong_is_ignored(srv):
    with echo(srv) as ws:
        ws.send_frame(OP_PONG)
        ws.send_frame(OP_PONG, b"unsolicited")
        ws.send_ping(b"after")
        f = ws.read_frame()
        assert (f.opcode, f.payload) == (OP_PONG, b"after")
        assert_echo(ws)
        ws.close()


def test_ten_pings(srv):
    with echo(srv) as ws:
        for i in range(10):
            ws.send_ping(f"ping {i}".encode(), chunk=1 if i % 2 else None)
        for i in range(10):
            f = ws.read_frame()
            assert (f.opcode, f.payload) == (OP_PONG, f"ping {i}".encode())
        ws.close()


# -- reserved bits (Autobahn 3.x) ---------------------------------------------------


@pytest.mark.parametrize(
    "opcode,rsv",
    [
        (OP_TEXT, RSV1),  # RSV1 without permessage-deflate negotiated
        (OP_TEXT, RSV2),
        (OP_TEXT, RSV3),
        (OP_BINARY, RSV1 | RSV2),
        (OP_BINARY, RSV2 | RSV3),
        (OP_PING, RSV3),
        (OP_CLOSE, RSV1 | RSV2 | RSV3),
    ],
)
def test_reserved_bits_are_1002(srv, opcode, rsv):
    with echo(srv) as ws:
        assert_echo(ws)  # a good message first, answered, then the bad frame
        payload = struct.pack("!H", 1000) if opcode == OP_CLOSE else b"rsv"
        ws.send_frame(opcode, payload, rsv=rsv)
        ws.expect_close(1002)


# -- opcodes (Autobahn 4.x) ---------------------------------------------------------


@pytest.mark.parametrize("opcode", [3, 4, 5, 6, 7, 0xB, 0xC, 0xD, 0xE, 0xF])
def test_reserved_opcodes_are_1002(srv, opcode):
    with echo(srv) as ws:
        assert_echo(ws)
        ws.send_frame(opcode, b"reserved")
        ws.expect_close(1002)


# -- fragmentation (§5.4; Autobahn 5.x) ---------------------------------------------


@pytest.mark.parametrize("opcode", [OP_PING, OP_PONG])
def test_fragmented_control_frame_is_1002(srv, opcode):
    with echo(srv) as ws:
        ws.send_frame(opcode, b"frag", fin=False)
        ws.send_frame(OP_CONT, b"ment")
        ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
@pytest.mark.parametrize("chunk", [None, 1])
def test_two_fragments(srv, opcode, chunk):
    with echo(srv) as ws:
        ws.send_frame(opcode, b"frag", fin=False, chunk=chunk)
        ws.send_frame(OP_CONT, b"ment", chunk=chunk)
        assert ws.read_message() == (opcode, b"fragment")
        ws.close()


def test_fragments_with_pings_between(srv):
    with echo(srv) as ws:
        ws.send_text(b"fr", fin=False)
        ws.send_ping(b"one")
        ws.send_frame(OP_CONT, b"ag", fin=False)
        ws.send_ping(b"two", chunk=1)
        ws.send_frame(OP_CONT, b"ment")
        f1, f2 = ws.read_frame(), ws.read_frame()
        assert [(f.opcode, f.payload) for f in (f1, f2)] == [(OP_PONG, b"one"), (OP_PONG, b"two")]
        assert ws.read_text() == "fragment"
        ws.close()


def test_many_small_fragments(srv):
    data = bytes(range(256)) * 40
    with echo(srv) as ws:
        pieces = [data[i : i + 7] for i in range(0, len(data), 7)]
        for i, p in enumerate(pieces):
            ws.send_frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1)
        assert ws.read_binary() == data
        ws.close()


def test_empty_fragments(srv):
    with echo(srv) as ws:
        ws.send_text(b"", fin=False)
        ws.send_frame(OP_CONT, b"", fin=False)
        ws.send_frame(OP_CONT, b"")
        assert ws.read_text() == ""
        ws.close()


@pytest.mark.parametrize("fin", [True, False])
def test_continuation_without_start_is_1002(srv, fin):
    with echo(srv) as ws:
        ws.send_frame(OP_CONT, b"orphan", fin=fin)
        ws.expect_close(1002)


@pytest.mark.parametrize("opcode", [OP_TEXT, OP_BINARY])
def test_new_message_inside_fragmented_one_is_1002(srv, opcode):
    with echo(srv) as ws:
        ws.send_text(b"first", fin=False)
        ws.send_frame(opcode, b"second")
        ws.expect_close(1002)


# -- UTF-8 (§8.1; Autobahn 6.x) -----------------------------------------------------

VALID = [
    "",
    "Hello-µ@ßöäüàá-UTF-8!!",
    "κόσμε",
    "\u0080\u07ff\u0800\uffff\U00010000\U0010ffff",
    "\ud7ff\ue000\ufffd",
]

INVALID = [
    b"\x80",  # lone continuation byte
    b"\xc0\xaf",  # overlong "/"
    b"\xe0\x80\xaf",  # overlong, 3 bytes
    b"\xed\xa0\x80",  # UTF-16 surrogate U+D800
    b"\xf4\x90\x80\x80",  # above U+10FFFF
    b"\xfe",
    b"\xff",
    b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xed\xa0\x80edited",
    b"ok\xce",  # message ends inside a code point
]


@pytest.mark.parametrize("text", VALID)
def test_valid_utf8_echoed(srv, text):
    with echo(srv) as ws:
        ws.send_text(text.encode())
        assert ws.read_text() == text
        ws.close()


@pytest.mark.parametrize("text", ["κόσμε", "a\U0010ffffb€"])
def test_valid_utf8_split_at_every_byte(srv, text):
    data = text.encode()
    with echo(srv) as ws:
        for i, b in enumerate(data):
            ws.send_frame(OP_TEXT if i == 0 else OP_CONT, bytes([b]), fin=i == len(data) - 1)
        assert ws.read_text() == text
        ws.close()


@pytest.mark.parametrize("data", INVALID, ids=lambda d: d[:8].hex())
def test_invalid_utf8_is_1007(srv, data):
    with echo(srv) as ws:
        ws.send_text(data)
        ws.expect_close(1007)


@pytest.mark.parametrize("data", INVALID[:5], ids=lambda d: d.hex())
def test_invalid_utf8_split_across_fragments_is_1007(srv, data):
    with echo(srv) as ws:
        ws.send_text(b"ok" + data[:1], fin=False)
        ws.send_frame(OP_CONT, data[1:] + b"rest")
        ws.expect_close(1007)


def test_invalid_utf8_in_compressed_text_is_1007(srv):
    d = Deflate()
    with echo(srv, extensions="permessage-deflate") as ws:
        assert ws.inflater is not None
        ws.send_text(d.compress(b"bad \xff here"), rsv=RSV1)
        ws.expect_close(1007)


@pytest.mark.pounce_only("fail-fast UTF-8 (Autobahn 6.4.x) is optional; uvicorn's stack checks at message end")
def test_invalid_utf8_fails_fast_inside_unfinished_message(srv):
    with echo(srv) as ws:
        ws.send_text(b"\xce\xba\xe1\xbd\xb9\xcf\x83\xce\xbc\xce\xb5\xf4\x90\x80\x80", fin=False)
        ws.expect_close(1007, timeout=2)


# -- close handling (§7; Autobahn 7.x) ----------------------------------------------


def test_close_after_echo(srv):
    with echo(srv) as ws:
        assert_echo(ws)
        f = ws.close(1000, "done")
        assert f.close_code == 1000


def test_close_with_empty_payload(srv, token, record_dir):
    with connect_ws(srv, f"/echo?token={token}") as ws:
        ws.send_close(None)
        f = ws.read_close()
        assert f is not None
        # Echoing "no status" is either an empty close or 1000 (§7.4.1).
        assert f.payload == b"" or f.close_code == 1000, f
        ws.expect_eof()
    # The app hears 1005, "no status code was present" (§7.1.5).
    assert "disconnect 1005" in wait_record(record_dir, token, "disconnect")


@pytest.mark.parametrize("code", [1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 3000, 3999, 4000, 4999])
def test_valid_close_code_echoed(srv, token, record_dir, code):
    with connect_ws(srv, f"/echo?token={token}") as ws:
        f = ws.close(code, "reason")
        assert f.close_code == code
    assert f"disconnect {code}" in wait_record(record_dir, token, "disconnect")


@pytest.mark.parametrize("code", [0, 999, 1004, 1005, 1006, 1015, 1016, 1100, 2000, 2999, 5000, 65535])
def test_invalid_close_code_is_1002(srv, code):
    with echo(srv) as ws:
        ws.send_close(code)
        ws.expect_close(1002)


def test_close_payload_of_one_byte_is_1002(srv):
    with echo(srv) as ws:
        ws.send_frame(OP_CLOSE, b"\x03")
        ws.expect_close(1002)


def test_close_reason_123_bytes_ok(srv):
    with echo(srv) as ws:
        f = ws.close(1000, "r" * 123)
        assert f.close_code == 1000


def test_close_reason_124_bytes_is_1002(srv):
    with echo(srv) as ws:
        ws.send_close(1000, "r" * 124)  # 126-byte control frame
        ws.expect_close(1002)


def test_close_reason_invalid_utf8_is_1007(srv):
    with echo(srv) as ws:
        ws.send_close(1000, b"\xce\xba\xe1\xbd\xb9\xcf\x83\xed\xa0\x80")
        ws.expect_close(1007)


def test_frames_after_close_are_ignored(srv):
    with echo(srv) as ws:
        ws.send_close(1000)
        ws.send_close(1001)  # a second close
        ws.send_ping(b"after close")
        ws.send_text("after close")
        f = ws.read_close()
        assert f is not None and f.close_code == 1000
        ws.expect_eof()


@pytest.mark.pounce_only("Autobahn 7.1.5 expects 1000; uvicorn's websockets stack answers 1002 'incomplete fragmented message'")
def test_close_inside_fragmented_message(srv):
    with echo(srv) as ws:
        ws.send_text(b"frag", fin=False)
        ws.send_close(1000)
        ws.send_frame(OP_CONT, b"ment")
        f = ws.read_close()
        assert f is not None and f.close_code == 1000
        ws.expect_eof()


def test_app_close_code_and_reason(srv):
    with connect_ws(srv, "/close?code=4321&reason=see%20you") as ws:
        f = ws.read_close()
        assert f is not None and (f.close_code, f.close_reason) == (4321, "see you")
        ws.send_close(4321)
        ws.expect_eof()


def test_app_close_defaults_to_1000(srv):
    with connect_ws(srv, "/close") as ws:
        f = ws.read_close()
        assert f is not None and f.close_code == 1000
        ws.send_close(1000)
        ws.expect_eof()


# -- limits (Autobahn 9.x with a small --ws-max-size) -------------------------------


def test_message_at_limit_echoed(small):
    data = b"m" * MAX_SIZE
    with echo(small) as ws:
        ws.send_binary(data)
        assert ws.read_binary() == data
        ws.close()


def test_message_over_limit_is_1009(small):
    with echo(small) as ws:
        ws.send_binary(b"m" * (MAX_SIZE + 1))
        ws.expect_close(1009)


def test_fragmented_message_over_limit_is_1009(small):
    with echo(small) as ws:
        piece = b"f" * 4096
        for _ in range(MAX_SIZE // len(piece)):
            ws.send_frame(OP_BINARY if _ == 0 else OP_CONT, piece, fin=False)
        ws.send_frame(OP_CONT, b"one too many")
        ws.expect_close(1009)


def test_decompression_bomb_is_1009(small):
    d = Deflate()
    bomb = d.compress(b"\0" * (10 << 20))
    assert len(bomb) < MAX_SIZE
    with echo(small, extensions="permessage-deflate") as ws:
        assert ws.inflater is not None
        ws.send_binary(bomb, rsv=RSV1)
        ws.expect_close(1009)


# -- permessage-deflate (RFC 7692; Autobahn 12.x/13.x) -------------------------------


def deflate_params(ws):
    for name, params in ws.extensions:
        if name == "permessage-deflate":
            return params
    return None


def roundtrip_compressed(ws, d, messages):
    for m in messages:
        ws.send_frame(OP_BINARY, d.compress(m), rsv=RSV1)
        assert ws.read_binary() == m


MESSAGES = [b"", b"a", b"hello hello hello hello", bytes(range(256)) * 64, b"z" * 100000]


def test_deflate_negotiated_and_echo(srv):
    d = Deflate()
    with echo(srv, extensions="permessage-deflate") as ws:
        assert deflate_params(ws) is not None, ws.response.raw_head
        roundtrip_compressed(ws, d, MESSAGES * 2)
        # Uncompressed messages (RSV1 clear) are still fine (RFC 7692 §6).
        ws.send_text("plain")
        assert ws.read_text() == "plain"
        ws.close()


def test_deflate_compressed_fragments(srv):
    d = Deflate()
    data = b"fragmented and compressed " * 1000
    comp = d.compress(data)
    with echo(srv, extensions="permessage-deflate") as ws:
        pieces = [comp[i : i + 100] for i in range(0, len(comp), 100)]
        for i, p in enumerate(pieces):
            # RSV1 only on the first frame (RFC 7692 §6.1).
            ws.send_frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1,
                          rsv=RSV1 if i == 0 else 0)
        assert ws.read_binary() == data
        ws.close()


def test_deflate_rsv1_on_continuation_is_1002(srv):
    d = Deflate()
    comp = d.compress(b"hello world, hello world")
    with echo(srv, extensions="permessage-deflate") as ws:
        ws.send_frame(OP_BINARY, comp[:5], fin=False, rsv=RSV1)
        ws.send_frame(OP_CONT, comp[5:], rsv=RSV1)
        ws.expect_close(1002)


def test_deflate_rsv1_on_control_frame_is_1002(srv):
    with echo(srv, extensions="permessage-deflate") as ws:
        ws.send_ping(b"x", rsv=RSV1)
        ws.expect_close(1002)


def test_deflate_corrupt_data_is_1002(srv):
    with echo(srv, extensions="permessage-deflate") as ws:
        ws.send_binary(b"\xff\xff\xff\xff\xff", rsv=RSV1)
        ws.expect_close(1002)


def test_deflate_client_no_context_takeover(srv):
    d = Deflate(no_context_takeover=True)
    with echo(srv, extensions="permessage-deflate; client_no_context_takeover") as ws:
        params = deflate_params(ws)
        assert params is not None and "client_no_context_takeover" in params, ws.response.raw_head
        roundtrip_compressed(ws, d, MESSAGES)
        ws.close()


def test_deflate_server_no_context_takeover(srv):
    with echo(srv, extensions="permessage-deflate; server_no_context_takeover") as ws:
        params = deflate_params(ws)
        assert params is not None and "server_no_context_takeover" in params, ws.response.raw_head
        assert ws.inflater.reset_each
        # Each reply must inflate with a fresh decompressor.
        d = Deflate()
        roundtrip_compressed(ws, d, [b"repeat me " * 50] * 3)
        ws.close()


class WindowedInflate:
    """Inflates the server's messages (RFC 7692 §7.2.2) as a client with only
    a 2**wbits window would, and records each message's compressed size.

    zlib checks a back-reference against its window plus whatever the same
    inflate() call has written so far, so one big call accepts references
    far beyond the window.  Here each call writes at most 256 bytes: a
    reference farther back than 2**wbits + 256 fails with "invalid distance
    too far back"."""

    STEP = 256

    def __init__(self, wbits: int, no_context_takeover: bool = False):
        self.wbits = wbits
        self.reset_each = no_context_takeover
        self.sizes: list[int] = []
        self._d = None

    def decompress(self, data: bytes) -> bytes:
        self.sizes.append(len(data))
        if self._d is None or self.reset_each:
            self._d = zlib.decompressobj(-self.wbits)
        out = [self._d.decompress(data + b"\x00\x00\xff\xff", self.STEP)]
        while True:
            # The rest of the input, then any output still pending in zlib.
            chunk = self._d.decompress(self._d.unconsumed_tail, self.STEP)
            if not chunk and not self._d.unconsumed_tail:
                return b"".join(out)
            out.append(chunk)


def test_windowed_inflate_enforces_its_window():
    """WindowedInflate fails on a reference beyond its window (so the window
    tests below can fail) and decodes one within it."""
    block = random.Random(1).randbytes(10240)
    with pytest.raises(zlib.error, match="too far back"):
        WindowedInflate(12).decompress(Deflate(15).compress(block * 3))
    assert WindowedInflate(15).decompress(Deflate(15).compress(block * 3)) == block * 3
    small = block[:3000]
    assert WindowedInflate(12).decompress(Deflate(12).compress(small * 3)) == small * 3


@pytest.mark.parametrize("bits", [9, 10, 12, 15])
def test_deflate_server_max_window_bits(srv, bits):
    with echo(srv, extensions=f"permessage-deflate; server_max_window_bits={bits}") as ws:
        params = deflate_params(ws)
        assert params is not None, ws.response.raw_head
        got = params.get("server_max_window_bits")
        # The server may use a smaller window, never a larger one (§7.1.2.1).
        assert got is not None and 8 <= int(got) <= bits, ws.response.raw_head
        got = int(got)
        # Decompress with exactly the window the server announced.
        ws.inflater = WindowedInflate(got, "server_no_context_takeover" in params)
        # A random block repeated: each copy could refer back one block,
        # which is beyond the announced window but within zlib's largest
        # (2**15 - 262), so a server that kept a larger window would use
        # those references.  (Random bytes hold no nearer repeats.)
        size = 10240 if got <= 13 else 3 << (got - 1)
        block = random.Random(bits).randbytes(size)
        payload = block * 3
        roundtrip_compressed(ws, Deflate(), [payload, payload])
        if got < 15:
            # The sizes agree: with the small window nothing repeats, so
            # nothing shrinks (a 2**15 window would send about a third).
            assert len(ws.inflater.sizes) == 2, ws.inflater.sizes
            assert min(ws.inflater.sizes) > len(payload) * 2 // 3, (ws.inflater.sizes, len(payload))
        ws.close()


@pytest.mark.parametrize("bits", [None, 9, 11])
def test_deflate_client_max_window_bits(srv, bits):
    offer = "permessage-deflate; client_max_window_bits" + (f"={bits}" if bits else "")
    with echo(srv, extensions=offer) as ws:
        params = deflate_params(ws)
        assert params is not None, ws.response.raw_head
        # The answer names the client's window (RFC 7692 §7.1.2.2 lets a
        # server leave it out, but Pounce and uvicorn's websockets both give
        # it whenever it is offered), within the offered limit.
        got = params.get("client_max_window_bits")
        assert got is not None and got.isdigit(), ws.response.raw_head
        limit = int(got)
        assert 8 <= limit <= (bits or 15), ws.response.raw_head
        # Compress with exactly that window (zlib's smallest raw window is
        # 9), with references reaching across nearly all of it, in small
        # fragments: the server then inflates a little at a time and needs
        # the whole window it announced (in one go zlib would also accept
        # references beyond its window).
        wbits = max(limit, 9)
        d = Deflate(wbits)
        block = random.Random(2).randbytes((1 << wbits) - 300)
        far = d.compress(block * 2)
        assert len(far) < len(block) * 3 // 2  # the second copy was a reference
        pieces = [far[i : i + 64] for i in range(0, len(far), 64)]
        for i, p in enumerate(pieces):
            ws.send_frame(OP_BINARY if i == 0 else OP_CONT, p, fin=i == len(pieces) - 1,
                          rsv=RSV1 if i == 0 else 0)
        assert ws.read_binary() == block * 2
        roundtrip_compressed(ws, d, MESSAGES)
        ws.close()


def test_deflate_first_acceptable_offer_taken(srv):
    # An offer with an unknown parameter is declined, the next one taken.
    with echo(srv, extensions="permessage-deflate; foo=1, permessage-deflate; client_no_context_takeover") as ws:
        params = deflate_params(ws)
        assert params is not None and "foo" not in params, ws.response.raw_head
        roundtrip_compressed(ws, Deflate(no_context_takeover=True), MESSAGES[:3])
        ws.close()


def test_deflate_context_takeover_across_messages(srv):
    # Our compressor keeps its window: later messages refer back to earlier ones.
    d = Deflate()
    msg = bytes((i * 31) % 251 for i in range(2000))
    first, second = d.compress(msg), d.compress(msg)
    assert len(second) < len(first) // 4
    with echo(srv, extensions="permessage-deflate") as ws:
        for comp in (first, second):
            ws.send_binary(comp, rsv=RSV1)
            assert ws.read_binary() == msg
        ws.close()


def test_unknown_extension_ignored(srv):
    with echo(srv, extensions="x-unknown-ext; a=1") as ws:
        assert ws.extensions == []
        assert_echo(ws)
        ws.close()


def test_deflate_off_by_setting(module_server_factory):
    s = module_server_factory(APP, *no_deflate_args())
    with echo(s, extensions="permessage-deflate; client_max_window_bits") as ws:
        assert ws.extensions == [], ws.response.raw_head
        ws.send_text("x", rsv=RSV1)  # nothing negotiated: RSV1 is an error
        ws.expect_close(1002)
