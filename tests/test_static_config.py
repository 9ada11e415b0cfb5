"""--static: its settings and the runtime's behaviour over time (issue 16).

The forms a mount can be given in (--static, --static-mount, `static` and
`static_mount` in pounce.toml / [tool.pounce], POUNCE_STATIC and
POUNCE_STATIC_MOUNT), the startup validation (each mistake exits 2 with a
one-line message naming the entry), the startup log line, and what the
worker's open-file cache does when files change under it: a change in
place, an atomic rename and a deletion are all seen within ~1 s; the
openat2 fallback (POUNCE_STATIC_NO_OPENAT2=1) refuses every symlink; a FIFO
is a 404 that never hangs the worker; a file truncated while it is sent
closes the connection.  The responses themselves are tests/test_static.py's.
"""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path

import pytest

from pounce._cli import parse_args
from pounce._config import ConfigError, load_config
from tests.server import SERVER_KIND, TLS, get, run_to_exit

pytestmark = pytest.mark.skipif(SERVER_KIND != "pounce", reason="pounce's own options")

APP = "tests.apps.shed:app"  # "hello" for every path


@pytest.fixture
def site(tmp_path: Path) -> Path:
    root = tmp_path / "site"
    (root / "sub").mkdir(parents=True)
    (root / "a.txt").write_bytes(b"one\n")
    (root / "sub" / "b.txt").write_bytes(b"bee\n")
    return root


# -- the forms of the setting ------------------------------------------------


def test_cli_spellings_are_repeatable_and_joined():
    _, _, given = parse_args(["m:app", "--static", "/a=x", "--static-mount", "/b=y", "--static", "/c=z"])
    assert given["static_mount"] == "/a=x,/b=y,/c=z"


def test_every_source_and_alias(tmp_path: Path, site: Path):
    rel = os.path.relpath(site, tmp_path)
    want = f"/assets={site}"
    # Command line (already joined by the parser), relative to the cwd.
    cfg = load_config({"static_mount": f"/assets/={rel}"}, environ={}, cwd=str(tmp_path))
    assert cfg.static_mount == want  # trailing '/' dropped, DIR made absolute
    # Environment: the documented name and the canonical one.
    for var in ("POUNCE_STATIC", "POUNCE_STATIC_MOUNT"):
        cfg = load_config({}, environ={var: f"/assets={rel},/={rel}/sub"}, cwd=str(tmp_path))
        assert cfg.static_mount == f"{want},/={site}/sub", var
    # Config files: `static` (documented) and `static_mount`, a list or a string.
    for text in (
        f'static = ["/assets={rel}"]\n',
        f'static = "/assets={rel}"\n',
        f'static_mount = ["/assets={rel}"]\n',
    ):
        (tmp_path / "pounce.toml").write_text(text)
        assert load_config({}, environ={}, cwd=str(tmp_path)).static_mount == want, text
    (tmp_path / "pounce.toml").unlink()
    (tmp_path / "pyproject.toml").write_text(f'[tool.pounce]\nstatic = ["/assets={rel}"]\n')
    assert load_config({}, environ={}, cwd=str(tmp_path)).static_mount == want
    # Priority: command line > environment > file.
    cfg = load_config(
        {"static_mount": f"/cli={rel}"},
        environ={"POUNCE_STATIC": f"/env={rel}"},
        cwd=str(tmp_path),
    )
    assert cfg.static_mount == f"/cli={site}"
    cfg = load_config({}, environ={"POUNCE_STATIC": f"/env={rel}"}, cwd=str(tmp_path))
    assert cfg.static_mount == f"/env={site}"
    # Defaults of the other static settings.
    assert (cfg.static_index, cfg.static_cache_control) == ("index.html", "")
    assert cfg.static_precompressed and not cfg.static_follow_symlinks and not cfg.static_dotfiles


def test_bad_values_in_process_name_their_source(tmp_path: Path):
    with pytest.raises(ConfigError, match=r"^POUNCE_STATIC: 'nope': expected PREFIX=DIR"):
        load_config({}, environ={"POUNCE_STATIC": "nope"}, cwd=str(tmp_path))
    (tmp_path / "pounce.toml").write_text('static = ["/a=missing"]\n')
    with pytest.raises(ConfigError, match=r"^pounce.toml: '/a=missing': missing: no such directory"):
        load_config({}, environ={}, cwd=str(tmp_path))


@pytest.mark.parametrize(
    "args, message",
    [
        (["--static", "/x"], "--static: '/x': expected PREFIX=DIR"),
        (["--static", "assets=tests"], "--static: 'assets=tests': PREFIX must start with '/'"),
        (["--static", "/a b=tests"], "PREFIX may not contain spaces"),
        (["--static", "/x=no/such/dir"], "--static: '/x=no/such/dir': no/such/dir: no such directory"),
        (["--static", "/x=README.md"], "--static: '/x=README.md': README.md: not a directory"),
        (["--static", "/x=tests", "--static", "/x/=docs"], "'/x/=docs': PREFIX /x is mounted twice"),
        (["--static", "/=tests", "--static-index", "../secret"], "static_index must be a file name"),
        (["--static", "/=tests", "--static-cache-control", "a\r\nX-Evil: 1"], "control characters"),
    ],
)
def test_validation_exits_2_with_one_line(args, message):
    rc, out = run_to_exit(APP, *args, timeout=15)
    assert rc == 2, out
    lines = out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pounce: error: ") and message in lines[0], out


