"""The `pounce` command: the real console script in a subprocess, and
__main__.main() in process with the server replaced."""

import logging
import os
import pathlib
import shutil
import subprocess
import sys

import pytest

from pounce import __main__ as pounce_main
from pounce import _master
from pounce._pounce import SETTINGS, VERSION

APPS = pathlib.Path(__file__).resolve().parent / "apps_import"
SCRIPT = shutil.which("pounce", path=os.path.dirname(sys.executable))


def run(*args, env=None, cwd=APPS):
    assert SCRIPT, "the pounce console script is not installed (make build)"
    environ = {k: v for k, v in os.environ.items() if not k.startswith("POUNCE_")}
    # The master binds before its child imports APP: a free port, so that
    # the app-error tests never depend on 8000 being free.
    environ["POUNCE_PORT"] = "0"
    environ.update(env or {})
    return subprocess.run(
        [SCRIPT, *args], cwd=cwd, env=environ, capture_output=True, text=True, timeout=60
    )


def one_line_error(r, status, message):
    assert r.returncode == status, (r.returncode, r.stderr)
    assert r.stderr == f"pounce: error: {message}\n"
    assert "Traceback" not in r.stderr


def test_help_mentions_every_setting():
    r = run("--help")
    assert r.returncode == 0, r.stderr
    out = r.stdout
    assert out.startswith("usage: pounce APP [options]")
    for name, kind, default, lo, hi, choices, group, help_text in SETTINGS:
        flag = "--" + name.replace("_", "-")
        assert flag in out, flag
        assert f"POUNCE_{name.upper()}" in out, name
        assert f"{group}:" in out
        if kind == "bool":
            assert "--no-" + flag[2:] in out
        if kind == "choice":
            assert "{" + ",".join(choices) + "}" in out
    for extra in ("--config", "--version", "--help"):
        assert extra in out


# Asks, in a fresh interpreter, whether the GIL is on before any extension
# is imported, then prints the version line as `pounce --version` does.
GIL_THEN_VERSION = """\
import sys
gil = getattr(sys, "_is_gil_enabled", lambda: True)()
print("enabled" if gil else "disabled")
from pounce.__main__ import main
sys.exit(main(["--version"]))
"""


def test_version():
    r = run("--version")
    assert r.returncode == 0 and r.stderr == ""
    lines = r.stdout.splitlines()
    assert len(lines) == 1
    line = lines[0]
    assert line.startswith(f"pounce {VERSION} — CPython {sys.version.split()[0]} (")
    # The GIL state comes from the interpreter the server runs on, not from
    # this pytest process: on a free-threaded build a test-side import (the
    # brotli package) turns the GIL back on here.  Importing pounce must not.
    probe = subprocess.run(
        [sys.executable, "-c", GIL_THEN_VERSION], capture_output=True, text=True, cwd=APPS
    )
    assert probe.returncode == 0, probe.stderr
    gil, probe_line = probe.stdout.splitlines()
    assert f"GIL {gil}, codecs: " in probe_line
    assert ", tls: OpenSSL 3." in probe_line
    assert line == probe_line


def test_python_dash_m():
    r = subprocess.run(
        [sys.executable, "-m", "pounce", "--version"], capture_output=True, text=True, cwd=APPS
    )
    assert r.returncode == 0 and r.stdout.startswith("pounce ")


