"""The access log through the real server (docs/operations.md, "Access log"):
the four --access-log-format formats with hostile header bytes, JSON parsed
line by line, --access-log-file and its logrotate-style reopen on SIGUSR1
(rename, signal, no line lost) in both worker modes and under
pounce.run(), lines routed through the ``pounce.access`` logger when it has
handlers, and the method and target of answers given before dispatch
(400, 413, 414, 431).

The line formats byte by byte, every escape and the clock are tested in C
(tests/c/test_log.c)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.server import ROOT, TLS, VENV_BIN, RawConn, tls_certs
from tests.test_workers import _wait_for

pytestmark = pytest.mark.pounce_only("the access-log formats and files are Pounce's")

APP = "tests.apps.protocol:app"
MODES = ["thread", "process"]

# What a hostile client may put in headers the combined and json formats
# show: a quote, a backslash, UTF-8, and a byte that is no UTF-8 (obs-text,
# RFC 9110 §5.5, which the parser lets through in field values).
HOSTILE_REFERER = b'http://r/"q\\\xc3\xa9'
HOSTILE_UA = b"ua \xff\xfe end"


def _request(srv, target: str = "/", headers: bytes = b"") -> int:
    with RawConn("127.0.0.1", srv.port) as c:
        c.send(f"GET {target} HTTP/1.1\r\nHost: x\r\n".encode() + headers + b"\r\n")
        return c.read_response().status


def _lines(path: Path) -> list[str]:
    try:
        return path.read_bytes().decode("utf-8").splitlines()
    except FileNotFoundError:
        return []


@pytest.mark.parametrize(
    "fmt, pattern",
    [
        ("default", r'^127\.0\.0\.1:(\d+) - "GET /\?y=1 HTTP/1\.1" 200 13 [\d.]+ms$'),
        (
            "common",
            r"^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
            r'"GET /\?y=1 HTTP/1\.1" 200 13$',
        ),
        (
            "combined",
            r"^127\.0\.0\.1 - - \[\d\d/[A-Z][a-z]{2}/\d{4}:\d\d:\d\d:\d\d \+0000\] "
            r'"GET /\?y=1 HTTP/1\.1" 200 13 "http://r/\\x22q\\x5C\\xC3\\xA9" '
            r'"ua \\xFF\\xFE end"$',
        ),
    ],
)
def test_text_formats(server_factory, tmp_path, fmt, pattern):
    log = tmp_path / "access.log"
    srv = server_factory(APP, "--access-log-format", fmt, "--access-log-file", str(log))
    hdrs = b"Referer: " + HOSTILE_REFERER + b"\r\nUser-Agent: " + HOSTILE_UA + b"\r\n"
    assert _request(srv, "/?y=1", hdrs) == 200
    lines = _wait_for(lambda: _lines(log))
    assert len(lines) == 1 and re.match(pattern, lines[0]), lines
    # The file took the line; stderr did not.
    assert "/?y=1" not in srv.log_text()


def test_json_format_parses_line_by_line(server_factory, tmp_path):
    log = tmp_path / "access.log"
    srv = server_factory(APP, "--access-log-format", "json", "--access-log-file", str(log))
    hdrs = b"Referer: " + HOSTILE_REFERER + b"\r\nUser-Agent: " + HOSTILE_UA + b"\r\n"
    assert _request(srv, "/?y=1", hdrs) == 200
    assert _request(srv, "/nothing-here") == 404
    with RawConn("127.0.0.1", srv.port) as c:  # HTTP/1.0, and a body
        port = c.local_port
        c.send(b"POST /echo HTTP/1.0\r\nContent-Length: 3\r\n\r\nabc")
        assert c.read_response().status == 200
    lines = _wait_for(lambda: len(_lines(log)) >= 3 and _lines(log))
    recs = [json.loads(line) for line in lines]  # every line is one JSON object
    assert len(recs) == 3
    first, missing, post = recs
    assert first["method"] == "GET" and first["target"] == "/?y=1"
    assert first["status"] == 200 and first["bytes"] == 13
    assert first["http_version"] == "1.1"
    # Valid UTF-8 is kept as text; the bytes that are not are the text \xHH.
    assert first["referer"] == 'http://r/"q\\é'
    assert first["user_agent"] == "ua \\xFF\\xFE end"
    assert first["request_id"] is None
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", first["time"])
    assert abs(time.time() - time.mktime(time.strptime(first["time"][:19], "%Y-%m-%dT%H:%M:%S"))
               + time.timezone) < 60
    assert isinstance(first["duration_ms"], float) and first["duration_ms"] >= 0
    assert first["pid"] > 0 and first["client"].startswith("127.0.0.1:")
    assert missing["status"] == 404 and missing["referer"] is None and missing["user_agent"] is None
    assert post == {**post, "method": "POST", "target": "/echo", "http_version": "1.0",
                    "bytes": 3, "client": f"127.0.0.1:{port}"}


class _Load:
    """Clients sending requests until stopped, each on a fresh connection
    (so every worker gets some); counts the responses."""

    def __init__(self, srv, clients: int = 4):
        self.srv, self.sent, self.stop = srv, 0, threading.Event()
        self.lock = threading.Lock()
        self.threads = [threading.Thread(target=self._run) for _ in range(clients)]
        for t in self.threads:
            t.start()

    def _run(self) -> None:
        while not self.stop.is_set():
            assert _request(self.srv) == 200
            with self.lock:
                self.sent += 1

    def finish(self) -> int:
        self.stop.set()
        for t in self.threads:
            t.join(10)
        return self.sent


def _settle(*paths: Path) -> None:
    """Wait until no line is being added to these files: a response reaches
    its client before the worker's batch writes its line."""
    last, quiet = None, 0
    deadline = time.monotonic() + 5
    while quiet < 4 and time.monotonic() < deadline:
        now = tuple(len(_lines(p)) for p in paths)
        quiet = quiet + 1 if now == last else 0
        last = now
        time.sleep(0.05)


