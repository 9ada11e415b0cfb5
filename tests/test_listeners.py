"""Ways of listening and running: Unix sockets, inherited fds, IPv6, event
loops, several workers, and pounce.run() — each through the real server."""

from __future__ import annotations

import json
import os
import pwd
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import pytest

from tests.server import ROOT, VENV_BIN, RawConn, build_request
from tests.test_systemd import free_port
from tests.test_workers import conn_per_worker

SCOPE_APP = "tests.apps.scope:app"
#: Answers with its worker id, pid, thread and the class of its event loop.
WORKERS_APP = "tests.apps.workers:app"
pytestmark = pytest.mark.pounce_only("Pounce's listener and worker options")


def _unix_request(path: str, target: str = "/") -> tuple[bytes, bytes]:
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.settimeout(5)
    s.connect(path)
    s.sendall(build_request("GET", target, [("Connection", "close")]))
    data = b""
    while True:
        chunk = s.recv(65536)
        if not chunk:
            break
        data += chunk
    s.close()
    head, _, body = data.partition(b"\r\n\r\n")
    return head, body


def test_unix_socket(server_factory, tmp_path):
    path = str(tmp_path / "pounce.sock")
    srv = server_factory(SCOPE_APP, "--uds", path)
    assert srv.uds == path
    head, body = _unix_request(path, "/u?x=1")
    assert head.startswith(b"HTTP/1.1 200")
    scope = json.loads(body)
    assert scope["server"] == [path, None]
    assert scope["client"] is None
    assert scope["path"] == "/u"
    assert srv.stop() == 0
    assert not os.path.exists(path), "the socket file is removed at exit"


