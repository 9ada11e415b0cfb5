"""A real browser loads a page over https and opens a wss:// WebSocket (issue 14).

Headless Chromium (tests/browser.py) trusts the test CA of tests/tls_certs.py
the way a user's browser trusts a CA: the CA certificate is imported into an
NSS database under a HOME of the test's own, which is where Chromium on
Linux looks.  So the browser really checks the chain, the validity dates
and the SAN against the name in the URL; no "ignore certificate errors"
switch is involved.  `test_browser_refuses_other_ca` proves that: a server
certificate for the same names from a second, untrusted CA gets Chromium's
interstitial, not the page.

The page (tests/apps/tls_browser_app.py) fetches /scope, opens
wss://<same host>/ws, sends "hello", reads the echo, closes with 1000 and
writes the outcome into the DOM, which the test reads.  Bounded: 30 s per
browser run.  A missing chromium, chromedriver or certutil fails (make deps
installs them).  Under POUNCE_TEST_SERVER=uvicorn the same tests run
against uvicorn's --ssl-*.  The servers here are given their certificate
explicitly, so the tests mean the same under POUNCE_TEST_TLS=1.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chrome, nss_home
from tests.server import SERVER_KIND

APP = "tests.apps.tls_browser_app:app"
# The keys of the ASGI TLS extension (scope["extensions"]["tls"]).
ASGI_TLS_KEYS = {"server_cert", "client_cert_chain", "client_cert_name", "client_cert_error",
                 "tls_version", "cipher_suite"}


def open_page(url: str, home: Path, workdir: Path, timeout: float = 30.0) -> dict:
    """Load url in headless Chromium with HOME=home; returns the JSON the
    page wrote into #result, or {"status": "no page", "source": ...} when
    the browser did not show the page (a certificate error)."""
    deadline = time.monotonic() + timeout
    with chrome(workdir, home) as driver:
        driver.get(url)
        try:
            driver.find_element(By.ID, "result")
        except NoSuchElementException:
            return {"status": "no page", "title": driver.title, "source": driver.page_source}
        remaining = max(1.0, deadline - time.monotonic())
        text = WebDriverWait(driver, remaining, poll_frequency=0.1).until(
            lambda d: (t := d.find_element(By.ID, "result").text) != "pending" and t)
        return json.loads(text)


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_browser_https_page_and_wss(server_factory, certs, tmp_path, host):
    srv = server_factory(APP, *certs.server_args())
    home = nss_home(tmp_path / "home", certs.ca)
    result = open_page(f"https://{host}:{srv.port}/", home, tmp_path)
    assert result["status"] == "ok", result
    assert result["page"] == "https:"
    assert result["http"]["scheme"] == "https", result
    if SERVER_KIND == "pounce":
        # Issue 14: the ASGI TLS extension is in the scope (uvicorn has none).
        assert set(result["http"]["tls"] or ()) >= ASGI_TLS_KEYS, result
    # The app saw the WebSocket's scope scheme as wss.
    assert result["echo"] == "hello over wss", result
    assert result["log"] == ["open", "close 1000"], result


def test_browser_refuses_other_ca(server_factory, certs, tmp_path):
    # Same names, valid dates, but issued by a CA the browser does not trust:
    # proof that the page loads above only because the test CA is trusted.
    srv = server_factory(APP, *certs.server_args(certs.rogue_server_cert, certs.rogue_server_key))
    home = nss_home(tmp_path / "home", certs.ca)
    result = open_page(f"https://localhost:{srv.port}/", home, tmp_path)
    assert result["status"] == "no page", result
    # Chromium's interstitial names the reason.
    assert "ERR_CERT_AUTHORITY_INVALID" in result["source"], (result["title"], result["source"][-3000:])
