"""--log-config, --log-format and the no-duplicates rule (issue 13, item 2).

Everything runs the real server (the master, a generation, two workers in
either mode) with the app in tests/apps/logconf.py, which can configure
logging itself.  "Pounce's lines" are the ones the tests can name: the
master's "Listening on" and "SIGTERM received", the generation's start-up
line, and a warning logged on the 'pounce.test' logger inside a worker
while it serves GET /warn.  Each must appear exactly once, in the format of
whoever's handler took it.  The access log (written by the C core) is off.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time

import pytest

from tests.server import ROOT, get, run_to_exit, server_command

pytestmark = pytest.mark.pounce_only("--log-config/--log-format are Pounce's options")

APP = "tests.apps.logconf:app"

MODES = [
    pytest.param(("--worker-mode", "thread", "--workers", "2"), id="thread"),
    pytest.param(("--worker-mode", "process", "--workers", "2"), id="process"),
]

#: Pounce's lines, as regexes on the message; each must be logged exactly once.
LISTENING = r"Listening on http://"
STARTUP = r"Pounce \S+ on C?Python"
WARN = r"warn-from-worker \d+"
SIGTERM = r"SIGTERM received"
KEYS = (LISTENING, STARTUP, WARN, SIGTERM)
#: Logged on 'pounce' by a worker when the app raises (GET /raise).
APP_ERROR = r"Exception in ASGI application"

#: A line of Pounce's own text handler (FORMAT in pounce/_logging.py).
TEXT_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} \[(\d+)\] (\w+) (pounce\S*): (.*)$")
ISO_TIME = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def _serve_and_stop(server_factory, *args, env=None, paths=("/warn",)) -> list[str]:
    """Start, GET each path, wait for the worker's warning, SIGTERM; the
    output lines (stdout and stderr of every process, in order)."""
    full_env = {"LOGCONF_HOW": "none"}
    full_env.update(env or {})
    srv = server_factory(APP, "--no-access-log", *args, env=full_env)
    for path in paths:
        resp = get(srv, path)
        assert resp.status == (500 if path == "/raise" else 200), resp
    if "/warn" in paths:
        srv.wait_log(WARN)
    if "/raise" in paths:
        srv.wait_log(APP_ERROR)
    assert srv.stop() == 0
    srv.wait_log(SIGTERM)
    return [line for line in srv.log_text().splitlines() if line.strip()]


def _lines_with(lines: list[str], pattern: str) -> list[str]:
    return [line for line in lines if re.search(pattern, line)]


def _assert_once(lines: list[str], keys=KEYS) -> dict[str, str]:
    """Each key matches exactly one line; {key: that line}."""
    found = {}
    for key in keys:
        hits = _lines_with(lines, key)
        assert len(hits) == 1, f"{key!r} logged {len(hits)} times:\n" + "\n".join(lines)
        found[key] = hits[0]
    return found


def _write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text)
    return str(path)


# -- --log-format json ---------------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_json_format_every_line_parses(server_factory, mode):
    lines = _serve_and_stop(server_factory, "--log-format", "json", *mode, paths=("/warn", "/raise"))
    records = []
    for line in lines:
        rec = json.loads(line)  # every line Pounce writes is one JSON object
        assert set(rec) >= {"time", "level", "logger", "pid", "message"}, rec
        assert ISO_TIME.match(rec["time"]), rec["time"]
        assert rec["logger"] == "pounce" or rec["logger"].startswith("pounce."), rec
        records.append(rec)
    messages = [r["message"] for r in records]
    _assert_once(messages)
    by_key = {k: next(r for r in records if re.search(k, r["message"])) for k in KEYS}
    assert by_key[WARN]["level"] == "WARNING" and by_key[WARN]["logger"] == "pounce.test"
    assert by_key[LISTENING]["level"] == "INFO"
    # The master (the PID the test started) logs Listening; a worker the warning.
    master = by_key[LISTENING]["pid"]
    assert by_key[SIGTERM]["pid"] == master
    assert by_key[WARN]["pid"] == int(by_key[WARN]["message"].split()[-1])
    if "process" in mode:
        assert by_key[WARN]["pid"] != master
    # The app's exception: its traceback is one string in "exc_info".
    errors = [r for r in records if "exc_info" in r]
    assert len(errors) == 1, records
    assert errors[0]["level"] == "ERROR"
    assert errors[0]["exc_info"].startswith("Traceback (most recent call last):")
    assert "RuntimeError: raised-by-app\nsecond line" in errors[0]["exc_info"]


def test_text_format_is_the_default(server_factory):
    lines = _serve_and_stop(server_factory)
    for line in _assert_once(lines).values():
        assert TEXT_LINE.match(line), line


# -- --log-config ----------------------------------------------------------------------------

DICT_JSON = {
    "version": 1,
    # disable_existing_loggers is left at its default, True: Pounce's
    # loggers, which exist before the file is applied, must not go quiet.
    "formatters": {"cfg": {"format": "CFG|%(process)d|%(name)s|%(levelname)s|%(message)s"}},
    "handlers": {
        "err": {"class": "logging.StreamHandler", "formatter": "cfg", "stream": "ext://sys.stderr"}
    },
    "root": {"handlers": ["err"], "level": "INFO"},
}


@pytest.mark.parametrize("mode", MODES)
def test_dict_config_json_on_the_root(server_factory, tmp_path, mode):
    path = _write(tmp_path, "log.json", json.dumps(DICT_JSON))
    lines = _serve_and_stop(server_factory, "--log-config", path, *mode)
    for line in _assert_once(lines).values():
        assert line.startswith("CFG|"), line
    assert not [line for line in lines if TEXT_LINE.match(line)], lines
    # A line from a worker process carries that worker's pid.
    warn = _assert_once(lines)[WARN]
    assert warn.split("|")[1] == warn.split()[-1]


YAML_ON_POUNCE = """\
version: 1
formatters:
  pn: {format: "PN|%(name)s|%(message)s"}
  root: {format: "ROOT|%(name)s|%(message)s"}
