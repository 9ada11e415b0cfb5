"""--reload through the real server: a real file in tmp_path is edited and
the new code must be served within a second; a syntax error is reported
while the old code keeps serving; one SIGINT stops the whole process group.

watchfiles is pinned in requirements-test.txt, so nothing here skips for
want of it.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from server import SERVER_KIND, get

pytestmark = pytest.mark.skipif(
    SERVER_KIND != "pounce", reason="pounce's own --reload (uvicorn's differs in its log lines)"
)

APP = '''\
import asyncio

MSG = {msg!r}

async def app(scope, receive, send):
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await send({{"type": "http.response.start", "status": 200, "headers": []}})
        await send({{"type": "http.response.body", "body": b"x", "more_body": True}})
        await asyncio.sleep(60)
        return
    await send({{"type": "http.response.start", "status": 200, "headers": []}})
    await send({{"type": "http.response.body", "body": MSG.encode()}})
'''

def watching(srv) -> None:
    """The master logs "reload: watching ..." once the watcher's inotify
    watches are in place: edits count from there."""
    srv.wait_log(r"reload: watching ")


def write_app(path: Path, msg: str) -> None:
    # Write then rename, as most editors save: one event, never a half file.
    tmp = path.with_suffix(".tmp")
    tmp.write_text(APP.format(msg=msg))
    os.replace(tmp, path)


def body(srv) -> str:
    return get(srv, "/").body.decode()


def wait_body(srv, want: str, limit: float) -> float:
    """Seconds until GET / answers `want`; fails after `limit`."""
    t0 = time.monotonic()
    while True:
        try:
            got = body(srv)
        except OSError:
            got = None
        elapsed = time.monotonic() - t0
        if got == want:
            return elapsed
        if elapsed > limit:
            raise AssertionError(f"still {got!r} after {elapsed:.2f}s, wanted {want!r}")
        time.sleep(0.01)


@pytest.fixture(autouse=True)
def bytecode_written(monkeypatch):
    """Servers here write .pyc files, as a developer's Python does: a
    PYTHONDONTWRITEBYTECODE in the test machine's environment would hide
    stale bytecode served after a quick same-size edit."""
    monkeypatch.delenv("PYTHONDONTWRITEBYTECODE", raising=False)


def start(server_factory, tmp_path: Path, module: str, *args: str, **kw):
    return server_factory(
        f"{module}:app",
        "--app-dir",
        str(tmp_path),
        "--reload",
        "--reload-dir",
        str(tmp_path),
        *args,
        **kw,
    )


def test_edit_is_served_within_a_second(server_factory, tmp_path):
    src = tmp_path / "reload_edit.py"
    write_app(src, "v1")
    srv = start(server_factory, tmp_path, "reload_edit")
    assert body(srv) == "v1"
    watching(srv)
    latencies = []
    for n in (2, 3, 4):
        write_app(src, f"v{n}")
        latencies.append(wait_body(srv, f"v{n}", 1.0))
    print(f"reload latencies (write -> new code served): {['%.3f' % x for x in latencies]} s")
    # The master's single PID served throughout, and each reload took
    # the SIGHUP path: a new generation, the old one drained.
    assert srv.proc.poll() is None
    srv.wait_log(r"reload: generation 4 \(pid \d+\) serves the new code")


def test_syntax_error_keeps_the_old_code_then_recovers(server_factory, tmp_path):
    src = tmp_path / "reload_syntax.py"
    write_app(src, "good")
    srv = start(server_factory, tmp_path, "reload_syntax")
    watching(srv)
    src.write_text(APP.format(msg="broken") + "\nMSG = (\n")
    srv.wait_log(r"SyntaxError")
    srv.wait_log(r"reload failed \(generation 2 .*still serves the old code")
    # The line of the error is named, and the old code still answers.
    assert "reload_syntax.py" in srv.log_text()
    for _ in range(5):
        assert body(srv) == "good"
    write_app(src, "fixed")
    print(f"recovery after the fix: {wait_body(srv, 'fixed', 1.0):.3f} s")


def test_start_with_a_syntax_error_waits_for_the_fix(server_factory, tmp_path):
    src = tmp_path / "reload_first.py"
    src.write_text("def broken(:\n")
    # server_factory waits for "Listening on"; the fix, written while the
    # master waits, is what lets it come.
    fixer = threading.Timer(1.5, write_app, (src, "after the fix"))
    fixer.start()
    try:
        srv = start(server_factory, tmp_path, "reload_first", timeout=15)
    finally:
        fixer.cancel()
    log = srv.log_text()
    assert "SyntaxError" in log
    assert "waiting for a change to try again (--reload)" in log
    assert body(srv) == "after the fix"


def _group_alive(pgid: int) -> bool:
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    # Zombies still count for kill(0); only the master is our (pytest's)
    # child, and it is reaped by wait() below.
    return True


@pytest.mark.parametrize("workers", ["1", "2"])
def test_one_sigint_stops_everything_promptly(server_factory, tmp_path, workers):
    src = tmp_path / f"reload_stop{workers}.py"
    write_app(src, "v1")
    # --shutdown-timeout 30 (the default): Ctrl-C must not wait for it.
    srv = start(server_factory, tmp_path, src.stem, "--workers", workers)
    watching(srv)
    write_app(src, "v2")
    wait_body(srv, "v2", 1.0)  # a reload happened: two generations have existed
    idle = srv.connect()
    idle.request("GET", "/")  # an idle keep-alive connection
    busy = srv.connect()
    busy.send(b"GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
    busy.read_until(b"\r\n\r\n")  # a request in flight, for 60 s
    pgid = srv.proc.pid  # start_new_session: the master leads its group
    t0 = time.monotonic()
    srv.proc.send_signal(signal.SIGINT)
    rc = srv.wait(5.0)
    elapsed = time.monotonic() - t0
    assert rc is not None, "the master did not exit within 5 s of one SIGINT"
    # The master waits for its group (it is the subreaper of the workers),
    # so little time is left to the kernel here.
    deadline = time.monotonic() + 0.5
    while _group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not _group_alive(pgid), "processes of the group outlived the master"
    print(f"SIGINT -> every process gone: {time.monotonic() - t0:.3f} s (master: {elapsed:.3f} s)")
    idle.close()
    busy.close()


def test_include_and_exclude_globs(server_factory, tmp_path):
    src = tmp_path / "reload_globs.py"
    write_app(src, "v1")
    srv = start(
        server_factory,
        tmp_path,
        "reload_globs",
        # Repeated flags join: *.py and *.cfg reload; skip_*.py does not.
        "--reload-include",
        "*.py",
        "--reload-include",
        "*.cfg",
        "--reload-exclude",
        "skip_*.py",
    )
    watching(srv)
    (tmp_path / "notes.txt").write_text("not watched")
    (tmp_path / "skip_me.py").write_text("x = 1\n")
    sub = tmp_path / "__pycache__"
    sub.mkdir(exist_ok=True)
    (sub / "ignored.py").write_text("x = 1\n")
    time.sleep(0.6)  # well past the watcher's 50 ms quiet step
    assert "changed;" not in srv.log_text(), srv.log_text()
    (tmp_path / "settings.cfg").write_text("a = 1\n")
    srv.wait_log(r"reload: settings\.cfg changed; starting generation 2", timeout=2.0)
    write_app(src, "v2")
    wait_body(srv, "v2", 1.0)


def test_reload_dir_from_the_environment(server_factory, tmp_path):
    # POUNCE_RELOAD_DIR (comma-separated) reaches the watcher like the flag.
    other = tmp_path / "watched"
    other.mkdir()
    src = tmp_path / "reload_envdir.py"
    write_app(src, "v1")
    srv = server_factory(
        "reload_envdir:app",
        "--app-dir",
        str(tmp_path),
        "--reload",
        env={"POUNCE_RELOAD_DIR": f"{other},{tmp_path}"},
    )
    srv.wait_log(rf"reload: watching {other}, {tmp_path} for \*\.py")
    watching(srv)
    (other / "helper.py").write_text("x = 1\n")
    srv.wait_log(r"helper\.py changed; starting generation 2", timeout=2.0)


def test_missing_watchfiles_is_a_clear_error(monkeypatch, capsys):
    import pounce._reload
    from pounce.__main__ import main

    monkeypatch.setattr(pounce._reload, "missing", lambda: True)
    assert main(["x:app", "--reload"]) == 2
    err = capsys.readouterr().err
    assert "pip install 'pounce-asgi[reload]'" in err


def test_reload_dir_must_exist(capsys, tmp_path):
    from pounce.__main__ import main

    assert main(["x:app", "--reload", "--reload-dir", str(tmp_path / "nope")]) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_repeated_flags_join():
    from pounce._cli import parse_args

    _, _, given = parse_args(["a:b", "--reload-dir", "x", "--reload-dir", "y,z"])
    assert given["reload_dir"] == "x,y,z"


def test_a_change_during_a_load_is_not_lost(server_factory, tmp_path):
    src = tmp_path / "reload_pending.py"
    write_app(src, "v1")
    srv = start(server_factory, tmp_path, "reload_pending")
    watching(srv)
    # v2 takes a second to import; v3 is saved while it does.
    tmp = src.with_suffix(".tmp")
    slow = 'import time\nprint("importing v2", flush=True)\ntime.sleep(1.0)\n'
    tmp.write_text(slow + APP.format(msg="v2"))
    os.replace(tmp, src)
    srv.wait_log(r"reload_pending\.py changed; starting generation 2")
    srv.wait_log(r"importing v2")  # generation 2 has read the file: now save v3
    write_app(src, "v3")
    srv.wait_log(r"reloading once generation 2 .* is done")
    wait_body(srv, "v3", 3.0)
    srv.wait_log(r"reload: starting generation 3 for the later change")


def test_lists_in_a_config_file(tmp_path):
    from pounce._config import ConfigError, load_config

    (tmp_path / "pounce.toml").write_text('reload_include = ["*.py", "*.html"]\nreload_dir = "a,b"\n')
    c = load_config({}, environ={}, cwd=str(tmp_path))
    assert (c.reload_include, c.reload_dir) == ("*.py,*.html", "a,b")
    (tmp_path / "pounce.toml").write_text("reload_exclude = [1]\n")
    with pytest.raises(ConfigError, match="reload_exclude: expected a list of strings"):
        load_config({}, environ={}, cwd=str(tmp_path))