def _batch_lands_in(srv, new: Path, old: Path, sent: list[int], n: int = 40) -> bool:
    """Send n requests; True when all n lines went to `new` and none to
    `old`.  Every request sent is added to sent[0], whatever the answer."""
    _settle(new, old)
    before_old, before_new = len(_lines(old)), len(_lines(new))
    for _ in range(n):
        assert _request(srv) == 200
        sent[0] += 1
    _wait_for(lambda: len(_lines(new)) + len(_lines(old)) >= before_new + before_old + n)
    return len(_lines(old)) == before_old and len(_lines(new)) == before_new + n


def _check_rotation(srv, log: Path, signal_pid: int) -> None:
    rotated = log.with_name("access.log.1")
    load = _Load(srv)
    try:
        _wait_for(lambda: len(_lines(log)) >= 50)
        os.rename(log, rotated)  # logrotate: rename, then signal
        time.sleep(0.1)  # lines keep going to the renamed file meanwhile
        os.kill(signal_pid, signal.SIGUSR1)
        _wait_for(lambda: len(_lines(log)) >= 50)
    finally:
        sent = [load.finish()]
    # Every worker writes to the new file (a batch on fresh connections,
    # spread over the workers, lands there whole)...
    assert _wait_for(lambda: _batch_lands_in(srv, log, rotated, sent), timeout=5), (
        len(_lines(rotated)), len(_lines(log)))
    assert _batch_lands_in(srv, log, rotated, sent, 60)
    # ... and not one line was lost or doubled across the rename.
    total = _wait_for(lambda: len(_lines(rotated)) + len(_lines(log)) == sent[0] and sent[0])
    assert total == sent[0], (len(_lines(rotated)), len(_lines(log)), sent[0])
    assert all(" 200 13 " in line for line in _lines(rotated) + _lines(log))
    assert oct(log.stat().st_mode & 0o777) == oct(0o644 & ~_umask())
    assert srv.proc.poll() is None


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("mode", MODES)
def test_file_reopened_on_sigusr1(server_factory, tmp_path, mode):
    log = tmp_path / "access.log"
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode,
                         "--access-log-file", str(log))
    _check_rotation(srv, log, srv.proc.pid)  # the master: the PID in --pid-file


RUN_SCRIPT = """
import sys
import pounce
from tests.apps.protocol import app
# POUNCE_TEST_TLS=1: the certificate and key as two more arguments.
tls = dict(zip(("ssl_certfile", "ssl_keyfile"), sys.argv[3:]))
sys.exit(pounce.run(app, host="127.0.0.1", port=0, workers=2, worker_mode=sys.argv[1],
                    access_log_file=sys.argv[2], **tls))
"""


