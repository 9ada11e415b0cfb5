"""A real browser loads a page over https and opens a wss:// WebSocket (issue 14).

Headless Chromium from Debian, driven by Selenium through Debian's
chromedriver (as in tests/test_websocket_browser.py), trusts the test CA of
tests/tls_ca.py the way a user's browser trusts a CA: the CA certificate is
imported into an NSS database (`certutil`, Debian's libnss3-tools) under a
HOME of the test's own, which is where Chromium on Linux looks.  So the
browser really checks the chain, the validity dates and the SAN against the
name in the URL; no "ignore certificate errors" switch is involved.
`test_browser_refuses_other_ca` proves that: a server certificate from a
second, untrusted CA gets Chromium's interstitial, not the page.

The page (tests/apps/tls_browser_app.py) fetches /scope, opens
wss://<same host>/ws, sends "hello", reads the echo, closes with 1000 and
writes the outcome into the DOM, which the test reads.  Bounded: 30 s per
browser run.

Until Pounce's TLS transport lands, these tests skip, and only for that
reason: when `pounce --help` has no --ssl-certfile.  A missing chromium,
chromedriver or certutil fails (make deps installs them).  Under
POUNCE_TEST_SERVER=uvicorn the same tests run against uvicorn's --ssl-*.
"""

from __future__ import annotations

import functools
import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from selenium import webdriver
from selenium.common.exceptions import NoSuchElementException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.server import SERVER_KIND, VENV_BIN
from tests.tls_ca import make_test_ca, tls_ca  # noqa: F401  (fixture)

APP = "tests.apps.tls_browser_app:app"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CERTUTIL = shutil.which("certutil")
# The keys of the ASGI TLS extension (scope["extensions"]["tls"]).
ASGI_TLS_KEYS = {"server_cert", "client_cert_chain", "client_cert_name", "client_cert_error",
                 "tls_version", "cipher_suite"}
DEPS = "make deps installs chromium, chromium-driver and libnss3-tools (DEB_PACKAGES)"


@functools.cache
def server_lacks_tls() -> str | None:
    """Why the server under test cannot serve TLS yet, or None."""
    if SERVER_KIND != "pounce":
        return None
    p = subprocess.run([str(VENV_BIN / "pounce"), "--help"], capture_output=True, text=True,
                       timeout=30)
    assert p.returncode == 0, f"pounce --help failed: {p.stdout}{p.stderr}"
    if "--ssl-certfile" not in p.stdout:
        return "pounce has no --ssl-certfile yet (issue 14: the TLS transport has not landed)"
    return None


@pytest.fixture
def needs_tls():
    assert CHROMIUM and CHROMEDRIVER, f"chromium or chromedriver is missing: {DEPS}"
    assert CERTUTIL, f"certutil is missing: {DEPS}"
    why = server_lacks_tls()
    if why:
        pytest.skip(why)


def nss_home(home: Path, ca_cert: Path) -> Path:
    """A HOME whose NSS database (~/.pki/nssdb, where Chromium on Linux keeps
    its trust store) trusts ca_cert to issue server certificates."""
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for args in (["-N", "--empty-password"],
                 ["-A", "-n", "pounce-test-ca", "-t", "C,,", "-i", str(ca_cert)]):
        p = subprocess.run([CERTUTIL, "-d", f"sql:{db}", *args], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, f"certutil {args}: {p.stdout}{p.stderr}"
    return home


def open_page(url: str, home: Path, workdir: Path, timeout: float = 30.0) -> dict:
    """Load url in headless Chromium with HOME=home; returns the JSON the
    page wrote into #result, or {"status": "no page", "source": ...} when
    the browser did not show the page (a certificate error)."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking",
                "--no-proxy-server", f"--user-data-dir={workdir / 'profile'}"):
        options.add_argument(arg)
    # chromedriver starts the browser with its own environment: HOME points
    # both at the NSS database.  No LD_PRELOAD (make asan): neither program
    # is instrumented.  SE_OFFLINE: the driver is given, never downloaded.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env.update(HOME=str(home), SE_OFFLINE="true")
    service = Service(executable_path=CHROMEDRIVER, env=env,
                      log_output=str(workdir / "chromedriver.log"))
    deadline = time.monotonic() + timeout
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(10)
        driver.get(url)
        try:
            driver.find_element(By.ID, "result")
        except NoSuchElementException:
            return {"status": "no page", "title": driver.title, "source": driver.page_source}
        remaining = max(1.0, deadline - time.monotonic())
        text = WebDriverWait(driver, remaining, poll_frequency=0.1).until(
            lambda d: (t := d.find_element(By.ID, "result").text) != "pending" and t)
        return json.loads(text)
    finally:
        driver.quit()


@pytest.mark.parametrize("host", ["localhost", "127.0.0.1"])
def test_browser_https_page_and_wss(needs_tls, server_factory, tls_ca, tmp_path, host):
    srv = server_factory(APP, *tls_ca.server_args())
    home = nss_home(tmp_path / "home", tls_ca.ca_cert)
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


def test_browser_refuses_other_ca(needs_tls, server_factory, tls_ca, tmp_path):
    # Same names, valid dates, but issued by a CA the browser does not trust:
    # proof that the page loads above only because the test CA is trusted.
    other = make_test_ca(tmp_path / "other-ca")
    srv = server_factory(APP, *other.server_args())
    home = nss_home(tmp_path / "home", tls_ca.ca_cert)
    result = open_page(f"https://localhost:{srv.port}/", home, tmp_path)
    assert result["status"] == "no page", result
    # Chromium's interstitial names the reason.
    assert "ERR_CERT_AUTHORITY_INVALID" in result["source"], (result["title"], result["source"][-3000:])
