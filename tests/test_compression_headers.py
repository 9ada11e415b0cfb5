"""What compression does to a response's headers (issue 16, first part).

A body that goes out as the app gave it keeps the app's headers exactly: its
strong ETag (which If-Range needs, RFC 9110 §13.1.5), its Content-Length,
no Vary of ours.  A body that is content-coded gets Content-Encoding,
Vary: Accept-Encoding, a weakened ETag (§8.8.3) and no stale
Content-Length.  `http.response.pathsend` bodies are never coded
(docs/compression.md), and neither is the response to a Range request.

The apps are here (tests.test_compression_headers:app): Starlette's
StaticFiles over a directory with a 26 KB index.html (the directory comes
from PN_TEST_STATIC_DIR, made by the test), a raw ASGI app using pathsend,
and raw apps with http.response.body.  The tests that do not depend on
Pounce compressing run against uvicorn too (POUNCE_TEST_SERVER=uvicorn), so
the Range and If-Range expectations are checked against a known server.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import zlib

import pytest

from tests.apps._support import simple_lifespan

APP = "tests.test_compression_headers:app"
STATIC_ENV = "PN_TEST_STATIC_DIR"

# About 26 KB of HTML that compresses well, the same bytes every run.
INDEX_HTML = (
    b"<!doctype html>\n<html><head><title>Pounce</title></head><body>\n"
    + b"".join(b'<p class="row">Row %d: the quick brown fox jumps over the lazy dog.</p>\n' % i
               for i in range(370))
    + b"</body></html>\n"
)
assert 25_000 < len(INDEX_HTML) < 28_000
BIG_HTML = INDEX_HTML  # the dynamic bodies use the same bytes
ETAG = b'"v1"'


def _static_dir() -> str:
    return os.environ.get(STATIC_ENV, "")


_starlette_app = None


def _starlette():
    global _starlette_app
    if _starlette_app is None:
        from starlette.applications import Starlette
        from starlette.routing import Mount
        from starlette.staticfiles import StaticFiles

        _starlette_app = Starlette(
            routes=[Mount("/static", app=StaticFiles(directory=_static_dir(), html=True))])
    return _starlette_app


async def _drain(receive):
    while True:
        msg = await receive()
        if msg["type"] != "http.request" or not msg.get("more_body"):
            return


async def app(scope, receive, send):
    if scope["type"] == "lifespan":
        await simple_lifespan(receive, send)
        return
    if scope["type"] != "http":
        return
    path = scope["path"]
    if path.startswith("/static"):
        await _starlette()(scope, receive, send)
        return
    await _drain(receive)
    html = [(b"content-type", b"text/html; charset=utf-8")]
    index = os.path.join(_static_dir(), "index.html")
    if path == "/pathsend":
        # Raw pathsend with every header a cache or a resuming client uses.
        await send({"type": "http.response.start", "status": 200, "headers": html + [
            (b"etag", ETAG), (b"content-length", b"%d" % len(INDEX_HTML)),
            (b"last-modified", b"Sun, 06 Dec 2026 12:00:00 GMT"), (b"accept-ranges", b"bytes")]})
        await send({"type": "http.response.pathsend", "path": index})
    elif path == "/pathsend-no-length":
        await send({"type": "http.response.start", "status": 200,
                    "headers": html + [(b"etag", ETAG)]})
        await send({"type": "http.response.pathsend", "path": index})
    elif path == "/small":
        # Eligible by type, but under --compression-min-size once the single
        # body arrives: it must go out as the app made it.
        await send({"type": "http.response.start", "status": 200,
                    "headers": html + [(b"etag", ETAG)]})
        await send({"type": "http.response.body", "body": b"<p>tiny</p>"})
    elif path == "/big":
        await send({"type": "http.response.start", "status": 200,
                    "headers": html + [(b"etag", ETAG),
                                       (b"content-length", b"%d" % len(BIG_HTML))]})
        await send({"type": "http.response.body", "body": BIG_HTML})
    elif path == "/big-streamed":
        await send({"type": "http.response.start", "status": 200,
                    "headers": html + [(b"etag", ETAG),
                                       (b"content-length", b"%d" % len(BIG_HTML))]})
        half = len(BIG_HTML) // 2
        await send({"type": "http.response.body", "body": BIG_HTML[:half], "more_body": True})
        await send({"type": "http.response.body", "body": BIG_HTML[half:]})
    else:
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b""})


@pytest.fixture(scope="module")
def static_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("static")
    (d / "index.html").write_bytes(INDEX_HTML)
    return d


@pytest.fixture(scope="module")
def server(module_server_factory, static_dir):
    return module_server_factory(APP, env={STATIC_ENV: str(static_dir)})


def get(server, target, headers=(), method="GET"):
    with server.connect() as c:
        return c.request(method, target, list(headers))


# Headers that differ between two responses for reasons of their own.
_VOLATILE = {"date", "server"}


def app_headers(r):
    return sorted((k.lower(), v) for k, v in r.headers if k.lower() not in _VOLATILE)


ALL = "gzip, br, zstd"


# ---- bodies that go out as the app gave them ----------------------------------


NO_PATHSEND = pytest.mark.pounce_only("uvicorn 0.54 has no http.response.pathsend")


@pytest.mark.parametrize("target", [
    "/static/index.html", "/static/", pytest.param("/pathsend", marks=NO_PATHSEND),
    pytest.param("/pathsend-no-length", marks=NO_PATHSEND), "/small"])
def test_untransformed_body_keeps_the_apps_headers(server, target):
    """With or without Accept-Encoding, an unencoded body has the same
    headers: the app's ETag unweakened, its Content-Length, no Vary."""
    plain = get(server, target)
    offered = get(server, target, [("Accept-Encoding", ALL)])
    assert plain.status == offered.status == 200
    assert offered.header("content-encoding") is None
    assert offered.body == plain.body
    assert app_headers(offered) == app_headers(plain)
    etag = offered.header("etag")
    assert etag is not None and not etag.startswith("W/"), etag
    if target != "/small":
        assert offered.body == INDEX_HTML
        assert offered.header("content-length") == str(len(INDEX_HTML))
    if target.startswith("/pathsend"):
        assert offered.header("vary") is None
        if target == "/pathsend":
            assert etag == ETAG.decode()


