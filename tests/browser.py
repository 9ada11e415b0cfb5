"""Headless Chromium for the browser tests (tests/test_websocket_browser.py,
tests/test_tls_browser.py), driven by Selenium through Debian's
chromedriver (the Makefile's DEB_PACKAGES installs both, and certutil).

nss_home() makes a HOME whose NSS database trusts a CA: that is where
Chromium on Linux keeps its trust store, so a test CA given this way is
trusted as a user's own CA would be (the chain, the dates and the SAN
against the URL's name are all checked; no "ignore certificate errors"
switch is involved).  chrome() starts the browser with that HOME.

Runs in the pytest process only; nothing here is shared between threads.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import subprocess
from pathlib import Path

from selenium import webdriver
from selenium.webdriver.chrome.service import Service

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")
CERTUTIL = shutil.which("certutil")
DEPS = "make deps installs chromium, chromium-driver and libnss3-tools (DEB_PACKAGES)"


def nss_home(home: Path, ca_cert: Path) -> Path:
    """A HOME whose NSS database (~/.pki/nssdb) trusts ca_cert to issue
    server certificates."""
    assert CERTUTIL, f"certutil is missing: {DEPS}"
    db = home / ".pki" / "nssdb"
    db.mkdir(parents=True)
    for args in (["-N", "--empty-password"],
                 ["-A", "-n", "pounce-test-ca", "-t", "C,,", "-i", str(ca_cert)]):
        p = subprocess.run([CERTUTIL, "-d", f"sql:{db}", *args], capture_output=True, text=True,
                           timeout=30)
        assert p.returncode == 0, f"certutil {args}: {p.stdout}{p.stderr}"
    return home


@contextlib.contextmanager
def chrome(workdir: Path, home: Path | None = None):
    """A headless Chromium WebDriver (profile and driver log in workdir,
    HOME=home when given); quit on exit."""
    assert CHROMIUM and CHROMEDRIVER, f"chromium or chromedriver is missing: {DEPS}"
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking",
                "--no-proxy-server", f"--user-data-dir={workdir / 'profile'}"):
        options.add_argument(arg)
    # chromedriver starts the browser with its own environment: HOME points
    # both at the NSS database.  No LD_PRELOAD (make asan / make tsan):
    # neither program is instrumented.  SE_OFFLINE keeps Selenium Manager
    # from looking for a driver on the network: the driver is given.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["SE_OFFLINE"] = "true"
    if home is not None:
        env["HOME"] = str(home)
    service = Service(executable_path=CHROMEDRIVER, env=env,
                      log_output=str(workdir / "chromedriver.log"))
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(10)
        yield driver
    finally:
        driver.quit()
