"""Response compression and request decompression through the real server,
checked with independent decoders: Python's zlib, the zstandard package, the
brotli package and curl --compressed (docs/compression.md).

The protocol core (csrc/core/pn_compress*.c, pn_codec_*.c, pn_accept_encoding.c) is unit
tested in tests/c/.  The app under test is defined here
(tests.test_compression:app).

Every codec must be built in: a codec missing from pounce._pounce.CODECS, or
a missing independent decoder package, FAILS its tests rather than skipping
them, so a build that silently lost libzstd or libbrotli cannot pass.  Only
POUNCE_TEST_ALLOW_MISSING_CODECS=1, set by hand for a build made outside make
on purpose, turns those failures into skips; the Makefile never passes it on
(and builds with -Dcodecs=required anyway).
"""

from __future__ import annotations

import asyncio
import gzip
import importlib
import json
import os
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
ALL_CODECS = ("zstd", "br", "gzip")
ALLOW_MISSING = os.environ.get("POUNCE_TEST_ALLOW_MISSING_CODECS") == "1"
OPT_OUT = "POUNCE_TEST_ALLOW_MISSING_CODECS=1 makes this a skip"

pytestmark = pytest.mark.pounce_only("uvicorn does not compress responses")


def missing(what: str) -> None:
    """Fail (skip only with the explicit opt-out) because `what` is missing."""
    if ALLOW_MISSING:
        pytest.skip(what)
    pytest.fail(f"{what} ({OPT_OUT})", pytrace=False)


def need_codec(codec: str) -> None:
    if codec not in CODECS:
        missing(f"{codec} is not built into this pounce (pounce._pounce.CODECS = {CODECS})")


def need_module(name: str):
    try:
        return importlib.import_module(name)
    except ImportError:
        missing(f"the {name} package is not installed (requirements-test.txt)")


def test_every_codec_built():
    """The build has all three codecs (the one test that names them all, so
    a build without one fails here even if nothing else asks for it)."""
    lost = [c for c in ALL_CODECS if c not in CODECS]
    if lost:
        missing(f"this pounce was built without {', '.join(lost)}: CODECS = {CODECS}")

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
        return need_module("zstandard").ZstdDecompressor().decompressobj().decompress(data)
    if codec == "br":
        return need_module("brotli").decompress(data)
    raise AssertionError(codec)


def decoder(codec: str):
    """An incremental decoder: feed(bytes) -> bytes."""
    if codec == "gzip":
        return zlib.decompressobj(31).decompress
    if codec == "zstd":
        return need_module("zstandard").ZstdDecompressor().decompressobj().decompress
    return need_module("brotli").Decompressor().process


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
    need_codec(codec)
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
    need_codec(codec)
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
    if want is not None:
        need_codec(want)
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
    need_codec("gzip")
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
    need_codec("gzip")
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


def test_decompress_zstd_frames_only(server_factory):
    """Only RFC 8878 frames are "zstd", and the verdict does not depend on
    how the body arrives (both found by fuzz/fuzz_decompress.c):
      * a pre-1.0 (v0.7) frame, which libzstd's legacy decoder took with a
        128 MiB window despite the 8 MiB limit, is a 400;
      * a frame header split after its descriptor byte, whose remaining
        bytes form a whole frame of their own, was decoded as that inner
        frame ("EVIL") by libzstd's single-pass shortcut, while the same
        bytes in one piece are a 400.  Both ways it is a 400 now."""
    need_codec("zstd")
    srv = server_factory(APP, "--decompress-requests")
    legacy = bytes.fromhex("27b52ffd" "00" "88" "400001") + b"A" + bytes.fromhex("c00000")
    r = request(srv, "/echo", headers=[("Content-Encoding", "zstd")], body=legacy)
    assert r.status == 400
    inner = bytes.fromhex("28b52ffd" "20" "04" "210000") + b"EVIL"
    crafted = bytes.fromhex("28b52ffd" "40") + inner
    for cut in (0, 5):
        with srv.connect() as c:
            c.send(b"POST /echo HTTP/1.1\r\nHost: x\r\nContent-Encoding: zstd\r\n"
                   b"Content-Length: %d\r\n\r\n" % len(crafted) + crafted[:cut])
            time.sleep(0.2)  # a read of its own on the server
            c.send(crafted[cut:])
            r = c.read_response("POST")
        assert r.status == 400, (cut, r.status, r.body)
    framed = need_module("zstandard").ZstdCompressor().compress(JSON_BODY)
    r = request(srv, "/echo", headers=[("Content-Encoding", "zstd")], body=framed)
    assert r.status == 200 and r.body == JSON_BODY


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl_compressed(server):
    out = subprocess.run(["curl", "-sS", "--compressed", "-D", "-", server.url + "/"],
                         capture_output=True, timeout=10, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    assert b"content-encoding:" in head.lower()
    assert body == JSON_BODY
