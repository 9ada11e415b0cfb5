"""Helpers for the integration tests: run the real server, talk raw HTTP.

start_server() launches `pounce MODULE:ATTR --host 127.0.0.1 --port 0 ...`
(or uvicorn when POUNCE_TEST_SERVER=uvicorn, to validate the tests
themselves against a known server) from the repository root and waits for
the "Listening on" line.  A background thread drains the child's output so
a chatty server can never block on a full pipe.

RawConn is a deliberately small HTTP/1.1 client over a plain socket: the
protocol tests need to send bytes no real client would send and to see
exactly what comes back, including whether the server closed the
connection.

Everything here runs in the pytest process; none of it is thread-safe
except Server.log_text(), which the drain thread and the test share.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
# The venv of the interpreter running the tests (make test-all runs one per
# CPython), so the server under test is the build for that interpreter.
VENV_BIN = Path(sys.executable).parent

#: Which server the suite drives: "pounce" (default) or "uvicorn".
SERVER_KIND = os.environ.get("POUNCE_TEST_SERVER", "pounce").strip().lower() or "pounce"

#: POUNCE_TEST_TLS=1: every Pounce server started here speaks TLS (its
#: certificate from shared_certs()), RawConn and Server.url speak HTTPS, and
#: httpx, urllib, websockets and curl trust the test CA (SSL_CERT_FILE,
#: CURL_CA_BUNDLE, set by tests/conftest.py at the start of the session), so
#: the HTTP tests run over TLS unchanged.  Tests whose subject is the bare
#: TCP connection (half-closes, resets) are marked tcp_only and skipped.
TLS = os.environ.get("POUNCE_TEST_TLS") == "1"
_shared_certs = None


def shared_certs():
    """The test CA and its certificates (tests.tls_certs.Certs), made once
    per test process into a temporary directory that is removed at exit.
    The one set behind the `certs` fixture and the POUNCE_TEST_TLS mode."""
    global _shared_certs
    if _shared_certs is None:
        import atexit
        import shutil
        import tempfile

        from tests.tls_certs import make_certs

        d = Path(tempfile.mkdtemp(prefix="pounce-test-certs-"))
        atexit.register(shutil.rmtree, d, ignore_errors=True)
        _shared_certs = make_certs(d)
    return _shared_certs


def tls_certs():
    """The TLS mode's certificates: shared_certs(), with the environment of
    the clients the tests start (httpx, urllib and websockets read
    SSL_CERT_FILE, curl CURL_CA_BUNDLE) trusting their CA."""
    c = shared_certs()
    os.environ["SSL_CERT_FILE"] = os.environ["CURL_CA_BUNDLE"] = str(c.ca)
    return c


def tls_client_context():
    import ssl

    return ssl.create_default_context(cafile=str(tls_certs().ca))


def http_connection(host: str, port: int, timeout: float = 10.0):
    """An http.client connection to a server of the suite: HTTPS trusting
    the test CA under POUNCE_TEST_TLS=1, plain HTTP otherwise."""
    import http.client

    if TLS:
        return http.client.HTTPSConnection(host, port, timeout=timeout,
                                           context=tls_client_context())
    return http.client.HTTPConnection(host, port, timeout=timeout)


#: Environment variable through which test apps find the directory where
#: they record what happened (lifespan events, disconnects, ...).
RECORD_ENV = "POUNCE_TEST_RECORD_DIR"

_LISTEN_RE = re.compile(
    r"(?:Listening on|Uvicorn running on) (?:https?://([\d.]+):(\d+)|unix(?: socket)?:? ?(\S+))"
)

# Pounce options whose uvicorn spelling differs.  Options not listed are
# passed through unchanged (--root-path, --lifespan, --uds are the same).
_UVICORN_OPTION_NAMES = {
    "--shutdown-timeout": "--timeout-graceful-shutdown",
}

#: Every Server that has been started and not yet reaped; conftest attaches
#: their logs to the report of a failing test.
LIVE_SERVERS: list["Server"] = []


class ServerStartError(RuntimeError):
    pass


def server_command(app: str, args: tuple[str, ...]) -> list[str]:
    if SERVER_KIND == "uvicorn":
        out = [str(VENV_BIN / "uvicorn"), app, "--host", "127.0.0.1", "--port", "0"]
        for a in args:
            name, eq, value = a.partition("=")
            out.append(_UVICORN_OPTION_NAMES.get(name, name) + eq + value)
        return out
    if SERVER_KIND != "pounce":
        raise ServerStartError(f"unknown POUNCE_TEST_SERVER={SERVER_KIND!r}")
    tls = ()
    if TLS:
        c = tls_certs()
        tls = ("--ssl-certfile", str(c.cert), "--ssl-keyfile", str(c.key))
    return [str(VENV_BIN / "pounce"), app, "--host", "127.0.0.1", "--port", "0", *tls, *args]


class Server:
    """One running server process.  Use start_server() to make one."""

    def __init__(self, app: str, args: tuple[str, ...], env: dict | None, timeout: float,
                 wrap: tuple[str, ...] = ()):
        self.app = app
        self.args = args
        self.host = "127.0.0.1"
        self.port = 0
        self.uds: str | None = None
        self._lines: list[str] = []
        self._lock = threading.Lock()
        self._line_added = threading.Condition(self._lock)
        child_env = dict(os.environ)
        child_env["PYTHONUNBUFFERED"] = "1"
        child_env.pop("POUNCE_TEST_SERVER", None)
        if env:
            child_env.update(env)
        # wrap: a command the server runs under (e.g. setpriv dropping a
        # capability), given before the server's own command line.
        self.cmd = [*wrap, *server_command(app, args)]
        # A new session so cleanup can reach any worker processes the server
        # forks; the tests themselves signal only the main pid, like `kill`.
        self.proc = subprocess.Popen(
            self.cmd,
            cwd=ROOT,
            env=child_env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        LIVE_SERVERS.append(self)
        self._drain = threading.Thread(target=self._drain_output, daemon=True)
        self._drain.start()
        try:
            self._wait_listening(timeout)
        except BaseException:
            self.kill()
            raise

    # -- output -----------------------------------------------------------------

    def _drain_output(self) -> None:
        assert self.proc.stdout is not None
        for raw in self.proc.stdout:
            line = raw.decode("utf-8", "replace").rstrip("\n")
            with self._lock:
                self._lines.append(line)
                self._line_added.notify_all()
        with self._lock:
            self._lines.append("")  # wake waiters on EOF
            self._line_added.notify_all()

    def log_text(self) -> str:
        with self._lock:
            return "\n".join(self._lines)

    def wait_log(self, pattern: str, timeout: float = 5.0) -> re.Match:
        """Wait until the combined output matches the regex `pattern`."""
        rx = re.compile(pattern)
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                m = rx.search("\n".join(self._lines))
                if m:
                    return m
                left = deadline - time.monotonic()
                if left <= 0:
                    raise AssertionError(
                        f"server log never matched {pattern!r} within {timeout}s; log:\n"
                        + "\n".join(self._lines)
                    )
                self._line_added.wait(min(left, 0.1))

    def _wait_listening(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                m = _LISTEN_RE.search("\n".join(self._lines))
                if m:
                    break
                if self.proc.poll() is not None:
                    self._line_added.wait(0.2)  # let the drain thread finish
                    raise ServerStartError(
                        f"{self.cmd} exited with {self.proc.returncode} before listening; log:\n"
                        + "\n".join(self._lines)
                    )
                left = deadline - time.monotonic()
                if left <= 0:
                    raise ServerStartError(
                        f"{self.cmd} not listening after {timeout}s; log:\n" + "\n".join(self._lines)
                    )
                self._line_added.wait(min(left, 0.1))
        if m.group(2):
            self.host, self.port = m.group(1), int(m.group(2))
        else:
            self.uds = m.group(3)

    # -- addresses --------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"{'https' if TLS else 'http'}://{self.host}:{self.port}"

    def connect(self, timeout: float = 5.0) -> "RawConn":
        return RawConn(self.host, self.port, timeout=timeout)

    # -- lifecycle --------------------------------------------------------------

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 10.0) -> int | None:
        """Send `sig` and wait for exit.  Returns the exit code, or None if
        the server had to be killed because it did not exit in time."""
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            return None
        self._reap()
        return rc

    def wait(self, timeout: float) -> int | None:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            return None

    def kill(self) -> None:
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        self._reap()

    def _reap(self) -> None:
        # Workers forked by the server share its process group; make sure
        # none outlives the test even if the main process exited early.
        try:
            os.killpg(self.proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        self._drain.join(2)
        if self in LIVE_SERVERS:
            LIVE_SERVERS.remove(self)

    def __enter__(self) -> "Server":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.stop(timeout=5)
        else:
            self._reap()


def start_server(app: str, *args: str, env: dict | None = None, timeout: float = 10,
                 wrap: tuple[str, ...] = ()) -> Server:
    """Start the server under test on 127.0.0.1 and a free port.

    `app` is "module:attr" importable from the repository root, `args` are
    extra command-line options.  The result is also a context manager."""
    return Server(app, tuple(args), env, timeout, wrap)


# -- raw HTTP -------------------------------------------------------------------


@dataclass
class Response:
    version: str
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes = b""
    raw_head: bytes = b""
    #: True when the body was delimited by the server closing the connection.
    close_delimited: bool = False
    trailers: list[tuple[str, str]] = field(default_factory=list)

    def header(self, name: str) -> str | None:
        name = name.lower()
        for k, v in self.headers:
            if k.lower() == name:
                return v
        return None

    def header_all(self, name: str) -> list[str]:
        name = name.lower()
        return [v for k, v in self.headers if k.lower() == name]

    @property
    def chunked(self) -> bool:
        te = self.header("transfer-encoding")
        return te is not None and te.lower().strip().endswith("chunked")


class ConnectionClosed(AssertionError):
    """The server closed the connection before a full response arrived."""

    def __init__(self, msg: str, partial: bytes):
        super().__init__(msg)
        self.partial = partial


class RawConn:
    """A socket plus a read buffer, with just enough HTTP/1.1 to check servers."""

    def __init__(self, host: str, port: int, timeout: float = 5.0):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if TLS:
            self.sock = tls_client_context().wrap_socket(self.sock, server_hostname=host)
        self.buf = b""
        self.eof = False

    @property
    def local_port(self) -> int:
        return self.sock.getsockname()[1]

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> "RawConn":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def _fill(self) -> bool:
        """Read more bytes; False on EOF (or reset, which a test treats alike)."""
        if self.eof:
            return False
        try:
            data = self.sock.recv(65536)
        except ConnectionResetError:
            data = b""
        if not data:
            self.eof = True
            return False
        self.buf += data
        return True

    def read_until(self, marker: bytes) -> bytes:
        while marker not in self.buf:
            if not self._fill():
                raise ConnectionClosed(f"closed before {marker!r}", self.buf)
        i = self.buf.index(marker) + len(marker)
        out, self.buf = self.buf[:i], self.buf[i:]
        return out

    def read_exact(self, n: int) -> bytes:
        while len(self.buf) < n:
            if not self._fill():
                raise ConnectionClosed(f"closed after {len(self.buf)} of {n} bytes", self.buf)
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def read_to_eof(self) -> bytes:
        while self._fill():
            pass
        out, self.buf = self.buf, b""
        return out

    def read_response(self, method: str = "GET") -> Response:
        """Read one response (which may be an interim 1xx) from the stream."""
        head = self.read_until(b"\r\n\r\n")
        lines = head[:-4].split(b"\r\n")
        version, _, rest = lines[0].decode("latin-1").partition(" ")
        code, _, reason = rest.partition(" ")
        resp = Response(version, int(code), reason, [], raw_head=head)
        for line in lines[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            resp.headers.append((name, value.strip(" \t")))
        if 100 <= resp.status < 200 or resp.status in (204, 304) or method == "HEAD":
            return resp
        if resp.chunked:
            resp.body, resp.trailers = self._read_chunked()
        elif resp.header("content-length") is not None:
            resp.body = self.read_exact(int(resp.header("content-length")))
        else:
            resp.body = self.read_to_eof()
            resp.close_delimited = True
        return resp

    def _read_chunked(self) -> tuple[bytes, list[tuple[str, str]]]:
        body = b""
        while True:
            line = self.read_until(b"\r\n")[:-2]
            size = int(line.split(b";")[0].strip(), 16)
            if size == 0:
                break
            body += self.read_exact(size)
            if self.read_exact(2) != b"\r\n":
                raise AssertionError("chunk data not followed by CRLF")
        trailers = []
        while True:
            line = self.read_until(b"\r\n")[:-2]
            if not line:
                return body, trailers
            name, _, value = line.decode("latin-1").partition(":")
            trailers.append((name, value.strip()))

    def request(self, method: str, target: str, headers=(), body: bytes = b"") -> Response:
        self.send(build_request(method, target, headers, body))
        resp = self.read_response(method)
        while resp.status == 100:
            resp = self.read_response(method)
        return resp

    def wait_closed(self, timeout: float = 3.0) -> bool:
        """True if the server closes (EOF or reset) within `timeout` seconds
        with no more data; raises if it sends more bytes instead."""
        old = self.sock.gettimeout()
        self.sock.settimeout(timeout)
        try:
            if self.buf:
                raise AssertionError(f"unexpected bytes before close: {self.buf[:200]!r}")
            if self._fill():
                raise AssertionError(f"unexpected bytes instead of close: {self.buf[:200]!r}")
            return True
        except (socket.timeout, TimeoutError):
            return False
        finally:
            self.sock.settimeout(old)


def build_request(method: str, target: str, headers=(), body: bytes = b"",
                  version: str = "HTTP/1.1") -> bytes:
    """A well-formed request; adds Host and Content-Length unless given."""
    hs = list(headers)
    names = {k.lower() for k, _ in hs}
    if "host" not in names and version == "HTTP/1.1":
        hs.insert(0, ("Host", "127.0.0.1"))
    if body and "content-length" not in names and "transfer-encoding" not in names:
        hs.append(("Content-Length", str(len(body))))
    head = f"{method} {target} {version}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in hs) + "\r\n"
    return head.encode("latin-1") + body


def get(server: Server, target: str = "/", headers=()) -> Response:
    """One request on a fresh connection (closed afterwards)."""
    with server.connect() as c:
        return c.request("GET", target, headers)


def assert_serving(server: Server) -> None:
    """The server still answers a normal request on a new connection."""
    resp = get(server, "/")
    assert resp.status == 200, (resp.status, resp.body)


# -- records written by the test apps --------------------------------------------


def read_record(record_dir: Path, token: str) -> list[str]:
    p = Path(record_dir) / token
    try:
        return p.read_text().splitlines()
    except FileNotFoundError:
        return []


def wait_record(record_dir: Path, token: str, event: str, timeout: float = 5.0) -> list[str]:
    """Wait until the app recorded `event` (a line prefix) under `token`."""
    deadline = time.monotonic() + timeout
    while True:
        lines = read_record(record_dir, token)
        if any(line.startswith(event) for line in lines):
            return lines
        if time.monotonic() > deadline:
            raise AssertionError(f"app never recorded {event!r} for {token}; got {lines}")
        time.sleep(0.02)


def run_to_exit(app: str, *args: str, env: dict | None = None, timeout: float = 15) -> tuple[int | None, str]:
    """Run the server and wait for it to exit by itself (startup failures).
    Returns (exit code or None if it had to be killed, combined output)."""
    child_env = dict(os.environ)
    child_env["PYTHONUNBUFFERED"] = "1"
    child_env.pop("POUNCE_TEST_SERVER", None)
    if env:
        child_env.update(env)
    proc = subprocess.Popen(
        server_command(app, tuple(args)),
        cwd=ROOT,
        env=child_env,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        out, _ = proc.communicate(timeout=timeout)
        rc = proc.returncode
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, _ = proc.communicate()
        rc = None
    return rc, out.decode("utf-8", "replace")


def is_clean_exit(rc: int | None, sig: int = signal.SIGTERM) -> bool:
    """Pounce exits 0 after a graceful shutdown.  uvicorn re-raises the
    signal after its graceful shutdown, so it dies by it; that counts as
    clean when validating the tests against uvicorn."""
    if rc == 0:
        return True
    return SERVER_KIND == "uvicorn" and rc == -sig
