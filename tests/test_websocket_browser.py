"""A real browser opens a WebSocket to the server under test.

Headless Chromium from Debian (the Makefile's DEB_PACKAGES installs it)
loads /browser from tests/apps/ws_app.py.  The page's script opens a
WebSocket back to the same server (offering a subprotocol, which the app
selects; Chromium always offers permessage-deflate), echoes a text message, a 70000-byte binary
message and a 140 KB text message, and writes the outcome into the DOM.

The test drives Chromium through its remote-debugging protocol (CDP), with
the `websockets` client the suite already uses, so no WebDriver is needed:
it reads `DevToolsActivePort` from the profile directory, attaches to the
page and polls the DOM with Runtime.evaluate.  Bounded: 20 s at most.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from tests.server import wait_record

APP = "tests.apps.ws_app:app"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")


def _devtools_port(profile: Path, proc: subprocess.Popen, deadline: float) -> int:
    f = profile / "DevToolsActivePort"
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"chromium exited with {proc.returncode}")
        try:
            return int(f.read_text().splitlines()[0])
        except (FileNotFoundError, IndexError, ValueError):
            time.sleep(0.05)
    raise AssertionError("chromium did not open its debugging port")


def _page_ws_url(port: int, deadline: float) -> str:
    while time.monotonic() < deadline:
        targets = httpx.get(f"http://127.0.0.1:{port}/json/list", timeout=5).json()
        pages = [t for t in targets if t.get("type") == "page" and "/browser" in t.get("url", "")]
        if pages:
            return pages[0]["webSocketDebuggerUrl"]
        time.sleep(0.05)
    raise AssertionError("no page target in chromium")


def _evaluate(cdp, msg_id: int, expression: str):
    cdp.send(json.dumps({"id": msg_id, "method": "Runtime.evaluate",
                         "params": {"expression": expression, "returnByValue": True}}))
    while True:
        reply = json.loads(cdp.recv(timeout=5))
        if reply.get("id") == msg_id:
            return reply["result"]["result"].get("value")


@pytest.mark.skipif(CHROMIUM is None, reason="chromium is not installed (make deps installs it from DEB_PACKAGES)")
def test_browser_websocket_echo(server_factory, record_dir, tmp_path):
    srv = server_factory(APP)
    token = uuid.uuid4().hex
    profile = tmp_path / "profile"
    url = f"{srv.url}/browser#{token}"
    proc = subprocess.Popen(
        [CHROMIUM, "--headless=new", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-extensions", "--disable-background-networking", "--no-proxy-server",
         f"--user-data-dir={profile}", "--remote-debugging-port=0", "--remote-debugging-address=127.0.0.1",
         url],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
        start_new_session=True,
        # Under `make asan` the sanitizer runtime is preloaded into every
        # process; the browser is not instrumented and must not get it.
        env={k: v for k, v in os.environ.items() if k != "LD_PRELOAD"},
    )
    deadline = time.monotonic() + 20
    result = None
    try:
        port = _devtools_port(profile, proc, deadline)
        with connect(_page_ws_url(port, deadline), proxy=None, max_size=None, open_timeout=5) as cdp:
            n = 0
            while time.monotonic() < deadline:
                n += 1
                text = _evaluate(cdp, n, "document.getElementById('result') && "
                                         "document.getElementById('result').textContent")
                if text and text != "pending":
                    result = json.loads(text)
                    break
                time.sleep(0.1)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        _, err = proc.communicate(timeout=10)
    assert result is not None, f"the page never finished; chromium stderr:\n{err.decode(errors='replace')[-2000:]}"
    assert result["status"] == "ok", result
    assert result["log"] == ["open", "ok 0", "ok 1", "ok 2", "ok 3", "close 1000"], result
    assert result["protocol"] == "chat.v1"
    # Chromium offers permessage-deflate; the server accepted it.
    assert "permessage-deflate" in result["extensions"], result
    # The page closed with 1000 "bye" and reported only after the closing
    # handshake finished, so the app has seen that close frame.
    lines = wait_record(record_dir, token, "disconnect", timeout=5)
    assert lines == ["disconnect 1000"], lines
