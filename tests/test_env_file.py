"""--env-file: a dotenv file read before the settings are resolved.

Priority: command line > environment > env file > config file > default;
the app sees the file's variables in os.environ, except those the
environment already sets.  Through the real server, plus the parser's
errors (FILE:LINE) through load_config.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server import ROOT, SERVER_KIND, VENV_BIN, get

pytestmark = pytest.mark.skipif(SERVER_KIND != "pounce", reason="pounce's own --env-file")

APP = '''\
import os

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    name = scope["path"].strip("/")
    value = os.environ.get(name, "<unset>")
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": value.encode()})
'''


@pytest.fixture
def app_dir(tmp_path):
    (tmp_path / "envfile_app.py").write_text(APP)
    return tmp_path


def test_the_app_sees_the_variables(server_factory, app_dir):
    env = app_dir / "dev.env"
    env.write_text(
        "# settings for development\n"
        "export GREETING='hello from the file'\n"
        'QUOTED="two\\nlines"  # a comment\n'
        "PLAIN = spaced value # a comment\n"
    )
    srv = server_factory("envfile_app:app", "--app-dir", str(app_dir), "--env-file", str(env))
    assert get(srv, "/GREETING").body == b"hello from the file"
    assert get(srv, "/QUOTED").body == b"two\nlines"
    assert get(srv, "/PLAIN").body == b"spaced value"


def test_the_environment_wins(server_factory, app_dir):
    env = app_dir / "dev.env"
    env.write_text("GREETING=from the file\nOTHER=also from the file\n")
    srv = server_factory(
        "envfile_app:app",
        "--app-dir",
        str(app_dir),
        env={"GREETING": "from the environment", "POUNCE_ENV_FILE": str(env)},
    )
    assert get(srv, "/GREETING").body == b"from the environment"
    assert get(srv, "/OTHER").body == b"also from the file"


def test_pounce_settings_in_the_file_apply(server_factory, app_dir):
    # POUNCE_SERVER_HEADER=off in the file turns the Server header off.
    env = app_dir / "dev.env"
    env.write_text("POUNCE_SERVER_HEADER=off\n")
    srv = server_factory("envfile_app:app", "--app-dir", str(app_dir), "--env-file", str(env))
    assert get(srv, "/").header("server") is None


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_pounce_port_in_the_file(app_dir):
    # The test harness passes --port 0 on the command line (which would win),
    # so this one starts pounce itself, without --port.
    port = _free_port()
    (app_dir / ".env").write_text(f"POUNCE_PORT={port}\n")
    proc = subprocess.Popen(
        [str(VENV_BIN / "pounce"), "envfile_app:app", "--env-file", ".env"],
        cwd=app_dir,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        line = b""
        while time.monotonic() < deadline:
            line = proc.stdout.readline()
            if b"Listening on" in line or not line:
                break
        assert f"Listening on http://127.0.0.1:{port} ".encode() in line, line
        with socket.create_connection(("127.0.0.1", port), timeout=5) as c:
            c.sendall(b"GET /POUNCE_PORT HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
            data = b""
            while chunk := c.recv(4096):
                data += chunk
        assert data.endswith(str(port).encode())  # the app sees it too
    finally:
        os.killpg(proc.pid, 15)
        proc.wait(10)
        proc.stdout.close()


@pytest.mark.parametrize(
    "content, message",
    [
        ("A=1\nJUST_A_WORD\n", "bad.env:2: expected KEY=VALUE, got 'JUST_A_WORD'"),
        ("# ok\n\n2X=1\n", "bad.env:3: invalid variable name '2X'"),
        ('A="open\n', 'bad.env:1: missing closing " (values are one line)'),
        ("A='x' y\n", "bad.env:1: unexpected text after the closing quote: 'y'"),
        ('A="\\q"\n', "bad.env:1: unknown escape \\q in a double-quoted value"),
        ("A=1\nPOUNCE_PORT=eighty\n", "bad.env:2: POUNCE_PORT: expected an integer"),
        ("POUNCE_PORT=70000\n", "bad.env:1: POUNCE_PORT: "),
    ],
)
def test_errors_name_file_and_line(app_dir, content, message):
    (app_dir / "bad.env").write_text(content)
    r = subprocess.run(
        [str(VENV_BIN / "pounce"), "envfile_app:app", "--env-file", "bad.env"],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 2, r
    assert r.stderr.startswith("pounce: error: " + message), r.stderr


def test_missing_file(app_dir):
    r = subprocess.run(
        [str(VENV_BIN / "pounce"), "envfile_app:app", "--env-file", "nope.env"],
        cwd=app_dir,
        capture_output=True,
        text=True,
        timeout=10,
    )
    assert r.returncode == 2
    assert "nope.env: no such file (--env-file)" in r.stderr


def test_priority(tmp_path):
    from pounce._config import load_config

    (tmp_path / ".env").write_text("POUNCE_PORT=2\nPOUNCE_BACKLOG=20\nPOUNCE_HOST=::1\n")
    (tmp_path / "pounce.toml").write_text('port = 1\nbacklog = 10\nenv_file = ".env"\nroot_path = "/t"\n')
    origins: dict[str, str] = {}
    values: dict[str, str] = {}
    c = load_config(
        {"host": "0.0.0.0"},
        environ={"POUNCE_PORT": "3"},
        cwd=str(tmp_path),
        origins=origins,
        env_file_values=values,
    )
    # command line > environment > env file > config file > default
    assert (c.host, c.port, c.backlog, c.root_path) == ("0.0.0.0", 3, 20, "/t")
    assert origins["backlog"] == ".env:2: POUNCE_BACKLOG"
    assert values == {"POUNCE_PORT": "2", "POUNCE_BACKLOG": "20", "POUNCE_HOST": "::1"}
    # No env file named: nothing read, nothing returned.
    values.clear()
    (tmp_path / "pounce.toml").write_text("port = 1\n")
    assert load_config({}, environ={}, cwd=str(tmp_path), env_file_values=values).port == 1
    assert values == {}
