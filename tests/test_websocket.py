"""WebSocket interop through the real server with a real client.

The Python `websockets` library (its sync client) talks to the raw ASGI apps
in tests/apps/ws_app.py and to Starlette and FastAPI endpoints in
tests/apps/ws_frameworks.py: the scope, echo with and without compression,
large messages, subprotocols, accept headers, denial responses, send after
close, disconnect detection, concurrent sends, keepalive pings and graceful
shutdown.  Raw-frame conformance is in test_websocket_conformance.py.
"""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import struct
import time
import uuid

import pytest
from websockets.exceptions import ConnectionClosed, ConnectionClosedError, InvalidStatus
from websockets.asyncio.client import connect as async_connect
from websockets.sync.client import connect

from tests.serial_tls import serial_client_context
from tests.server import TLS, is_clean_exit, read_record, wait_record
from tests.ws_client import (
    OP_BINARY,
    OP_CLOSE,
    OP_PING,
    OP_TEXT,
    RSV1,
    build_frame,
    connect_ws,
    no_deflate_args,
)

APP = "tests.apps.ws_app:app"



@pytest.fixture(scope="module")
def srv(module_server_factory):
    return module_server_factory(APP)


@pytest.fixture(scope="module")
def srv_nodeflate(module_server_factory):
    return module_server_factory(APP, *no_deflate_args())


@pytest.fixture
def token():
    return uuid.uuid4().hex


def ws_url(server, path):
    return f"{'wss' if TLS else 'ws'}://{server.host}:{server.port}{path}"


def ws_connect(server, path, **kw):
    kw.setdefault("proxy", None)
    kw.setdefault("open_timeout", 5)
    kw.setdefault("close_timeout", 5)
    if TLS:
        # The sync client reads in a thread of its own; tests/serial_tls.py says why
        # its SSL object needs a lock.
        kw.setdefault("ssl", serial_client_context())
    return connect(ws_url(server, path), **kw)


def negotiated(ws) -> str:
    return ws.response.headers.get("Sec-WebSocket-Extensions", "") or ""


def pattern(n: int, seed: int = 0) -> bytes:
    """Compressible but not trivial: a 4 KiB pseudo-random block repeated
    with a changing byte, so neither compressor can collapse it to nothing."""
    block = bytes((i * 2654435761 + seed) >> 7 & 0xFF for i in range(4096))
    reps = n // len(block) + 1
    return b"".join(block[:-1] + bytes([r & 0xFF]) for r in range(reps))[:n]


# -- scope -------------------------------------------------------------------------


def test_scope(srv):
    with ws_connect(
        srv, "/scope?a=1&b=%20x", subprotocols=["one", "two"], additional_headers={"X-Test": "yes"}
    ) as ws:
        scope = json.loads(ws.recv(timeout=5))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    assert scope["type"] == "websocket"
    assert scope["asgi"]["version"] == "3.0"
    assert scope["scheme"] == ("wss" if TLS else "ws")
    assert scope["http_version"] == "1.1"
    assert scope["path"] == "/scope"
    assert scope["raw_path"] == "/scope"
    assert scope["query_string"] == "a=1&b=%20x"
    assert scope["root_path"] == ""
    assert scope["subprotocols"] == ["one", "two"]
    headers = {k: v for k, v in scope["headers"]}
    assert headers["x-test"] == "yes"
    assert headers["upgrade"].lower() == "websocket"
    assert "sec-websocket-key" in headers
    assert all(k == k.lower() for k, _ in scope["headers"])
    assert scope["client"][0] == "127.0.0.1" and isinstance(scope["client"][1], int)
    assert scope["server"] == ["127.0.0.1", srv.port]
    assert scope["has_state"] is True
    assert "websocket.http.response" in scope["extensions"]


# -- echo, compression, large messages ---------------------------------------------


@pytest.mark.parametrize("compression", ["deflate", None])
def test_echo_text_and_bytes(srv, compression):
    with ws_connect(srv, "/echo", compression=compression) as ws:
        assert ("permessage-deflate" in negotiated(ws)) == (compression == "deflate")
        for msg in ["hello", "", "ünïcödé 😀", b"\x00\x01\xff", b"", "x" * 70000]:
            ws.send(msg)
            assert ws.recv(timeout=5) == msg


