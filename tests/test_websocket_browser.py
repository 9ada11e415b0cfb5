"""A real browser opens a WebSocket to the server under test.

Headless Chromium from Debian, driven by Selenium (PyPI) through Debian's
chromedriver (the Makefile's DEB_PACKAGES installs both), loads /browser
from tests/apps/ws_app.py.  The page's script opens a WebSocket back to the
same server (offering a subprotocol, which the app selects; Chromium always
offers permessage-deflate), echoes a text message, a 70000-byte binary
message and a 140 KB text message, closes with 1000 and, once the closing
handshake is over, writes the outcome into the DOM, which the test reads.
Bounded: 30 s at most.

Under POUNCE_TEST_TLS=1 the page is https:// and the socket wss:// (the
page picks the scheme from location.protocol); Chromium trusts the test CA
through an NSS database (tests/browser.py), as a user's browser would.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import CHROMEDRIVER, CHROMIUM, chrome, nss_home
from tests.server import TLS, tls_certs, wait_record

APP = "tests.apps.ws_app:app"


@pytest.mark.skipif(CHROMIUM is None or CHROMEDRIVER is None,
                    reason="chromium or chromedriver is not installed "
                           "(make deps installs chromium and chromium-driver from DEB_PACKAGES)")
def test_browser_websocket_echo(server_factory, record_dir, tmp_path):
    srv = server_factory(APP)
    token = uuid.uuid4().hex
    home = nss_home(tmp_path / "home", tls_certs().ca) if TLS else None
    deadline = time.monotonic() + 30
    with chrome(tmp_path, home) as driver:
        driver.get(f"{srv.url}/browser#{token}")
        remaining = max(1.0, deadline - time.monotonic())
        text = WebDriverWait(driver, remaining, poll_frequency=0.1).until(
            lambda d: (t := d.find_element(By.ID, "result").text) != "pending" and t)
        result = json.loads(text)
    assert result["page"] == ("https:" if TLS else "http:"), result
    assert result["status"] == "ok", result
    assert result["log"] == ["open", "ok 0", "ok 1", "ok 2", "ok 3", "close 1000"], result
    assert result["protocol"] == "chat.v1"
    # Chromium offers permessage-deflate; the server accepted it.
    assert "permessage-deflate" in result["extensions"], result
    # The page closed with 1000 "bye" and reported only after the closing
    # handshake finished, so the app has seen that close frame.
    lines = wait_record(record_dir, token, "disconnect", timeout=5)
    assert lines == ["disconnect 1000"], lines