def test_env_form_error_exits_2():
    rc, out = run_to_exit(APP, env={"POUNCE_STATIC": "/ok=tests,/bad=no-such-dir"})
    assert rc == 2 and "pounce: error: POUNCE_STATIC: '/bad=no-such-dir'" in out, out


# -- the running server -------------------------------------------------------


def test_startup_line_and_app_untouched(server_factory, site: Path):
    srv = server_factory(APP, "--static", f"/assets={site}", "--static", f"/s/={site}/sub")
    srv.wait_log(rf"(?m)static: /assets -> {site}$")
    srv.wait_log(rf"(?m)static: /s -> {site}/sub$")
    assert get(srv, "/assets/a.txt").body == b"one\n"
    assert get(srv, "/s/b.txt").body == b"bee\n"
    assert get(srv, "/assets/missing").status == 404  # the mount owns its URL space
    assert get(srv, "/assetsx").body == b"hello"  # not under the prefix: the app's


def _wait_body(srv, target: str, want: bytes, limit: float) -> float:
    """Seconds until GET target answers `want` (fails after `limit`)."""
    t0 = time.monotonic()
    while True:
        r = get(srv, target)
        if r.body == want or (want == b"404" and r.status == 404):
            return time.monotonic() - t0
        assert time.monotonic() - t0 < limit, (target, r.status, r.body)
        time.sleep(0.05)


def test_cache_sees_changes_within_a_second(server_factory, site: Path):
    srv = server_factory(APP, "--static", f"/={site}")
    f = site / "a.txt"
    assert get(srv, "/a.txt").body == b"one\n"  # cached now (with its bytes)
    # In place, same size: only the mtime and the bytes differ.
    time.sleep(0.02)
    with open(f, "r+b") as fh:
        fh.write(b"two\n")
    assert _wait_body(srv, "/a.txt", b"two\n", 2.5) < 2.0
    # An atomic replacement (rename over it): another inode.
    tmp = site / "a.txt.tmp"
    tmp.write_bytes(b"three, longer\n")
    os.replace(tmp, f)
    assert _wait_body(srv, "/a.txt", b"three, longer\n", 2.5) < 2.0
    # Deleted: a 404 once revalidated.
    f.unlink()
    assert _wait_body(srv, "/a.txt", b"404", 2.5) < 2.0
    # And an entry is trusted for a while: the cache is in use (a deleted
    # file's bytes are still served right after the first request).
    g = site / "sub" / "b.txt"
    assert get(srv, "/sub/b.txt").body == b"bee\n"
    g.unlink()
    assert get(srv, "/sub/b.txt").body == b"bee\n"
    assert _wait_body(srv, "/sub/b.txt", b"404", 2.5) < 2.0


def test_openat2_fallback_refuses_symlinks(server_factory, site: Path, tmp_path: Path):
    (site / "inside-link.txt").symlink_to("a.txt")
    (tmp_path / "secret.txt").write_bytes(b"secret\n")
    (site / "outside-link.txt").symlink_to(tmp_path / "secret.txt")
    (site / "dirlink").symlink_to("sub")
    srv = server_factory(APP, "--static", f"/={site}")
    assert get(srv, "/inside-link.txt").body == b"one\n"  # openat2: a link inside DIR is fine
    assert get(srv, "/dirlink/b.txt").body == b"bee\n"
    assert get(srv, "/outside-link.txt").status == 404
    srv.stop()
    srv = server_factory(APP, "--static", f"/={site}", env={"POUNCE_STATIC_NO_OPENAT2": "1"})
    assert get(srv, "/a.txt").body == b"one\n"
    assert get(srv, "/inside-link.txt").status == 404  # the walk refuses every symlink
    assert get(srv, "/dirlink/b.txt").status == 404
    assert get(srv, "/outside-link.txt").status == 404
    assert get(srv, "/sub/b.txt").body == b"bee\n"  # real directories are walked


def test_fifo_is_404_without_hanging(server_factory, site: Path):
    os.mkfifo(site / "pipe")
    srv = server_factory(APP, "--static", f"/={site}")
    with srv.connect(timeout=3) as c:
        t0 = time.monotonic()
        assert c.request("GET", "/pipe").status == 404
        assert c.request("GET", "/a.txt").body == b"one\n"  # same connection, worker alive
        assert time.monotonic() - t0 < 2


@pytest.mark.skipif(TLS, reason="reads the raw TCP stream")
def test_file_truncated_while_sent_closes(server_factory, tmp_path: Path):
    """sendfile meets the file's end early: the connection closes (the
    declared Content-Length cannot be met), never hangs nor pads."""
    root = tmp_path / "big"
    root.mkdir()
    big = root / "big.bin"
    size = 64 << 20
    with open(big, "wb") as fh:
        fh.truncate(size)  # sparse: quick to make
    srv = server_factory(APP, "--static", f"/={root}")
    s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
    s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
    got = s.recv(65536)
    assert b" 200 " in got.split(b"\r\n", 1)[0] and f"content-length: {size}".encode() in got.lower()
    time.sleep(0.3)  # the server fills the socket buffers and waits
    os.truncate(big, 1 << 20)
    total = len(got)
    t0 = time.monotonic()
    while True:
        b = s.recv(1 << 20)
        if not b:
            break
        total += len(b)
        assert time.monotonic() - t0 < 10, "the connection was not closed"
    s.close()
    assert total < size  # short: the client sees the cut
    # Serving goes on; the cache sees the new size once it revalidates.
    time.sleep(1.1)
    assert get(srv, "/big.bin").header("content-length") == str(1 << 20)