handlers:
  pn: {class: logging.StreamHandler, formatter: pn, stream: "ext://sys.stderr"}
  root: {class: logging.StreamHandler, formatter: root, stream: "ext://sys.stderr"}
loggers:
  # No "propagate" key: Pounce's loggers given handlers do not propagate,
  # or every line would also reach the root's handler.
  pounce: {handlers: [pn], level: INFO}
root: {handlers: [root], level: INFO}
"""


@pytest.mark.parametrize("mode", MODES)
def test_dict_config_yaml_on_the_pounce_logger(server_factory, tmp_path, mode):
    path = _write(tmp_path, "log.yaml", YAML_ON_POUNCE)
    lines = _serve_and_stop(server_factory, "--log-config", path, *mode)
    for line in _assert_once(lines).values():
        assert line.startswith("PN|pounce"), line
    assert not _lines_with(lines, r"^ROOT\|"), lines


def test_yaml_with_explicit_propagate_reaches_both(server_factory, tmp_path):
    # Two destinations on purpose: what the user wrote is what happens.
    text = YAML_ON_POUNCE.replace("pounce: {handlers: [pn], level: INFO}",
                                  "pounce: {handlers: [pn], level: INFO, propagate: true}")
    path = _write(tmp_path, "log.yml", text)
    lines = _serve_and_stop(server_factory, "--log-config", path)
    assert len(_lines_with(lines, r"^PN\|.*" + LISTENING)) == 1
    assert len(_lines_with(lines, r"^ROOT\|.*" + LISTENING)) == 1


INI = """\
[loggers]
keys=root

[handlers]
keys=err

[formatters]
keys=ini

[logger_root]
level=INFO
handlers=err

[handler_err]
class=StreamHandler
formatter=ini
args=(sys.stderr,)

