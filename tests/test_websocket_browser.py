"""A real browser opens a WebSocket to the server under test.

Headless Chromium from Debian, driven by Selenium (PyPI) through Debian's
chromedriver (the Makefile's DEB_PACKAGES installs both), loads /browser
from tests/apps/ws_app.py.  The page's script opens a WebSocket back to the
same server (offering a subprotocol, which the app selects; Chromium always
offers permessage-deflate), echoes a text message, a 70000-byte binary
message and a 140 KB text message, closes with 1000 and, once the closing
handshake is over, writes the outcome into the DOM, which the test reads.
Bounded: 30 s at most.
"""

from __future__ import annotations

import json
import os
import shutil
import time
import uuid

import pytest
from selenium import webdriver
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.server import wait_record

APP = "tests.apps.ws_app:app"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
CHROMEDRIVER = shutil.which("chromedriver")


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="chromium or chromedriver is not installed "
                           "(make deps installs chromium and chromium-driver from DEB_PACKAGES)")
def test_browser_websocket_echo(server_factory, record_dir, tmp_path):
    srv = server_factory(APP)
    token = uuid.uuid4().hex
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
                "--disable-extensions", "--disable-background-networking",
                "--no-proxy-server", f"--user-data-dir={tmp_path / 'profile'}"):
        options.add_argument(arg)
    # Under `make asan` the sanitizer runtime is preloaded into every
    # process; chromedriver and the browser are not instrumented and must
    # not get it.  SE_OFFLINE keeps Selenium Manager from looking for a
    # driver on the network: the driver is given explicitly.
    env = {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}
    env["SE_OFFLINE"] = "true"
    service = Service(executable_path=CHROMEDRIVER, env=env,
                      log_output=str(tmp_path / "chromedriver.log"))
    deadline = time.monotonic() + 30
    driver = webdriver.Chrome(service=service, options=options)
    try:
        driver.set_page_load_timeout(10)
        driver.get(f"{srv.url}/browser#{token}")
        remaining = max(1.0, deadline - time.monotonic())
        text = WebDriverWait(driver, remaining, poll_frequency=0.1).until(
            lambda d: (t := d.find_element(By.ID, "result").text) != "pending" and t)
        result = json.loads(text)
    finally:
        driver.quit()
    assert result["status"] == "ok", result
    assert result["log"] == ["open", "ok 0", "ok 1", "ok 2", "ok 3", "close 1000"], result
    assert result["protocol"] == "chat.v1"
    # Chromium offers permessage-deflate; the server accepted it.
    assert "permessage-deflate" in result["extensions"], result
    # The page closed with 1000 "bye" and reported only after the closing
    # handshake finished, so the app has seen that close frame.
    lines = wait_record(record_dir, token, "disconnect", timeout=5)
    assert lines == ["disconnect 1000"], lines
