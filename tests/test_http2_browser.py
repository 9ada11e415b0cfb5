"""A real browser speaks HTTP/2 to Pounce over TLS (issue 15).

Headless Chromium (tests/browser.py; the test CA trusted through an NSS
database, as in tests/test_tls_browser.py) loads /page from
tests/apps/h2_app.py over https.  Its script fetch()es 50 URLs at once and
writes into #result how many answered and each fetch's nextHopProtocol from
the Resource Timing API; the app records, for each fetch, scope["client"]
and scope["http_version"].  All 50 must be "h2" in the browser and "2" in
the app, from one client address and port: one connection, multiplexed.
Bounded: 30 s.  The server is given its certificate explicitly, so the
test means the same under POUNCE_TEST_TLS=1.
"""

from __future__ import annotations

import json
import time
import uuid

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.browser import chrome, nss_home
from tests.server import read_record

pytestmark = pytest.mark.pounce_only("HTTP/2 is Pounce's own transport (uvicorn has none)")

APP = "tests.apps.h2_app:app"


def test_browser_50_parallel_fetches_over_one_h2_connection(server_factory, certs, tmp_path,
                                                            record_dir):
    srv = server_factory(APP, *certs.server_args())
    home = nss_home(tmp_path / "home", certs.ca)
    token = uuid.uuid4().hex
    deadline = time.monotonic() + 30
    with chrome(tmp_path, home) as driver:
        driver.get(f"https://127.0.0.1:{srv.port}/page?token={token}")
        remaining = max(1.0, deadline - time.monotonic())
        text = WebDriverWait(driver, remaining, poll_frequency=0.1).until(
            lambda d: (t := d.find_element(By.ID, "result").text) != "pending" and t)
    result = json.loads(text)
    assert result.get("ok") == 50, result
    assert result["page"] == "h2", result
    assert result["protocols"] == ["h2"] * 50, result
    records = [json.loads(line) for line in read_record(record_dir, token)]
    assert sorted(int(r[3]) for r in records) == list(range(50)), records
    assert {r[2] for r in records} == {"2"}, records
    clients = {(r[0], r[1]) for r in records}
    assert len(clients) == 1, clients  # one connection carried all 50