@pytest.mark.parametrize(
    "args, env, message",
    [
        ([], {}, "the following arguments are required: APP"),
        (
            ["imp_good:app", "--port", "70000"],
            {},
            "--port: port must be between 0 and 65535, got 70000",
        ),
        (["imp_good:app", "--port", "abc"], {}, "--port: expected an integer, got 'abc'"),
        (["imp_good:app", "--port"], {}, "argument --port: expected one argument"),
        (
            ["imp_good:app", "--loop", "trio"],
            {},
            "--loop: loop must be one of 'auto', 'asyncio', 'uvloop', got 'trio'",
        ),
        (
            ["imp_good:app", "--max-request-size", "lots"],
            {},
            "--max-request-size: expected a size such as 65536, 64k or 16MiB, got 'lots'",
        ),
        (
            ["imp_good:app", "--prot", "1"],
            {},
            "unrecognized argument: --prot (did you mean --port?)",
        ),
        (
            ["imp_good:app", "--factory=1"],
            {},
            "argument --factory/--no-factory: ignored explicit argument '1'",
        ),
        (["imp_good:app"], {"POUNCE_PORT": "abc"}, "POUNCE_PORT: expected an integer, got 'abc'"),
        (
            ["imp_good:app", "--config", "nope.toml"],
            {},
            "nope.toml: no such file",
        ),
        (
            ["imp_good:app", "--uds", "/tmp/x", "--fd", "3"],
            {},
            "--uds, --fd: uds and fd are mutually exclusive",
        ),
    ],
)
def test_usage_and_config_errors(args, env, message):
    one_line_error(run(*args, env=env), 2, message)


def test_bad_file_value(tmp_path):
    (tmp_path / "pounce.toml").write_text("prot = 1\n")
    r = run("imp_good:app", cwd=tmp_path)
    one_line_error(r, 2, "pounce.toml: unknown setting 'prot' (did you mean 'port'?)")


@pytest.mark.parametrize(
    "spec, message",
    [
        ("imp_good", "APP must look like 'module:attribute', got 'imp_good'"),
        (
            "no_such_module_xyz:app",
            "could not import module 'no_such_module_xyz': No module named 'no_such_module_xyz'",
        ),
        ("imp_good:nope", "module 'imp_good' has no attribute 'nope'"),
        ("imp_good:NOT_CALLABLE", "'imp_good:NOT_CALLABLE' is not callable"),
    ],
)
def test_app_errors_are_one_line(spec, message):
    one_line_error(run(spec), 1, message)


def test_factory_returning_non_callable():
    one_line_error(
        run("imp_good:bad_factory", "--factory"),
        1,
        "factory 'imp_good:bad_factory' returned a non-callable",
    )


def test_app_dir_option():
    # The module is found only through --app-dir; the missing attribute
    # proves it was imported without starting a server.
    r = run("imp_in_app_dir:nope", "--app-dir", "other_dir")
    one_line_error(r, 1, "module 'imp_in_app_dir' has no attribute 'nope'")


@pytest.mark.parametrize(
    "spec, args, expected",
    [
        ("imp_raises:app", [], "RuntimeError: boom from imp_raises"),
        ("imp_missing_dep:app", [], "No module named 'pounce_test_no_such_dependency'"),
        ("imp_good:raising_factory", ["--factory"], "RuntimeError: boom from raising_factory"),
    ],
)
def test_app_own_error_shows_traceback(spec, args, expected):
    r = run(spec, *args)
    assert r.returncode == 1
    assert "Traceback (most recent call last):" in r.stderr
    assert expected in r.stderr
    # the app's frames only, not pounce's or importlib's
    assert "_importer.py" not in r.stderr and "importlib" not in r.stderr
    assert r.stderr.endswith(f"pounce: error: importing {spec!r} raised the exception above\n")


# ---- main() in process: wiring to the server -----------------------------


@pytest.fixture
def fake_server(monkeypatch):
    """main() with the master replaced: it records what it was given (and
    loads the app as a generation would, to see the import errors)."""

    calls = []

    def start(app_spec, config, cli_args, explicit=None):
        app = _master.load_app(app_spec, config)
        calls.append((app, config, cli_args, explicit))
        return 7

    monkeypatch.setattr(_master, "start", start)
    monkeypatch.chdir(APPS)
    monkeypatch.setattr(sys, "path", list(sys.path))
    for k in [k for k in os.environ if k.startswith("POUNCE_")]:
        monkeypatch.delenv(k)
    yield calls
    sys.modules.pop("imp_good", None)
    logger = logging.getLogger("pounce")
    for h in list(logger.handlers):
        logger.removeHandler(h)