[formatter_ini]
format=INI|%(name)s|%(levelname)s|%(message)s
"""


@pytest.mark.parametrize("mode", MODES)
def test_file_config_ini(server_factory, tmp_path, mode):
    path = _write(tmp_path, "log.conf", INI)
    lines = _serve_and_stop(server_factory, "--log-config", path, *mode)
    for line in _assert_once(lines).values():
        assert line.startswith("INI|pounce"), line
    assert not [line for line in lines if TEXT_LINE.match(line)], lines


def test_file_config_ini_on_the_pounce_logger(server_factory, tmp_path):
    # As in YAML: a Pounce logger given handlers without "propagate" does not propagate.
    text = INI.replace("keys=root\n", "keys=root,pounce\n", 1).replace("keys=err\n", "keys=err,pn\n", 1)
    text = text.replace("keys=ini\n", "keys=ini,pn\n", 1) + (
        "\n[logger_pounce]\nlevel=INFO\nhandlers=pn\nqualname=pounce\n"
        "\n[handler_pn]\nclass=StreamHandler\nformatter=pn\nargs=(sys.stderr,)\n"
        "\n[formatter_pn]\nformat=PN|%(name)s|%(message)s\n"
    )
    path = _write(tmp_path, "log.ini", text)
    lines = _serve_and_stop(server_factory, "--log-config", path)
    for line in _assert_once(lines).values():
        assert line.startswith("PN|pounce"), line
    assert not _lines_with(lines, r"^INI\|"), lines


def test_log_config_with_json_formatter_of_pounce(server_factory, tmp_path):
    # Pounce's JSON formatter is usable from a config file, e.g. for a file handler.
    log_file = tmp_path / "pounce.log"
    config = {
        "version": 1,
        "formatters": {"json": {"()": "pounce._logging.JSONFormatter"}},
        "handlers": {
            "file": {"class": "logging.FileHandler", "formatter": "json", "filename": str(log_file)},
            "err": {"class": "logging.StreamHandler", "stream": "ext://sys.stderr"},
        },
        "loggers": {"pounce": {"handlers": ["file", "err"], "level": "INFO"}},
    }
    path = _write(tmp_path, "log.json", json.dumps(config))
    _serve_and_stop(server_factory, "--log-config", path, "--worker-mode", "process", "--workers", "2")
    records = [json.loads(line) for line in log_file.read_text().splitlines()]
    _assert_once([r["message"] for r in records])


def test_log_config_class_from_the_working_directory(server_factory, tmp_path):
    config = json.loads(json.dumps(DICT_JSON))
    config["formatters"] = {"cfg": {"()": "tests.apps.logfmt.Prefixed"}}
    path = _write(tmp_path, "log.json", json.dumps(config))
    lines = _serve_and_stop(server_factory, "--log-config", path)
    for line in _assert_once(lines).values():
        assert line.startswith("FMT|pounce"), line


# -- --log-level and a level in --log-config -------------------------------------------------


def _config_with_pounce_level(tmp_path, level: str) -> str:
    config = json.loads(json.dumps(DICT_JSON))
    config["loggers"] = {"pounce": {"level": level}}
    return _write(tmp_path, "levels.json", json.dumps(config))


def test_explicit_log_level_wins_over_the_config(server_factory, tmp_path):
    path = _config_with_pounce_level(tmp_path, "ERROR")
    lines = _serve_and_stop(server_factory, "--log-config", path, "--log-level", "info")
    _assert_once(lines)


def test_config_level_wins_over_the_default_log_level(tmp_path):
    # The config quiets 'pounce' to WARNING: no "Listening on" to wait
    # for, so this test finds the server on a Unix socket of its own.
    path = _config_with_pounce_level(tmp_path, "WARNING")
    sock_path = str(tmp_path / "s.sock")
    cmd = [a for a in server_command(APP, ()) if a not in ("--host", "127.0.0.1", "--port", "0")]
    env = dict(os.environ, PYTHONUNBUFFERED="1", LOGCONF_HOW="none")
    proc = subprocess.Popen(
        [*cmd, "--uds", sock_path, "--no-access-log", "--log-config", path],
        cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT, start_new_session=True,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.socket(socket.AF_UNIX) as s:
                    s.settimeout(5)
                    s.connect(sock_path)
                    s.sendall(b"GET /warn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    assert s.recv(100).startswith(b"HTTP/1.1 200")
                break
            except (FileNotFoundError, ConnectionRefusedError):
                assert time.monotonic() < deadline and proc.poll() is None, "no server"
                time.sleep(0.05)
        time.sleep(0.3)
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
    lines = out.decode().splitlines()
    assert len(_lines_with(lines, r"^CFG\|.*" + WARN)) == 1, lines
    assert not _lines_with(lines, LISTENING) and not _lines_with(lines, SIGTERM), lines


# -- the app configures logging itself -------------------------------------------------------

APP_CASES = [
    # (LOGCONF_HOW, LOGCONF_AT, worker mode)
    ("root-json", "import", MODES[0].values[0]),
    ("root-json", "import", MODES[1].values[0]),
    ("root-json-keep", "import", MODES[1].values[0]),
    ("pounce-json", "import", MODES[1].values[0]),
    ("basic", "import", MODES[0].values[0]),
    ("root-json", "lifespan", MODES[0].values[0]),
    ("root-json", "lifespan", MODES[1].values[0]),
]


@pytest.mark.parametrize(
    "how,at,mode", APP_CASES, ids=[f"{h}-{a}-{m[1]}" for h, a, m in APP_CASES]
)
def test_app_configures_logging_each_line_once(server_factory, how, at, mode):
    # Issue 13: after the app's dictConfig with a JSON formatter on the
    # root, every Pounce line must appear once, not as JSON and as text.
    env = {"LOGCONF_HOW": how, "LOGCONF_AT": at}
    lines = _serve_and_stop(server_factory, *mode, env=env, paths=("/warn", "/raise"))
    found = _assert_once(lines, KEYS + (APP_ERROR,))
    # The master never imports the app: its lines are Pounce's own.
    for key in (LISTENING, SIGTERM):
        assert TEXT_LINE.match(found[key]), found[key]
    # What runs after the app configured logging goes through its handlers.
    after = [WARN, APP_ERROR] + ([] if at == "lifespan" else [STARTUP])
    for key in after:
        line = found[key]
        if how == "basic":
            assert line.startswith("APP|pounce"), line
        else:
            rec = json.loads(line)
            assert rec["via"] == "app" and rec["logger"].startswith("pounce"), rec
    if at == "lifespan":
        assert TEXT_LINE.match(found[STARTUP]), found[STARTUP]


# -- bad files: a start-up error, status 2, before the app is imported -----------------------

BAD = [
    ("missing.json", None, "no such file"),
    ("bad.json", "{not json", "not valid JSON"),
    ("list.json", "[1, 2]", "expected a dictConfig mapping, got list"),
    ("noversion.json", "{}", "version"),
    ("badclass.json", json.dumps({"version": 1, "handlers": {"h": {"class": "nowhere.Handler"}}}),
     "nowhere"),
    ("bad.yaml", "version: [1\n", "not valid YAML"),
    ("bad.ini", "[loggers]\nkeys=root\n", "log"),
    ("garbage.conf", "no section header\n", "not a valid INI file"),
]


@pytest.mark.parametrize("name,text,message", BAD, ids=[b[0] for b in BAD])
def test_bad_log_config_is_a_start_up_error(tmp_path, name, text, message):
    path = tmp_path / name
    if text is not None:
        path.write_text(text)
    rc, out = run_to_exit(APP, "--log-config", str(path), env={"LOGCONF_HOW": "none"})
    assert rc == 2, out
    first = out.strip().splitlines()[0]
    assert first.startswith(f"pounce: error: --log-config {path}: "), out
    assert message in first, out
    assert "Listening" not in out and "Traceback" not in out, out


def test_yaml_without_pyyaml_says_what_to_install(tmp_path):
    # A yaml module that is not there (as on a machine without PyYAML).
    hide = tmp_path / "hide"
    hide.mkdir()
    (hide / "yaml.py").write_text("raise ModuleNotFoundError(\"No module named 'yaml'\", name='yaml')\n")
    path = _write(tmp_path, "log.yaml", YAML_ON_POUNCE)
    env = {"PYTHONPATH": str(hide), "LOGCONF_HOW": "none"}
    rc, out = run_to_exit(APP, "--log-config", path, env=env)
    assert rc == 2, out
    assert out.startswith(f"pounce: error: --log-config {path}: a YAML file needs PyYAML"), out
    assert "pip install PyYAML" in out


def test_pyyaml_is_not_a_dependency():
    # Importing pounce and reading a JSON or INI file never needs yaml.
    code = (
        "import sys; sys.modules['yaml'] = None\n"
        "import pounce, pounce._logging, pounce.__main__\n"
        "assert 'yaml' not in [m for m in sys.modules if sys.modules[m] is not None]\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=ROOT)


# -- pounce.run() ------------------------------------------------------------------------------

RUN_SCRIPT = """\
import sys, pounce
sys.exit(pounce.run("tests.apps.logconf:app", host="127.0.0.1", port=0, access_log=False,
                    workers=2, worker_mode="process", **eval(sys.argv[1])))