def test_stale_unix_socket_file_is_replaced(server_factory, tmp_path):
    path = str(tmp_path / "stale.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.bind(path)
    s.close()  # leaves the file behind, as a crashed server would
    srv = server_factory(SCOPE_APP, "--uds", path)
    head, _ = _unix_request(path)
    assert head.startswith(b"HTTP/1.1 200")
    srv.stop()


def _spawn(args, pass_fds=()):
    return subprocess.Popen(
        [str(VENV_BIN / "pounce"), *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        pass_fds=pass_fds,
    )


def _wait_line(proc, pattern, timeout=10):
    """Read the server's output until `pattern` appears (bounded in time)."""
    deadline = time.monotonic() + timeout
    fd = proc.stdout.fileno()
    os.set_blocking(fd, False)
    buf = ""
    while time.monotonic() < deadline:
        try:
            chunk = os.read(fd, 65536)
        except BlockingIOError:
            chunk = None
        if chunk:
            buf += chunk.decode(errors="replace")
            m = re.search(pattern, buf)
            if m:
                return m, buf
        elif chunk == b"" or proc.poll() is not None:
            break
        else:
            time.sleep(0.05)
    proc.kill()
    raise AssertionError(f"no {pattern!r} in server output: {buf}")


def _stop(proc):
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(10)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_inherited_listening_fd():
    lsock = socket.socket()
    lsock.bind(("127.0.0.1", 0))
    lsock.listen(16)
    port = lsock.getsockname()[1]
    fd = lsock.fileno()
    proc = _spawn([SCOPE_APP, "--fd", str(fd)], pass_fds=(fd,))
    try:
        _wait_line(proc, r"Listening on http://127\.0\.0\.1:(\d+)")
        c = RawConn("127.0.0.1", port)
        r = c.request("GET", "/fd")
        assert r.status == 200
        assert json.loads(r.body)["server"] == ["127.0.0.1", port]
        c.close()
    finally:
        assert _stop(proc) == 0
        lsock.close()


def test_ipv6_loopback():
    if not socket.has_ipv6:
        pytest.skip("no IPv6 support in this Python build")
    try:
        probe = socket.socket(socket.AF_INET6)
        probe.bind(("::1", 0))
        probe.close()
    except OSError as e:
        pytest.skip(f"IPv6 loopback unavailable here: {e}")
    proc = _spawn([SCOPE_APP, "--host", "::1", "--port", "0"])
    try:
        m, _ = _wait_line(proc, r"Listening on http://\[::1\]:(\d+)")
        port = int(m.group(1))
        s = socket.create_connection(("::1", port), timeout=5)
        s.sendall(build_request("GET", "/six", [("Host", "[::1]"), ("Connection", "close")]))
        data = b""
        while chunk := s.recv(65536):
            data += chunk
        s.close()
        scope = json.loads(data.partition(b"\r\n\r\n")[2])
        assert scope["client"][0] == "::1"
        assert scope["server"] == ["::1", port]
    finally:
        assert _stop(proc) == 0


@pytest.mark.parametrize(
    "loop, expected",
    [("asyncio", "asyncio"), ("uvloop", "uvloop"), ("auto", "uvloop")],
)
def test_event_loop_choice(server_factory, loop, expected):
    # uvloop is a pinned test dependency (requirements-test.txt), so "auto"
    # finds it too.
    try:
        import uvloop  # noqa: F401
    except ImportError:
        pytest.fail("uvloop is missing: install requirements-test.txt")
    srv = server_factory(WORKERS_APP, "--loop", loop)
    c = srv.connect()
    for _ in range(3):
        r = c.request("GET", "/")
        assert r.status == 200
        # The class of the loop the app ran on, e.g. uvloop.Loop or
        # asyncio.unix_events._UnixSelectorEventLoop.
        ran = json.loads(r.body)["loop"]
        assert ran.split(".")[0] == expected, ran
    c.close()
    assert srv.stop() == 0


@pytest.mark.parametrize("mode", ["thread", "process"])
def test_several_workers_serve_and_stop(server_factory, record_dir, mode):
    srv = server_factory(WORKERS_APP, "--workers", "2", "--worker-mode", mode)
    assert f"2 workers, {mode} mode" in srv.log_text()
    # Each of the two workers answers a connection (one is blocked by the app
    # while the other must take the next connection; see conn_per_worker).
    conns = conn_per_worker(srv, record_dir)
    assert set(conns) == {0, 1}, conns
    answers = []
    for w, (c, first) in conns.items():
        answers.append(first)
        r = c.request("GET", "/")  # keep-alive: the same worker again
        assert r.status == 200
        again = json.loads(r.body)
        assert again["worker"] == w and again["pid"] == first["pid"], (again, first)
        c.close()
    pids = {a["pid"] for a in answers}
    if mode == "process":
        assert len(pids) == 2 and srv.proc.pid not in pids, (pids, srv.proc.pid)
    else:
        # One process, the master's child (the master never runs the app).
        assert len(pids) == 1 and srv.proc.pid not in pids, (pids, srv.proc.pid)
        assert len({a["thread"] for a in answers}) == 2, answers
    assert srv.stop() == 0


def test_pounce_run_programmatic(tmp_path):
    script = tmp_path / "run_it.py"
    script.write_text(
        "import pounce\n"
        "async def app(scope, receive, send):\n"
        "    if scope['type'] != 'http':\n"
        "        return\n"
        "    await send({'type': 'http.response.start', 'status': 200, 'headers': []})\n"
        "    await send({'type': 'http.response.body', 'body': b'run'})\n"
        "raise SystemExit(pounce.run(app, port=0, lifespan='off'))\n"
    )
    proc = subprocess.Popen(
        [sys.executable, str(script)], cwd=ROOT, stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
    try:
        m, _ = _wait_line(proc, r"Listening on http://127\.0\.0\.1:(\d+)")
        c = RawConn("127.0.0.1", int(m.group(1)))
        r = c.request("GET", "/")
        assert (r.status, r.body) == (200, b"run")
        c.close()
    finally:
        assert _stop(proc) == 0


# --------------------------------------------------------------------------
# --uds-permissions: the mode on disk, exactly, and what nginx's worker
# (user nobody) can do with it.  The issue: bound under the umask (0755),
# the socket refused nginx's connect() with EACCES and nginx answered 502.


@pytest.mark.parametrize(
    "text, mode", [("666", 0o666), ("0666", 0o666), ("0o660", 0o660), ("0O600", 0o600), ("0", 0)]
)
def test_uds_permissions_octal_text(text, mode):
    from pounce._config import load_config, parse_text

    assert parse_text("uds_permissions", text) == mode
    config = load_config({}, environ={"POUNCE_UDS_PERMISSIONS": text}, cwd="/")
    assert config.uds_permissions == mode


@pytest.mark.parametrize("text", ["888", "rw-rw-rw-", "0x1b6", "-1", "0o", "12345"])
def test_uds_permissions_bad_text(text):
    from pounce._config import ConfigError, load_config

    with pytest.raises(ConfigError, match="POUNCE_UDS_PERMISSIONS: expected an octal file mode"):
        load_config({}, environ={"POUNCE_UDS_PERMISSIONS": text}, cwd="/")


def test_uds_permissions_decimal_in_toml_is_refused(tmp_path):
    # TOML `uds_permissions = 660` is the decimal 660: out of range, not
    # silently the wrong mode.  0o660 and "660" are right.
    from pounce._config import ConfigError, load_config

    (tmp_path / "pounce.toml").write_text("uds_permissions = 660\n")
    with pytest.raises(ConfigError, match="pounce.toml: uds_permissions"):
        load_config({}, environ={}, cwd=str(tmp_path))
    for spelled in ("0o660", '"660"'):
        (tmp_path / "pounce.toml").write_text(f"uds_permissions = {spelled}\n")
        assert load_config({}, environ={}, cwd=str(tmp_path)).uds_permissions == 0o660


def test_load_config_reports_explicit_origins(tmp_path):
    from pounce._config import load_config

    (tmp_path / "pounce.toml").write_text("backlog = 10\n")
    origins: dict = {}
    load_config({"port": "9"}, environ={"POUNCE_HOST": "::1"}, cwd=str(tmp_path), origins=origins)
    assert origins == {"backlog": "pounce.toml", "host": "POUNCE_HOST", "port": "--port"}


def test_uds_is_never_wider_than_asked(tmp_path, monkeypatch):
    """bind() creates the file; between it and chmod() it must not be
    reachable with a wider mode than --uds-permissions (in-process: look at
    the file at the moment chmod is called)."""
    from pounce import Config
    from pounce._listeners import bind_listeners, close_listeners

    seen = []
    real_chmod = os.chmod

    def spy(path, mode, *a, **kw):
        seen.append((os.stat(path).st_mode & 0o7777, mode))
        return real_chmod(path, mode, *a, **kw)

    monkeypatch.setattr(os, "chmod", spy)
    old = os.umask(0o002)  # a permissive umask: 0775 without the fix
    try:
        config = Config(uds=str(tmp_path / "w.sock"), uds_permissions=0o640)
        lst = bind_listeners(config, explicit={"uds": "--uds"})
    finally:
        os.umask(old)
    assert os.umask(old) == old, "the umask is restored"
    assert seen == [(0, 0o640)], seen
    assert os.stat(config.uds).st_mode & 0o7777 == 0o640
    close_listeners(lst, config)


@pytest.fixture
def world_dir():
    """A directory nginx's worker (nobody) may traverse: pytest's tmp_path
    is under a 0700 directory."""
    d = tempfile.mkdtemp(prefix="pounce-uds-")
    os.chmod(d, 0o755)
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def nginx(world_dir):
    """Start nginx (master as root, one worker as nobody) proxying
    127.0.0.1:PORT to the Unix socket world_dir/app.sock."""
    exe = shutil.which("nginx") or "/usr/sbin/nginx"
    if not os.path.exists(exe):
        pytest.fail("nginx missing: `make deps` installs nginx-light")
    d = world_dir
    port = free_port()
    sock = os.path.join(d, "app.sock")
    conf = os.path.join(d, "nginx.conf")
    with open(conf, "w") as f:
        f.write(
            f"""daemon off;
master_process on;
user nobody nogroup;
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log info;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body;
    proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fastcgi;
    uwsgi_temp_path {d}/uwsgi;
    scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{ proxy_pass http://unix:{sock}:; }}
    }}
}}
"""
        )
    proc = subprocess.Popen(
        [exe, "-p", d, "-e", f"{d}/error.log", "-c", conf],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 10
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if proc.poll() is not None or time.monotonic() > deadline:
                proc.kill()
                log = open(f"{d}/error.log").read() if os.path.exists(f"{d}/error.log") else ""
                pytest.fail(f"nginx did not start: {log}")
            time.sleep(0.05)
    try:
        yield port, sock, f"{d}/error.log"
    finally:
        proc.send_signal(signal.SIGQUIT)
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)


def _via_nginx(port: int) -> int:
    c = RawConn("127.0.0.1", port, timeout=10)
    try:
        return c.request("GET", "/via-nginx").status
    finally:
        c.close()


def test_uds_default_mode_lets_nginx_in(server_factory, nginx):
    port, sock, _ = nginx
    # A umask of 022, the usual one, made the bug: 0755, no write for nobody.
    old = os.umask(0o022)  # inherited by the server
    try:
        srv = server_factory(SCOPE_APP, "--uds", sock)
    finally:
        os.umask(old)
    assert os.stat(sock).st_mode & 0o7777 == 0o666
    assert _via_nginx(port) == 200
    assert srv.stop() == 0


def test_uds_permissions_600_keeps_nginx_out(server_factory, nginx):
    port, sock, error_log = nginx
    srv = server_factory(SCOPE_APP, "--uds", sock, "--uds-permissions", "600")
    assert os.stat(sock).st_mode & 0o7777 == 0o600
    assert _via_nginx(port) == 502
    with open(error_log) as f:
        assert "(13: Permission denied)" in f.read()
    assert srv.stop() == 0


# --------------------------------------------------------------------------
# Errors name the address.


def _run_to_exit(args, preexec_fn=None, timeout=15):
    proc = subprocess.run(
        [str(VENV_BIN / "pounce"), SCOPE_APP, *args],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        timeout=timeout,
        preexec_fn=preexec_fn,
    )
    return proc.returncode, proc.stdout.decode(errors="replace")


def test_port_in_use_names_the_address():
    holder = socket.socket()
    holder.bind(("127.0.0.1", 0))
    holder.listen(1)
    port = holder.getsockname()[1]
    try:
        rc, out = _run_to_exit(["--port", str(port)])
    finally:
        holder.close()
    assert rc == 1, out
    assert f"cannot listen on 127.0.0.1:{port}: Address already in use" in out


def test_uds_in_a_missing_directory_names_the_path(tmp_path):
    path = str(tmp_path / "missing" / "x.sock")
    rc, out = _run_to_exit(["--uds", path])
    assert rc == 1, out
    assert f"cannot listen on unix:{path}: No such file or directory" in out


def test_uds_in_a_directory_we_may_not_write_names_the_path(world_dir):
    # As root nothing is denied: take away the capabilities that override
    # file permissions (setpriv is in util-linux, installed by `make deps`)
    # and make the directory someone else's.  Staying root keeps the
    # interpreter readable wherever it lives (pyenv's are under /root).
    path = os.path.join(world_dir, "x.sock")
    cmd = [str(VENV_BIN / "pounce"), SCOPE_APP, "--uds", path]
    if os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            pytest.fail("setpriv missing: `make deps` installs util-linux")
        nobody = pwd.getpwnam("nobody")
        os.chown(world_dir, nobody.pw_uid, nobody.pw_gid)
        cmd = [setpriv, "--bounding-set=-dac_override,-dac_read_search", *cmd]
    else:
        os.chmod(world_dir, 0o555)
    proc = subprocess.run(
        cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15
    )
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 1, out
    assert f"cannot listen on unix:{path}: Permission denied" in out


def test_uds_refuses_a_path_another_server_answers_on(server_factory, tmp_path):
    path = str(tmp_path / "busy.sock")
    first = server_factory(SCOPE_APP, "--uds", path)
    rc, out = _run_to_exit(["--uds", path])
    assert rc == 1, out
    assert f"cannot listen on unix:{path}: Address already in use" in out
    head, _ = _unix_request(path)  # the first server still has its socket
    assert head.startswith(b"HTTP/1.1 200")
    assert first.stop() == 0


def test_uds_refuses_to_replace_a_file(tmp_path):
    path = tmp_path / "data.txt"
    path.write_text("keep me")
    rc, out = _run_to_exit(["--uds", str(path)])
    assert rc == 1, out
    assert f"cannot listen on unix:{path}: the path exists and is not a socket" in out
    assert path.read_text() == "keep me"


def test_fd_that_is_not_listening_is_refused():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    fd = s.fileno()
    proc = subprocess.run(
        [str(VENV_BIN / "pounce"), SCOPE_APP, "--fd", str(fd)],
        cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=15, pass_fds=(fd,),
    )
    s.close()
    out = proc.stdout.decode(errors="replace")
    assert proc.returncode == 1, out
    assert f"cannot listen on fd {fd}: the socket is not listening" in out