def test_main_builds_config_and_starts_the_master(fake_server, monkeypatch):
    monkeypatch.setenv("POUNCE_BACKLOG", "99")
    args = ["imp_good:app", "--port", "0", "--workers", "auto", "--no-access-log"]
    status = pounce_main.main(args + ["--log-level", "debug"])
    assert status == 7
    [(app, config, cli_args, explicit)] = fake_server
    assert app is sys.modules["imp_good"].app
    # The master shows the command line in ps(1).
    assert cli_args == args + ["--log-level", "debug"]
    assert type(config).__name__ == "Config"
    assert (config.port, config.workers, config.access_log, config.backlog) == (0, 0, False, 99)
    # Where each given setting came from reaches the binding (systemd's
    # sockets conflict with any explicit bind option).
    assert explicit["port"] == "--port" and explicit["backlog"] == "POUNCE_BACKLOG"
    assert "host" not in explicit
    logger = logging.getLogger("pounce")
    # It propagates: a root handler of the user's takes its lines (and
    # Pounce's own handler then stays quiet: tests/test_logging_config.py).
    assert logger.level == logging.DEBUG and logger.propagate is True


def test_main_returns_status_without_serving(fake_server, capsys):
    assert pounce_main.main(["--version"]) == 0
    assert pounce_main.main(["imp_good:app", "--port", "x"]) == 2
    with pytest.raises(SystemExit) as e:
        pounce_main.main(["imp_good:nope"])  # raised where the generation loads the app
    assert e.value.code == 1
    assert fake_server == []
    err = capsys.readouterr().err
    assert "pounce: error: --port: expected an integer, got 'x'" in err
    assert "pounce: error: module 'imp_good' has no attribute 'nope'" in err


def test_setup_logging_format(capsys, monkeypatch):
    from pounce._logging import setup_logging

    # pytest's log capture is a root handler, which would take Pounce's
    # lines (and silence its own handler, by design): without it here.
    monkeypatch.setattr(logging.root, "handlers", [])
    setup_logging("info")
    logger = setup_logging("warning")  # a second call replaces, not duplicates
    try:
        ours = [h for h in logger.handlers if getattr(h, "_pounce_handler", False)]
        assert len(ours) == 1
        logger.info("hidden")
        logger.warning("Listening on http://127.0.0.1:8000")
        err = capsys.readouterr().err
        assert "hidden" not in err
        line = err.strip()
        assert line.endswith(f"[{os.getpid()}] WARNING pounce: Listening on http://127.0.0.1:8000")
    finally:
        for h in list(logger.handlers):
            logger.removeHandler(h)


LOOP_APP = """\
import asyncio

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    name = type(asyncio.get_running_loop()).__module__.split(".")[0]
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": name.encode()})
"""


@pytest.mark.parametrize(
    "args, loop",
    [
        (("--loop", "asyncio"), "asyncio"),
        (("--loop", "uvloop"), "uvloop"),  # uvloop is pinned in requirements-test.txt
        (("--loop", "uvloop", "--workers", "2", "--worker-mode", "process"), "uvloop"),
    ],
)
def test_startup_line_names_the_loop_and_mode(server_factory, tmp_path, args, loop):
    # The loop named is the one the workers run (the app reports it).
    from server import SERVER_KIND, get

    if SERVER_KIND != "pounce":
        pytest.skip("pounce's own startup line")
    (tmp_path / "loop_name_app.py").write_text(LOOP_APP)
    srv = server_factory("loop_name_app:app", "--app-dir", str(tmp_path), *args)
    line = srv.wait_log(r"Pounce \S+ on CPython \S+: .*").group(0)
    mode = "process" if "process" in args else "thread"
    assert f", {mode} mode (" in line, line
    assert line.endswith(f"), {loop}"), line
    assert get(srv, "/").body.decode() == loop