def test_starlette_static_if_range_resumes(server):
    """The issue's resume: the ETag the client got, sent back in If-Range
    with a Range, gives 206 and the rest of the file (as under uvicorn)."""
    first = get(server, "/static/index.html", [("Accept-Encoding", "gzip")])
    etag = first.header("etag")
    assert etag and not etag.startswith("W/")
    r = get(server, "/static/index.html",
            [("Accept-Encoding", "gzip"), ("Range", "bytes=1000-"), ("If-Range", etag)])
    assert r.status == 206, (r.status, r.headers)
    assert r.header("content-encoding") is None
    assert r.header("content-range") == f"bytes 1000-{len(INDEX_HTML) - 1}/{len(INDEX_HTML)}"
    assert r.body == INDEX_HTML[1000:]
    # §13.1.5: If-Range needs a strong match, so a weak or stale tag gets
    # the whole file, unencoded because the request had a Range.
    for stale in ("W/" + etag, '"stale"'):
        r = get(server, "/static/index.html",
                [("Accept-Encoding", "gzip"), ("Range", "bytes=1000-"), ("If-Range", stale)])
        assert r.status == 200 and r.body == INDEX_HTML, stale
        assert r.header("content-encoding") is None
        assert r.header("etag") == etag


def test_starlette_static_conditional(server):
    etag = get(server, "/static/index.html", [("Accept-Encoding", ALL)]).header("etag")
    r = get(server, "/static/index.html", [("Accept-Encoding", ALL), ("If-None-Match", etag)])
    assert r.status == 304 and r.header("etag") == etag