def test_compression_off_by_setting(srv_nodeflate):
    with ws_connect(srv_nodeflate, "/echo", compression="deflate") as ws:
        assert negotiated(ws) == ""
        ws.send("plain")
        assert ws.recv(timeout=5) == "plain"


def test_server_compresses_what_it_sends(srv, srv_nodeflate):
    """Look at the server's frame on the wire: RSV1 and a small payload
    when permessage-deflate is on, the plain bytes when it is off."""
    data = "compress me please " * 5000
    for server, on in ((srv, True), (srv_nodeflate, False)):
        with connect_ws(server, "/echo", extensions="permessage-deflate") as ws:
            ws.send_text(data)  # uncompressed from us; compressing the echo is the server's choice
            f = ws.read_frame()
            assert f.fin and f.opcode == OP_TEXT
            if on:
                assert f.rsv == RSV1 and len(f.payload) < len(data) // 20, (f.rsv, len(f.payload))
                assert ws.inflater.decompress(f.payload) == data.encode()
            else:
                assert f.rsv == 0 and f.payload == data.encode()
            ws.close()


@pytest.mark.pounce_only("--ws-deflate-level is Pounce's setting")
def test_deflate_level_setting(module_server_factory):
    """--ws-deflate-level reaches the server's compressor: the same echo is
    smaller at level 9 than at level 1, and both inflate to the message."""
    data = json.dumps([{"id": i, "name": f"user-{i * 7919 % 1000}", "score": (i * 31337) % 977,
                        "tags": ["a", "bb", "ccc"][: i % 4]} for i in range(3000)])
    sizes = {}
    for level in (1, 9):
        server = module_server_factory(APP, "--ws-deflate-level", str(level))
        with connect_ws(server, "/echo", extensions="permessage-deflate") as ws:
            ws.send_text(data)
            f = ws.read_frame()
            assert f.fin and f.opcode == OP_TEXT and f.rsv == RSV1
            assert ws.inflater.decompress(f.payload) == data.encode()
            sizes[level] = len(f.payload)
            ws.close()
    assert sizes[9] < sizes[1], sizes


@pytest.mark.parametrize("size_mib", [1, 4, 16])
@pytest.mark.parametrize("compression", ["deflate", None])
def test_large_messages(srv, size_mib, compression):
    n = size_mib << 20
    data = pattern(n, size_mib)
    with ws_connect(srv, f"/large?size={n}", compression=compression, max_size=None) as ws:
        got = ws.recv(timeout=30)
        assert isinstance(got, bytes) and len(got) == n
        assert got[:8192] == (bytes(range(256)) * 32)[:8192]
        ws.send(data)
        echoed = ws.recv(timeout=30)
        assert len(echoed) == n and echoed == data


def test_large_text_message(srv):
    text = "é" * (2 << 20)  # 4 MiB of UTF-8
    with ws_connect(srv, "/echo", max_size=None) as ws:
        ws.send(text)
        assert ws.recv(timeout=30) == text


def test_message_over_max_size_closes_1009(module_server_factory):
    s = module_server_factory(APP, "--ws-max-size", "100000")
    with ws_connect(s, "/echo", max_size=None) as ws:
        ws.send(b"x" * 100000)
        assert len(ws.recv(timeout=5)) == 100000
        ws.send(b"x" * 100001)
        with pytest.raises(ConnectionClosedError) as exc:
            ws.recv(timeout=5)
        assert exc.value.rcvd is not None and exc.value.rcvd.code == 1009


# -- subprotocols and accept headers -----------------------------------------------