class _RunServer:
    """pounce.run() in a subprocess (no master): enough of tests.server.Server
    for _check_rotation."""

    def __init__(self, mode: str, log: Path):
        tls = (str(tls_certs().cert), str(tls_certs().key)) if TLS else ()
        self.proc = subprocess.Popen(
            [str(VENV_BIN / "python"), "-c", RUN_SCRIPT, mode, str(log), *tls],
            cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        )
        self.output: list[str] = []
        for line in self.proc.stdout:
            self.output.append(line)
            m = re.search(r"Listening on https?://127\.0\.0\.1:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        else:
            raise AssertionError("".join(self.output))
        threading.Thread(target=lambda: self.output.extend(self.proc.stdout), daemon=True).start()


@pytest.mark.parametrize("mode", MODES)
def test_pounce_run_reopens_on_sigusr1(tmp_path, mode):
    log = tmp_path / "access.log"
    srv = _RunServer(mode, log)
    try:
        _check_rotation(srv, log, srv.proc.pid)
    finally:
        srv.proc.send_signal(signal.SIGTERM)
        assert srv.proc.wait(15) == 0


@pytest.mark.parametrize("mode", MODES)
def test_sigusr1_without_a_file_is_harmless(server_factory, mode):
    srv = server_factory(APP, "--workers", "2", "--worker-mode", mode)
    before = srv.log_text().count('"GET / HTTP/1.1" 200')
    for _ in range(3):
        srv.proc.send_signal(signal.SIGUSR1)
        time.sleep(0.1)
    for _ in range(10):
        assert _request(srv) == 200
    _wait_for(lambda: srv.log_text().count('"GET / HTTP/1.1" 200') == before + 10)
    assert srv.log_text().count('"GET / HTTP/1.1" 200') == before + 10
    assert srv.proc.poll() is None
    assert srv.stop() == 0


def test_unopenable_file_stops_the_start(tmp_path):
    path = tmp_path / "no-such-dir" / "access.log"
    proc = subprocess.run(
        [str(VENV_BIN / "pounce"), APP, "--port", "0", "--access-log-file", str(path)],
        cwd=ROOT, capture_output=True, text=True, timeout=30,
    )
    assert proc.returncode == 1
    assert f"cannot open the access log file {path}: No such file or directory" in proc.stderr


LOGGING_APP = "tests.apps.access_logging:app"


@pytest.mark.parametrize("mode", MODES)
def test_lines_go_through_logging_when_configured(server_factory, tmp_path, mode):
    # The app module gives pounce.access a handler at import, before the
    # workers start: lines reach it as records, not the file or stderr.
    routed = tmp_path / "routed.log"
    srv = server_factory(LOGGING_APP, "--workers", "2", "--worker-mode", mode,
                         "--access-log-format", "json",
                         env={"POUNCE_TEST_ACCESS_LOG": str(routed)})
    for _ in range(20):
        assert _request(srv, "/?a") == 200
    lines = _wait_for(lambda: len(_lines(routed)) >= 20 and _lines(routed))
    assert len(lines) == 20
    for line in lines:
        level, _, text = line.partition(" ")
        assert level == "pounce.access:INFO"
        assert json.loads(text)["target"] == "/?a"
    assert '"target":"/?a"' not in srv.log_text()


# -- answers given before dispatch carry the request line when it was read


def _raw(srv, data: bytes) -> int:
    with RawConn("127.0.0.1", srv.port) as c:
        c.send(data)
        return c.read_response().status


def test_early_errors_log_method_and_target(server_factory):
    srv = server_factory(APP, "--max-request-size", "10", "--max-header-size", "2048")
    assert _raw(srv, b"POST /big?x=1 HTTP/1.1\r\nHost: x\r\nContent-Length: 99\r\n\r\n") == 413
    srv.wait_log(r'"POST /big\?x=1 HTTP/1\.1" 413 ')
    assert _raw(srv, b"GET /huge HTTP/1.1\r\nHost: x\r\nX: " + b"a" * 4000 + b"\r\n\r\n") == 431
    srv.wait_log(r'"GET /huge HTTP/1\.1" 431 ')
    assert _raw(srv, b"GET /bad\x1b HTTP/1.1\r\nHost: x\r\n\r\n") == 400
    assert _raw(srv, b"GET /obs HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n") == 400
    srv.wait_log(r'"GET /obs HTTP/1\.1" 400 ')
    # A request line that never parsed stays "- -".
    assert _raw(srv, b"\x01\x02 nonsense\r\n\r\n") == 400
    srv.wait_log(r'"- - HTTP/1\.1" 400 ')