@pytest.mark.parametrize("target", ["/big", "/static/index.html"])
def test_range_request_is_not_encoded(server, target):
    """A Range the app ignores (/big) or serves (StaticFiles) is answered
    with the app's bytes and the app's headers."""
    r = get(server, target, [("Accept-Encoding", ALL), ("Range", "bytes=0-99")])
    assert r.header("content-encoding") is None
    assert r.header("etag") == (ETAG.decode() if target == "/big" else r.header("etag"))
    assert not r.header("etag").startswith("W/")
    if r.status == 206:
        assert r.body == INDEX_HTML[:100]
    else:
        assert r.status == 200 and r.body == BIG_HTML
        assert r.header("content-length") == str(len(BIG_HTML))


# ---- bodies that are content-coded ----------------------------------------------


@pytest.mark.pounce_only("uvicorn does not compress responses")
@pytest.mark.parametrize("target", ["/big", "/big-streamed"])
def test_encoded_body_headers(server, target):
    r = get(server, target, [("Accept-Encoding", "gzip")])
    assert r.header("content-encoding") == "gzip"
    assert "accept-encoding" in ",".join(r.header_all("vary")).lower()
    assert r.header("etag") == "W/" + ETAG.decode()
    # The app's Content-Length described the unencoded body.
    lengths = r.header_all("content-length")
    if target == "/big":
        assert lengths == [str(len(r.body))]
    else:
        assert lengths == [] and r.chunked
    assert zlib.decompress(r.body, 31) == BIG_HTML
    # The same response to a client that takes identity: eligible, so Vary,
    # but the app's ETag and Content-Length exactly.
    r = get(server, target, [("Accept-Encoding", "identity")])
    assert r.header("content-encoding") is None
    assert "accept-encoding" in ",".join(r.header_all("vary")).lower()
    assert r.header("etag") == ETAG.decode()
    assert r.header_all("content-length") == [str(len(BIG_HTML))]
    assert r.body == BIG_HTML


# ---- real clients ----------------------------------------------------------------


def test_httpx_resume(server):
    import httpx

    with httpx.Client(base_url=server.url, timeout=10) as client:
        full = client.get("/static/index.html")  # httpx offers gzip, deflate (br, zstd)
        assert full.headers.get("content-encoding") is None
        assert full.content == INDEX_HTML
        etag = full.headers["etag"]
        assert not etag.startswith("W/")
        part = client.get("/static/index.html",
                          headers={"Range": "bytes=20000-", "If-Range": etag})
        assert part.status_code == 206 and part.content == INDEX_HTML[20000:]
        coded = client.get("/big")
        if coded.headers.get("content-encoding"):  # Pounce
            assert coded.headers["etag"] == "W/" + ETAG.decode()
        assert coded.content == BIG_HTML


def _curl(server, *args):
    out = subprocess.run(["curl", "-sS", "-D", "-", *args], capture_output=True,
                         timeout=10, check=True).stdout
    head, _, body = out.partition(b"\r\n\r\n")
    return head.decode("latin-1").lower(), body


@pytest.mark.skipif(shutil.which("curl") is None, reason="curl not installed")
def test_curl(server):
    url = server.url + "/static/index.html"
    head, body = _curl(server, "--compressed", url)
    assert "content-encoding" not in head and body == INDEX_HTML
    etag = next(line.split(":", 1)[1].strip() for line in head.splitlines()
                if line.startswith("etag:"))
    assert not etag.startswith("w/")
    head, body = _curl(server, "--compressed", "-r", "100-199", "-H", f"If-Range: {etag}", url)
    # HTTP/1.1, or HTTP/2 when curl meets the server over TLS (ALPN h2).
    assert head.split(" ", 2)[:2] in (["http/1.1", "206"], ["http/2", "206"]), head[:40]
    assert body == INDEX_HTML[100:200]
    head, body = _curl(server, "--compressed", server.url + "/big")
    assert body == BIG_HTML