@pytest.mark.parametrize(
    "offered,chosen",
    [(["chat.v1"], "chat.v1"), (["chat.v1", "chat.v2"], "chat.v2"), (["other"], None), (None, None)],
)
def test_subprotocol_selection(srv, offered, chosen):
    # The asyncio client: one thread owns the socket.  The sync client reads
    # in a thread of its own while the test's thread writes (here the close
    # that races the app's), and over TLS that is one SSL object used from
    # two threads, which OpenSSL does not allow: about 1 run in 6 failed
    # with "ssl.SSLError: [SSL] internal error" in the client's write.
    async def talk():
        async with async_connect(ws_url(srv, "/subprotocol"), subprotocols=offered, proxy=None,
                                 open_timeout=5, close_timeout=5) as ws:
            return ws.subprotocol, await asyncio.wait_for(ws.recv(), 5)

    subprotocol, first = asyncio.run(talk())
    assert subprotocol == chosen
    assert first == (chosen or "")


def test_accept_headers(srv):
    with ws_connect(srv, "/headers") as ws:
        assert ws.response.headers["x-ws-app"] == "yes"
        assert ws.response.headers["set-cookie"] == "session=abc; Path=/"
        assert ws.recv(timeout=5) == "hello"


# -- denial and rejection ----------------------------------------------------------


def test_denial_response(srv):
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(srv, "/deny")
    resp = exc.value.response
    assert resp.status_code == 401
    assert resp.body == b"denied"
    assert resp.headers["x-deny"] == "1"


def test_streamed_denial_response(srv):
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(srv, "/deny?stream=1")
    assert exc.value.response.status_code == 429
    assert exc.value.response.body == b"slow down"


def test_close_before_accept_is_403(srv):
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(srv, "/reject")
    assert exc.value.response.status_code == 403


# -- closing, send after close, disconnect detection -------------------------------


def test_app_close_code_and_reason(srv):
    with ws_connect(srv, "/close?code=4000&reason=bye") as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert (ws.close_code, ws.close_reason) == (4000, "bye")


def test_send_after_app_close_raises(srv, token, record_dir):
    with ws_connect(srv, f"/send-after-close?token={token}") as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    lines = wait_record(record_dir, token, "", timeout=5)
    assert lines[0].startswith("raised "), lines


def test_send_after_client_disconnect_raises(srv, token, record_dir):
    with ws_connect(srv, f"/send-after-close?token={token}&wait=1") as ws:
        ws.close(4002)
    lines = wait_record(record_dir, token, "raised", timeout=5)
    assert lines[0] == "got websocket.disconnect 4002", lines
    assert lines[1].startswith("raised "), lines


def _vanish(srv, token, record_dir, how):
    """Open a WebSocket, then drop TCP without a close frame (FIN or RST);
    returns the app's disconnect record and how long it took."""
    ws = connect_ws(srv, f"/disconnect?token={token}")
    wait_record(record_dir, token, "accepted")
    if how == "rst":
        ws.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t0 = time.monotonic()
    ws.abort()
    lines = wait_record(record_dir, token, "disconnect", timeout=2.5)
    return lines[-1].split(), time.monotonic() - t0


@pytest.mark.parametrize("how", ["close", "rst"])
def test_client_disappears_gives_prompt_disconnect(srv, token, record_dir, how):
    words, elapsed = _vanish(srv, token, record_dir, how)
    assert words[0] == "disconnect" and elapsed < 2.5, (words, elapsed)


@pytest.mark.pounce_only("uvicorn reports 1005 for a connection lost without a close frame; RFC 6455 §7.1.5 says 1006")
@pytest.mark.parametrize("how", ["close", "rst"])
def test_client_disappears_code_is_1006(srv, token, record_dir, how):
    words, _ = _vanish(srv, token, record_dir, how)
    assert words[:2] == ["disconnect", "1006"], words


@pytest.mark.parametrize("code", [1000, 1001, 4000])
def test_client_close_code_reaches_app(srv, token, record_dir, code):
    with ws_connect(srv, f"/disconnect?token={token}") as ws:
        wait_record(record_dir, token, "accepted")
        ws.close(code)
    lines = wait_record(record_dir, token, "disconnect", timeout=2)
    assert lines[-1].split()[:2] == ["disconnect", str(code)], lines


