"""Response compression and request decompression through the real server,
checked with independent decoders: Python's zlib, the zstandard package, the
brotli package and curl --compressed (docs/compression.md).

The protocol core (csrc/core/pn_compress.c, pn_accept_encoding.c) is unit
tested in tests/c/; these tests need the bridge to use it, which is visible
as pounce._pounce.CODECS.  Until then the module is skipped with that reason.
The app under test is defined here (tests.test_compression:app).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import shutil
import subprocess
import time
import zlib

import pytest

try:
    from pounce import _pounce
except ImportError:  # the server process imports this module for `app` too
    _pounce = None

CODECS = tuple(getattr(_pounce, "CODECS", ()) or ())

pytestmark = [
    pytest.mark.skipif(
        _pounce is None or not hasattr(_pounce, "CODECS"),
        reason="response compression is not wired into the bridge yet "
        "(pounce._pounce.CODECS is missing)",
    ),
    pytest.mark.pounce_only("uvicorn does not compress responses"),
]

APP = "tests.test_compression:app"

# 64 KiB of JSON, as in the benchmark.
ROWS = [{"id": i, "name": f"user{i % 977}", "ok": i % 3 == 0} for i in range(1400)]
JSON_BODY = json.dumps(ROWS).encode()


async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    path = scope["path"]
    ctype = b"application/json"
    headers = []
    body = JSON_BODY
    status = 200
    if path == "/small":
        body = b'{"ok": true}'
    elif path == "/png":
        ctype = b"image/png"
    elif path == "/encoded":
        body = gzip.compress(JSON_BODY)
        headers.append((b"content-encoding", b"gzip"))
    elif path == "/notransform":
        headers.append((b"cache-control", b"public, no-transform"))
    elif path == "/etag":
        headers.append((b"etag", b'"v1"'))
    elif path == "/vary":
        headers.append((b"vary", b"Origin"))
    elif path == "/204":
        status, body = 204, b""
    elif path == "/echo":
        data = b""
        while True:
            msg = await receive()
            data += msg.get("body", b"")
            if not msg.get("more_body"):
                break
        ctype, body = b"application/octet-stream", data
    elif path == "/stream":
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/event-stream")]})
        for i in range(3):
            await send({"type": "http.response.body", "body": b"data: event %d\n\n" % i * 40,
                        "more_body": True})
            # The first pause is long, so "seen before the next event" has
            # room on a loaded machine; the others only check ordering.
            await asyncio.sleep(1.0 if i == 0 else 0.1)
        await send({"type": "http.response.body", "body": b""})
        return
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", ctype)] + headers})
    await send({"type": "http.response.body", "body": body})


def decode(codec: str, data: bytes) -> bytes:
    if codec == "gzip":
        return zlib.decompress(data, 31)
    if codec == "zstd":
        zstandard = pytest.importorskip("zstandard", reason="zstandard package not installed")
        return zstandard.ZstdDecompressor().decompressobj().decompress(data)
    if codec == "br":
        brotli = pytest.importorskip("brotli", reason="brotli package not installed")
        return brotli.decompress(data)
    raise AssertionError(codec)


def decoder(codec: str):
    """An incremental decoder: feed(bytes) -> bytes."""
    if codec == "gzip":
        return zlib.decompressobj(31).decompress
    if codec == "zstd":
        zstandard = pytest.importorskip("zstandard", reason="zstandard package not installed")
        return zstandard.ZstdDecompressor().decompressobj().decompress
    brotli = pytest.importorskip("brotli", reason="brotli package not installed")
    return brotli.Decompressor().process


@pytest.fixture(scope="module")
def server(module_server_factory):
    return module_server_factory(APP)


def request(server, target="/", ae=None, method="GET", headers=(), body=b""):
    hs = list(headers)
    if ae is not None:
        hs.append(("Accept-Encoding", ae))
    with server.connect() as c:
        return c.request(method, target, hs, body)


@pytest.mark.parametrize("codec", ["zstd", "br", "gzip"])
def test_round_trip_one_shot(server, codec):
    if codec not in CODECS:
        pytest.skip(f"{codec} not built into this pounce")
    r = request(server, "/", ae=codec)
    assert r.header("content-encoding") == codec
    assert "accept-encoding" in (r.header("vary") or "").lower()
    assert int(r.header("content-length")) == len(r.body)
    assert len(r.body) < len(JSON_BODY) / 3
    assert decode(codec, r.body) == JSON_BODY


@pytest.mark.parametrize("codec", ["zstd", "br", "gzip"])
def test_streamed_flush_visible_before_end(server, codec):
    """Each more_body message is flushed: the first event decodes while the
    app is still sleeping before the second."""
    if codec not in CODECS:
        pytest.skip(f"{codec} not built into this pounce")
    feed = decoder(codec)
    with server.connect() as c:
        c.send(f"GET /stream HTTP/1.1\r\nHost: x\r\nAccept-Encoding: {codec}\r\n\r\n".encode())
        head = c.read_until(b"\r\n\r\n").decode("latin-1").lower()
        assert f"content-encoding: {codec}" in head and "chunked" in head
        t0 = time.monotonic()
        size = int(c.read_until(b"\r\n")[:-2], 16)
        first = feed(c.read_exact(size))
        c.read_exact(2)
        assert time.monotonic() - t0 < 0.8
        assert first == b"data: event 0\n\n" * 40
        rest = b""
        while True:
            size = int(c.read_until(b"\r\n")[:-2], 16)
            if size == 0:
                break
            rest += feed(c.read_exact(size))
            c.read_exact(2)
        assert rest == b"".join(b"data: event %d\n\n" % i * 40 for i in (1, 2))


@pytest.mark.parametrize("ae, want", [
    ("gzip, deflate, br, zstd", "zstd"),
    ("gzip, deflate, br", "br"),
    ("br;q=0.5, gzip", "gzip"),
    ("*", "zstd"),
    ("gzip;q=0, *", "zstd"),
    ("identity;q=0, gzip", "gzip"),
    ("", None),
    ("deflate", None),
    ("gzip;q=0", None),
    (None, None),
])
def test_negotiation(server, ae, want):
    if want is not None and want not in CODECS:
        pytest.skip(f"{want} not built into this pounce")
    r = request(server, "/", ae=ae)
    assert r.header("content-encoding") == want
    assert "accept-encoding" in (r.header("vary") or "").lower()
    body = decode(want, r.body) if want else r.body
    assert body == JSON_BODY


@pytest.mark.parametrize("target, method", [
    ("/small", "GET"), ("/png", "GET"), ("/notransform", "GET"), ("/204", "GET"), ("/", "HEAD"),
])
def test_not_compressed(server, target, method):
    r = request(server, target, ae="gzip, br, zstd", method=method)
    assert r.header("content-encoding") is None


def test_app_encoding_untouched(server):
    r = request(server, "/encoded", ae="gzip, br, zstd")
    assert r.header("content-encoding") == "gzip"
    assert gzip.decompress(r.body) == JSON_BODY


def test_etag_weakened_and_vary_merged(server):
    r = request(server, "/etag", ae="gzip")
    assert r.header("etag") == 'W/"v1"'
    r = request(server, "/etag")
    assert r.header("etag") == '"v1"'
    r = request(server, "/vary", ae="gzip")
    vary = ",".join(r.header_all("vary")).lower()
    assert "origin" in vary and "accept-encoding" in vary


def test_no_compression_flag(server_factory):
    srv = server_factory(APP, "--no-compression")
    r = request(srv, "/", ae="gzip, br, zstd")
    assert r.header("content-encoding") is None
    assert r.body == JSON_BODY


def test_request_bodies_passed_unchanged_by_default(server):
    data = gzip.compress(JSON_BODY)
    r = request(server, "/echo", headers=[("Content-Encoding", "gzip")], body=data)
    assert r.status == 200 and r.body == data


def test_decompress_requests_and_bomb_cap(server_factory):
    srv = server_factory(APP, "--decompress-requests", "--max-decompressed-size", "1MiB")
    r = request(srv, "/echo", headers=[("Content-Encoding", "gzip")],
                body=gzip.compress(JSON_BODY))
    assert r.status == 200 and r.body == JSON_BODY
    bomb = gzip.compress(b"\0" * (32 << 20))
    assert len(bomb) < 64 << 10
    r = request(srv, "/echo", headers=[("Content-Encoding", "gzip")], body=bomb)
    assert r.status == 413
    r = request(srv, "/echo", headers=[("Content-Encoding", "gzip")], body=b"not gzip")
    assert r.status == 400


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_compressed(server):
    out = subprocess.run(["curl", "-sS", "--compressed", "-D", "-", server.url + "/"],
                         capture_output=True, timeout=10, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-encoding:" in head.lower()
    assert body == JSON_BODY
