"""A real browser loads a page whose CSS, JS and image all come from a
--static mount (issue 16).

Headless Chromium (tests/browser.py) loads /assets/index.html; the page
links /assets/style.css, /assets/app.js (sent as its precompressed .gz
sibling, which the browser must decode) and /assets/pic.png (3x2 pixels).
The script, once everything has loaded, writes into #result what it computed
from the stylesheet (getComputedStyle), that it ran, and the image's natural
size; the test reads the DOM.  Chromium refuses a stylesheet served with the
wrong Content-Type, so the colour also checks the MIME type.  Paths outside
the mount still reach the app (tests/apps/static_app.py), which the page
fetches too.  Bounded: 30 s.  Under POUNCE_TEST_TLS=1 the page is https://
(the test CA trusted through an NSS database, as in the WebSocket test).
"""

from __future__ import annotations

import gzip
import json
import struct
import time
import zlib

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chrome, nss_home
from tests.server import SERVER_KIND, TLS, tls_certs

pytestmark = pytest.mark.skipif(SERVER_KIND != "pounce", reason="--static is pounce's own option")

APP = "tests.apps.static_app:app"

PAGE = b"""<!doctype html>
<html><head><meta charset="utf-8"><title>static</title>
<link rel="stylesheet" href="/assets/style.css">
<script src="/assets/app.js"></script>
</head><body>
<div id="box">box</div>
<img id="pic" src="/assets/pic.png" alt="pic">
<pre id="result">pending</pre>
</body></html>
"""

CSS = b"#box { color: rgb(12, 34, 56); width: 123px; }\n"

JS = b"""window.ranFromMount = true;
window.addEventListener("load", async () => {
  const box = getComputedStyle(document.getElementById("box"));
  const img = document.getElementById("pic");
  let app = null;
  try { app = await (await fetch("/outside?from=page")).text(); } catch (e) { app = String(e); }
  document.getElementById("result").textContent = JSON.stringify({
    color: box.color, width: box.width, js: window.ranFromMount === true,
    img: [img.complete, img.naturalWidth, img.naturalHeight], app: app,
    page: location.protocol,
  });
});
"""


def png(width: int, height: int) -> bytes:
    """A valid RGB PNG of the given size (every pixel teal)."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return (struct.pack(">I", len(data)) + kind + data
                + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))
    rows = b"".join(b"\x00" + b"\x00\x80\x80" * width for _ in range(height))
    return (b"\x89PNG\r\n\x1a\n"
            + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(rows)) + chunk(b"IEND", b""))


def test_browser_page_css_js_image_from_the_mount(server_factory, tmp_path):
    assets = tmp_path / "assets"
    assets.mkdir()
    (assets / "index.html").write_bytes(PAGE)
    (assets / "style.css").write_bytes(CSS)
    # The script exists as the original and a gzip sibling whose content
    # differs in one word: the page reports which one the browser ran.
    (assets / "app.js").write_bytes(JS.replace(b"= true;\n", b"= 'identity';\n", 1))
    (assets / "app.js.gz").write_bytes(gzip.compress(JS))
    (assets / "pic.png").write_bytes(png(3, 2))
    srv = server_factory(APP, "--static", f"/assets={assets}")
    home = nss_home(tmp_path / "home", tls_certs().ca) if TLS else None
    deadline = time.monotonic() + 30
    with chrome(tmp_path, home) as driver:
        driver.get(f"{srv.url}/assets/")
        remaining = max(1.0, deadline - time.monotonic())
        text = WebDriverWait(driver, remaining, poll_frequency=0.1).until(
            lambda d: (t := d.find_element(By.ID, "result").text) != "pending" and t)
        result = json.loads(text)
    assert result["page"] == ("https:" if TLS else "http:"), result
    assert result["color"] == "rgb(12, 34, 56)", result  # the stylesheet applied
    assert result["width"] == "123px", result
    assert result["js"] is True, result  # the gzip variant ran, decoded by the browser
    assert result["img"] == [True, 3, 2], result  # the image decoded
    assert result["app"] == "app:/outside?from=page", result
    log = srv.log_text()
    for path in ("/assets/ ", "/assets/style.css ", "/assets/app.js ", "/assets/pic.png "):
        assert f"GET {path}" in log, log