"""


def _run_pounce_run(settings: dict) -> list[str]:
    """pounce.run() in a child process: start, GET /warn, SIGTERM; its output."""
    env = dict(os.environ, PYTHONUNBUFFERED="1", LOGCONF_HOW="none")
    proc = subprocess.Popen(
        [sys.executable, "-c", RUN_SCRIPT, repr(settings)], cwd=ROOT, env=env,
        stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    lines: list[str] = []
    try:
        assert proc.stdout is not None
        for raw in proc.stdout:
            lines.append(raw.decode().rstrip("\n"))
            m = re.search(r"Listening on http://127\.0\.0\.1:(\d+)", lines[-1])
            if m:
                with socket.create_connection(("127.0.0.1", int(m.group(1))), timeout=5) as s:
                    s.sendall(b"GET /warn HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                    assert s.recv(100).startswith(b"HTTP/1.1 200")
            if re.search(WARN, lines[-1]):
                proc.send_signal(signal.SIGTERM)
        assert proc.wait(10) == 0, lines
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    return [line for line in lines if line.strip()]


def test_pounce_run_log_format_json():
    lines = _run_pounce_run({"log_format": "json"})
    messages = [json.loads(line)["message"] for line in lines]
    _assert_once(messages, (LISTENING, WARN, STARTUP))


def test_pounce_run_log_config(tmp_path):
    path = _write(tmp_path, "log.json", json.dumps(DICT_JSON))
    lines = _run_pounce_run({"log_config": path})
    for line in _assert_once(lines, (LISTENING, WARN, STARTUP)).values():
        assert line.startswith("CFG|"), line


def test_app_logging_after_a_reload_each_line_once(server_factory):
    # SIGHUP: a new generation imports the app (and its dictConfig) afresh,
    # forked from the master, whose logging the app never touched.
    env = {"LOGCONF_HOW": "root-json"}
    srv = server_factory(APP, "--no-access-log", "--worker-mode", "process", "--workers", "2", env=env)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"serves the new code")
    assert get(srv, "/warn").status == 200
    srv.wait_log(WARN)
    assert srv.stop() == 0
    lines = [line for line in srv.log_text().splitlines() if line.strip()]
    found = _assert_once(lines, KEYS + (r"SIGHUP received", r"serves the new code"))
    rec = json.loads(found[WARN])
    assert rec["via"] == "app", rec
    assert TEXT_LINE.match(found[r"serves the new code"])