def test_concurrent_sends(srv, token, record_dir):
    n, size = 40, 65536
    with ws_connect(srv, f"/concurrent?token={token}&n={n}&size={size}", max_size=None) as ws:
        time.sleep(0.3)  # let the socket buffers fill so both senders wait
        seen = {"A": [], "B": []}
        for _ in range(2 * n):
            msg = ws.recv(timeout=10)
            assert len(msg) == size
            tag, idx, rest = msg.split(b" ", 2)
            assert rest == tag * len(rest), "frames of two messages interleaved"
            seen[tag.decode()].append(int(idx))
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    assert seen == {"A": list(range(n)), "B": list(range(n))}
    wait_record(record_dir, token, "sent")


def test_send_to_vanished_slow_reader_raises(srv, token, record_dir):
    """The app is blocked in send() because the client stopped reading;
    when the client then disappears, send() must raise, not hang."""
    ws = connect_ws(srv, f"/flood?token={token}")
    ws.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    wait_record(record_dir, token, "flooding")
    time.sleep(0.5)  # buffers fill up; the app now waits in send()
    ws.conn.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    t0 = time.monotonic()
    ws.abort()
    lines = wait_record(record_dir, token, "raised", timeout=3)
    assert time.monotonic() - t0 < 3, lines


@pytest.mark.parametrize("code", [1005, 1006, 999, 5000])
def test_app_close_with_invalid_code_raises(srv, token, record_dir, code):
    with ws_connect(srv, f"/close?code={code}&token={token}") as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000
    lines = wait_record(record_dir, token, "raised", timeout=3)
    assert lines[0].startswith("raised "), lines


def test_app_exception_before_accept_is_500(srv):
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(srv, "/boom?when=before")
    assert exc.value.response.status_code == 500


@pytest.mark.pounce_only("uvicorn's websockets implementation drops TCP without a close frame (1006)")
def test_app_exception_after_accept_closes_1011(srv):
    with ws_connect(srv, "/boom?when=after") as ws:
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1011


@pytest.mark.pounce_only("uvicorn's websockets implementation drops TCP without a close frame (1006)")
def test_app_returns_without_close(srv):
    with ws_connect(srv, "/return") as ws:
        assert ws.recv(timeout=5) == "bye"
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert ws.close_code == 1000


def test_many_connections_at_once(srv):
    conns = [connect_ws(srv, "/echo") for _ in range(100)]
    try:
        for i, c in enumerate(conns):
            c.send_text(f"conn {i}")
        for i, c in enumerate(conns):
            assert c.read_text() == f"conn {i}"
    finally:
        for c in conns:
            c.abort()


@pytest.mark.pounce_only("uvicorn has no --worker-mode and announces its port before its worker processes listen")
@pytest.mark.parametrize("mode", ["thread", "process"])
def test_two_workers(module_server_factory, mode):
    s = module_server_factory(APP, "--workers", "2", "--worker-mode", mode)
    for _ in range(6):
        with ws_connect(s, "/echo") as ws:
            ws.send(b"w" * 100000)
            assert ws.recv(timeout=5) == b"w" * 100000


def test_unread_messages_are_bounded(srv):
    """An app that does not call receive(): the server must stop reading
    the socket after a bounded amount, not hold one message after another
    in memory.  The client pushes 4 MiB messages until its writes block."""
    size = 4 << 20
    frame = build_frame(OP_BINARY, b"q" * size)
    with connect_ws(srv, "/noread?s=5") as ws:
        ws.conn.sock.settimeout(0.5)
        sent = 0
        t0 = time.monotonic()
        with pytest.raises((TimeoutError, socket.timeout)):
            while time.monotonic() - t0 < 5:
                ws.conn.sock.sendall(frame)
                sent += 1
        # Kernel buffers on both sides hold a few MiB; allow the server a
        # couple of whole messages beyond that, not sixteen.
        assert sent * size <= 24 << 20, f"server took {sent} x 4 MiB without the app reading"


# -- keepalive ---------------------------------------------------------------------


def test_keepalive_closes_silent_client(module_server_factory, token, record_dir):
    s = module_server_factory(APP, "--ws-ping-interval", "0.5", "--ws-ping-timeout", "0.5")
    ws = connect_ws(s, f"/sleep?token={token}")
    t0 = time.monotonic()
    pings, close, ended = 0, None, None
    # A raw client that never answers pings.
    while time.monotonic() - t0 < 5:
        try:
            f = ws.read_frame(timeout=5)
        except Exception as e:  # noqa: BLE001 - EOF without a close frame, or silence
            ended = e
            break
        if f.opcode == OP_PING:
            pings += 1
        elif f.opcode == OP_CLOSE:
            close = f
            break
    elapsed = time.monotonic() - t0
    ws.abort()
    assert pings >= 1
    # The server says why it gives up (RFC 6455 §7.4.1: 1011, as uvicorn's
    # websockets does), rather than just dropping TCP.
    assert close is not None, f"no close frame after {pings} unanswered ping(s): {ended!r}"
    assert close.close_code == 1011, (close.close_code, close.payload)
    # interval + timeout = 1 s; allow the timer granularity and scheduling.
    assert elapsed < 2.5, elapsed
    wait_record(record_dir, token, "disconnect", timeout=3)


def test_keepalive_keeps_answering_client(module_server_factory):
    s = module_server_factory(APP, "--ws-ping-interval", "0.3", "--ws-ping-timeout", "0.3")
    with ws_connect(s, "/echo", ping_interval=None) as ws:  # the library answers pings
        time.sleep(1.5)
        ws.send("still here")
        assert ws.recv(timeout=5) == "still here"


# -- graceful shutdown -------------------------------------------------------------


@pytest.mark.pounce_only("uvicorn closes WebSockets with 1012 (service restart) on shutdown; Pounce uses 1001 (going away)")
def test_shutdown_closes_with_1001(server_factory, token, record_dir):
    s = server_factory(APP, "--shutdown-timeout", "2")
    with ws_connect(s, f"/sleep?token={token}") as ws, ws_connect(s, "/echo") as ws2:
        wait_record(record_dir, token, "accepted")
        t0 = time.monotonic()
        s.proc.send_signal(signal.SIGTERM)
        for conn in (ws, ws2):
            with pytest.raises(ConnectionClosed):
                conn.recv(timeout=5)
            assert conn.close_code == 1001
        assert time.monotonic() - t0 < 3
    assert is_clean_exit(s.wait(5))
    assert read_record(record_dir, token)[-1].startswith("disconnect")


# -- Starlette and FastAPI ---------------------------------------------------------


@pytest.fixture(scope="module", params=["starlette", "fastapi"])
def fw(request, module_server_factory):
    return request.param, module_server_factory(f"tests.apps.ws_frameworks:{request.param}_app", timeout=20)


def test_framework_echo(fw, token, record_dir):
    name, s = fw
    with ws_connect(s, f"/ws/echo?token={token}") as ws:
        for t in ["a", "ünï", "x" * 100000]:
            ws.send(t)
            assert ws.recv(timeout=5) == "echo: " + t
        ws.close(4005)
    lines = wait_record(record_dir, token, "disconnect", timeout=3)
    assert lines == ["disconnect 4005"]


def test_framework_json_and_bytes(fw):
    name, s = fw
    with ws_connect(s, "/ws/json") as ws:
        ws.send(json.dumps({"k": [1, 2]}))
        assert json.loads(ws.recv(timeout=5)) == {"got": {"k": [1, 2]}, "framework": name}
    with ws_connect(s, "/ws/bytes") as ws:
        ws.send(b"\x01\x02\x03")
        assert ws.recv(timeout=5) == b"\x03\x02\x01"


def test_framework_path_params_subprotocol_close(fw):
    name, s = fw
    with ws_connect(s, "/ws/items/42?q=hi", subprotocols=["proto.x"]) as ws:
        assert ws.subprotocol == "proto.x"
        assert json.loads(ws.recv(timeout=5)) == {"item_id": 42, "q": "hi", "subprotocol": "proto.x"}
        with pytest.raises(ConnectionClosed):
            ws.recv(timeout=5)
        assert (ws.close_code, ws.close_reason) == (4001, "done")


def test_framework_denial_and_reject(fw):
    name, s = fw
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(s, "/ws/deny")
    assert exc.value.response.status_code == 403
    assert exc.value.response.body == b"nope"
    with pytest.raises(InvalidStatus) as exc:
        ws_connect(s, "/ws/reject")
    assert exc.value.response.status_code == 403
