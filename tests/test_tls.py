"""TLS in the C core (issue 14), through the real server and real clients.

The certificates are tests/tls_certs.py's, made once per session (the
`certs` fixture of tests/conftest.py): a test CA, a server certificate for
localhost, 127.0.0.1 and ::1 signed by it, client certificates signed by it
and by a second CA the server does not trust, and the server key encrypted
with a password.

Clients: curl --cacert, openssl s_client, Python's ssl module (raw sockets,
so keep-alive and pipelining are seen byte for byte), httpx, and the
websockets client over wss://.  Every server listens on 127.0.0.1; every
wait is bounded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import socket
import ssl
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect as ws_connect

from tests.serial_tls import serial_client_context
from tests.server import VENV_BIN
from tests.tls_certs import PASSWORD, Certs, tool_env

pytestmark = pytest.mark.pounce_only("Pounce's own TLS (the C core's OpenSSL transport)")

HTTP_APP = "tests.apps.asgi_http:app"
SCOPE_APP = "tests.apps.scope:app"
WS_APP = "tests.apps.ws_app:app"
MODES = ["thread", "process"]


# ---- certificates ---------------------------------------------------------


def tls_args(c: Certs, *extra: str) -> tuple[str, ...]:
    return ("--ssl-certfile", str(c.cert), "--ssl-keyfile", str(c.key), *extra)


def client_ctx(c: Certs, *, cert: tuple[Path, Path] | None = None,
               max_version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(c.ca))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if max_version:
        ctx.maximum_version = max_version
    return ctx


def tls_conn(srv, ctx: ssl.SSLContext, timeout: float = 5.0) -> ssl.SSLSocket:
    raw = socket.create_connection((srv.host, srv.port), timeout=timeout)
    return ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def read_response(s: ssl.SSLSocket, buf: bytearray) -> tuple[bytes, bytes]:
    """One Content-Length response from s (bytes past it stay in buf)."""
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        if not data:
            raise AssertionError(f"closed before a response head: {bytes(buf)!r}")
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = s.recv(65536)
        if not data:
            raise AssertionError("closed mid-body")
        rest += data
    buf[:] = rest[length:]
    return head, rest[:length]


def get(path: str) -> bytes:
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode()


# ---- clients --------------------------------------------------------------


@pytest.mark.parametrize("mode", MODES)
def test_curl_over_https_in_both_worker_modes(server_factory, certs, mode):
    srv = server_factory(HTTP_APP, *tls_args(certs), "--workers", "2", "--worker-mode", mode)
    assert "Listening on https://" in srv.log_text()
    for _ in range(4):  # new connections: both workers' sessions, one context
        out = subprocess.run(
            ["curl", "-sS", "--max-time", "5", "--cacert", str(certs.ca),
             f"https://127.0.0.1:{srv.port}/"],
            capture_output=True, timeout=10, env=tool_env(),
        )
        assert out.returncode == 0, out.stderr
        assert out.stdout == b"ok"


def test_unix_socket_and_reuse_port_listeners_speak_tls(server_factory, certs, tmp_path):
    path = tmp_path / "pounce.sock"
    srv = server_factory(HTTP_APP, *tls_args(certs), "--uds", str(path))
    assert f"Listening on unix:{path}" in srv.log_text()
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "--cacert", str(certs.ca), "--unix-socket", str(path),
         "https://localhost/"],
        capture_output=True, timeout=10, env=tool_env(),
    )
    assert out.returncode == 0 and out.stdout == b"ok", out.stderr
    srv = server_factory(HTTP_APP, *tls_args(certs), "--workers", "2", "--worker-mode",
                         "process", "--reuse-port")
    assert "Listening on https://" in srv.log_text()
    for _ in range(4):
        r = httpx.get(f"https://127.0.0.1:{srv.port}/", verify=client_ctx(certs), timeout=5)
        assert r.content == b"ok"


def _s_client_alpn(port, certs, alpn):
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{port}", "-CAfile", str(certs.ca),
         "-alpn", alpn, "-verify_return_error", "-ign_eof"],
        input=b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        capture_output=True, timeout=10, env=tool_env(),
    )
    return out.stdout.decode(errors="replace")


def test_openssl_s_client_alpn_and_verification(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    text = _s_client_alpn(srv.port, certs, "http/1.1")
    assert "ALPN protocol: http/1.1" in text
    assert "Verify return code: 0 (ok)" in text
    assert "HTTP/1.1 200 OK" in text
    # HTTP/2 is preferred when the client offers it (--http auto) ...
    assert "ALPN protocol: h2" in _s_client_alpn(srv.port, certs, "http/1.1,h2")
    # ... and never offered with --http 1.
    srv1 = server_factory(HTTP_APP, *tls_args(certs), "--http", "1")
    text = _s_client_alpn(srv1.port, certs, "h2,http/1.1")
    assert "ALPN protocol: http/1.1" in text
    assert "HTTP/1.1 200 OK" in text


def test_renegotiation_is_refused(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    # "R" asks s_client to renegotiate (TLS 1.2 only); the server must
    # refuse, and then still answer nothing it should not.
    out = subprocess.run(
        ["openssl", "s_client", "-connect", f"127.0.0.1:{srv.port}", "-CAfile", str(certs.ca),
         "-tls1_2"],
        input=b"R\n", capture_output=True, timeout=10, env=tool_env(),
    )
    text = (out.stdout + out.stderr).decode(errors="replace")
    assert "RENEGOTIATING" in text
    assert "Secure Renegotiation IS NOT supported" in text or "no renegotiation" in text.lower() \
        or "alert" in text.lower(), text


def test_scope_scheme_and_tls_extension(server_factory, certs):
    srv = server_factory(SCOPE_APP, *tls_args(certs))
    r = httpx.get(f"https://127.0.0.1:{srv.port}/x", verify=client_ctx(certs), timeout=5)
    scope = r.json()
    assert scope["scheme"] == "https"
    tls = scope["extensions"]["tls"]
    assert tls["tls_version"] == 0x0304
    assert tls["cipher_suite"] in (0x1301, 0x1302, 0x1303)
    assert tls["client_cert_chain"] == [] and tls["client_cert_name"] is None
    assert tls["client_cert_error"] is None
    assert tls["server_cert"].strip() == certs.cert.read_text().strip()
    # TLS 1.2: its version number and a TLS 1.2 suite.
    s = tls_conn(srv, client_ctx(certs, max_version=ssl.TLSVersion.TLSv1_2))
    s.sendall(get("/"))
    _, body = read_response(s, bytearray())
    tls12 = json.loads(body)["extensions"]["tls"]
    assert tls12["tls_version"] == 0x0303
    assert tls12["cipher_suite"] not in (0, 0x1301, 0x1302, 0x1303)
    s.close()


def test_plain_tcp_scope_has_no_tls_extension(server_factory):
    srv = server_factory(SCOPE_APP)
    scope = httpx.get(f"http://127.0.0.1:{srv.port}/", timeout=5).json()
    assert scope["scheme"] == "http" and "tls" not in scope["extensions"]


def test_min_version_13_refuses_tls12(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs, "--ssl-min-version", "1.3"))
    with pytest.raises(ssl.SSLError):
        tls_conn(srv, client_ctx(certs, max_version=ssl.TLSVersion.TLSv1_2))
    s = tls_conn(srv, client_ctx(certs))
    assert s.version() == "TLSv1.3"
    s.close()


def test_keep_alive_and_pipelining(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    s = tls_conn(srv, client_ctx(certs))
    buf = bytearray()
    for _ in range(20):  # keep-alive: one request at a time
        s.sendall(get("/"))
        head, body = read_response(s, buf)
        assert head.startswith(b"HTTP/1.1 200") and body == b"ok"
    # Pipelining: 10 requests in one TLS record, 10 answers in order.
    s.sendall(b"".join(get(f"/big?n={i}") for i in range(1, 11)))
    for i in range(1, 11):
        head, body = read_response(s, buf)
        assert head.startswith(b"HTTP/1.1 200") and len(body) == i
    s.close()


def test_large_bodies_both_ways(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    body = os.urandom(3 * 1024 * 1024)
    with httpx.Client(verify=client_ctx(certs), timeout=10) as client:
        r = client.post(f"https://127.0.0.1:{srv.port}/echo", content=body)
        assert r.status_code == 200 and r.content == body
        r = client.get(f"https://127.0.0.1:{srv.port}/big", params={"n": 8 * 1024 * 1024})
        assert len(r.content) == 8 * 1024 * 1024


def test_slow_reader_gets_everything(server_factory, certs):
    """Backpressure over TLS: a client that waits before reading still
    gets every byte of a response far larger than the socket buffers (the
    server stops at EAGAIN inside a TLS record and resumes on EPOLLOUT),
    even past the keep-alive deadline."""
    srv = server_factory(HTTP_APP, *tls_args(certs), "--keep-alive-timeout", "0.5")
    s = tls_conn(srv, client_ctx(certs), timeout=10)
    n = 24 * 1024 * 1024
    s.sendall(get(f"/big?n={n}"))
    time.sleep(1.0)  # the server fills the pipe, waits on it, and its keep-alive deadline passes
    head, body = read_response(s, bytearray())
    assert head.startswith(b"HTTP/1.1 200") and len(body) == n
    s.close()


def test_pathsend_over_tls(server_factory, certs, tmp_path):
    data = os.urandom(1024 * 1024 + 123)
    f = tmp_path / "blob.bin"
    f.write_bytes(data)
    srv = server_factory(HTTP_APP, *tls_args(certs))
    r = httpx.get(f"https://127.0.0.1:{srv.port}/pathsend", params={"path": str(f)},
                  verify=client_ctx(certs), timeout=10)
    assert r.status_code == 200
    assert hashlib.sha256(r.content).digest() == hashlib.sha256(data).digest()


def test_websocket_over_wss(server_factory, certs):
    srv = server_factory(WS_APP, *tls_args(certs))
    ctx = serial_client_context(certs.ca)  # the sync client reads in a thread: see serial_tls
    with ws_connect(f"wss://127.0.0.1:{srv.port}/echo", ssl=ctx, open_timeout=5) as ws:
        ws.send("hello")
        assert ws.recv(timeout=5) == "hello"
        big = os.urandom(300_000)
        ws.send(big)
        assert ws.recv(timeout=5) == big
    with ws_connect(f"wss://127.0.0.1:{srv.port}/scope", ssl=ctx, open_timeout=5) as ws:
        scope = json.loads(ws.recv(timeout=5))
    assert scope["scheme"] == "wss"


def test_session_resumption_by_ticket(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    ctx = client_ctx(certs)
    s = tls_conn(srv, ctx)
    s.sendall(get("/"))
    read_response(s, bytearray())  # the TLS 1.3 ticket came before the response
    session = s.session
    s.close()
    raw = socket.create_connection((srv.host, srv.port), timeout=5)
    s2 = ctx.wrap_socket(raw, server_hostname="127.0.0.1", session=session)
    s2.sendall(get("/"))
    _, body = read_response(s2, bytearray())
    assert body == b"ok" and s2.session_reused
    s2.close()


def _served_cert(srv, certs) -> bytes:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    with socket.create_connection((srv.host, srv.port), timeout=5) as raw:
        with ctx.wrap_socket(raw) as s:
            return s.getpeercert(binary_form=True)


def _der(pem: Path) -> bytes:
    return ssl.PEM_cert_to_DER_cert(pem.read_text())


def test_sighup_reloads_the_certificate_without_dropping_connections(server_factory, certs,
                                                                    tmp_path):
    import shutil
    import signal

    cert, key = tmp_path / "live.pem", tmp_path / "live.key"
    shutil.copy(certs.cert, cert)
    shutil.copy(certs.key, key)
    srv = server_factory(HTTP_APP, "--ssl-certfile", str(cert), "--ssl-keyfile", str(key))
    assert _served_cert(srv, certs) == _der(certs.cert)
    # A keep-alive connection of the old generation lives through the reload.
    old = tls_conn(srv, client_ctx(certs))
    old.sendall(get("/"))
    buf = bytearray()
    assert read_response(old, buf)[1] == b"ok"
    # A broken pair: the reload fails, the old generation keeps serving.
    shutil.copy(certs.other_key, key)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload failed", timeout=20)
    assert "does not match the certificate" in srv.log_text()
    assert _served_cert(srv, certs) == _der(certs.cert)
    # The client certificate, with its key, as the new server certificate.
    shutil.copy(certs.client_cert, cert)
    shutil.copy(certs.client_key, key)
    srv.proc.send_signal(signal.SIGHUP)
    srv.wait_log(r"reload: generation \d+ \(pid \d+\) serves the new code", timeout=20)
    # The master logs that line, then tells the old generation to drain: a
    # connection made in between may still be accepted by the old one.
    deadline = time.monotonic() + 10
    while (served := _served_cert(srv, certs)) != _der(certs.client_cert):
        assert served == _der(certs.cert)  # the old generation's, nothing else
        assert time.monotonic() < deadline, "the new certificate was never served"
        time.sleep(0.05)
    old.sendall(get("/"))  # the old generation drains it: answered, then closed
    head, body = read_response(old, buf)
    assert body == b"ok" and b"connection: close" in head.lower()
    old.close()


def test_proxy_protocol_then_tls_in_one_segment(server_factory, certs):
    """A TCP proxy in front (--proxy-protocol): the PROXY header comes
    first, then the handshake, here in the same segment as the header, so
    the bytes read with the header must reach the TLS session."""
    srv = server_factory(SCOPE_APP, *tls_args(certs, "--proxy-protocol"))
    sock = socket.create_connection((srv.host, srv.port), timeout=5)
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = client_ctx(certs).wrap_bio(inc, out, server_hostname="127.0.0.1")

    def pump(first: bytes = b"") -> None:
        sock.sendall(first + out.read())
        data = sock.recv(65536)
        assert data, "closed during the handshake"
        inc.write(data)

    header = b"PROXY TCP4 192.0.2.7 198.51.100.1 4711 443\r\n"
    try:
        tls.do_handshake()
    except ssl.SSLWantReadError:
        pump(header)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            pump()
    tls.write(get("/"))
    sock.sendall(out.read())
    buf = b""

    def complete() -> bool:
        head, sep, body = buf.partition(b"\r\n\r\n")
        m = re.search(rb"(?i)\r\ncontent-length: *(\d+)", head)
        return bool(sep and m and len(body) >= int(m.group(1)))

    while not complete():
        try:  # every record already received first (a read returns one)
            buf += tls.read(65536)
            continue
        except ssl.SSLWantReadError:
            pass
        data = sock.recv(65536)
        assert data, "closed before the response"
        inc.write(data)
    scope = json.loads(buf.partition(b"\r\n\r\n")[2])
    assert scope["client"] == ["192.0.2.7", 4711]
    assert scope["scheme"] == "https"
    assert scope["extensions"]["tls"]["tls_version"] == 0x0304
    sock.close()


def test_thread_workers_share_one_context_under_load(server_factory, certs):
    """4 thread workers, one SSL_CTX: clients on several threads make new
    connections (full and resumed handshakes) and keep-alive requests at
    once.  Under `make tsan` (TSAN_K=thread scripts/tsan.sh tests/test_tls.py)
    this is the race check of the shared context; here it checks every
    answer."""
    import threading

    srv = server_factory(HTTP_APP, *tls_args(certs), "--workers", "4", "--worker-mode", "thread")
    ctx = client_ctx(certs)
    seconds = float(os.environ.get("POUNCE_STRESS_SECONDS", "1.5"))
    deadline = time.monotonic() + seconds
    errors: list[str] = []
    counts = [0] * 6

    def client(i: int) -> None:
        session = None
        try:
            while time.monotonic() < deadline:
                raw = socket.create_connection((srv.host, srv.port), timeout=30)
                s = ctx.wrap_socket(raw, server_hostname="127.0.0.1",
                                    session=session if i % 2 else None)
                buf = bytearray()
                for k in range(1 + i % 3):
                    s.sendall(get(f"/big?n={100 + 7919 * k * i}"))
                    _, body = read_response(s, buf)
                    if len(body) != 100 + 7919 * k * i:
                        errors.append(f"client {i}: {len(body)} bytes")
                    counts[i] += 1
                session = s.session
                s.close()
        except Exception as e:  # reported below, with the others
            errors.append(f"client {i}: {e!r}")

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=seconds + 60)
    assert not errors, errors[:5]
    assert all(counts), counts


# ---- what is not TLS --------------------------------------------------------


def test_plain_http_to_the_tls_port_gets_400(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    c = srv.connect()
    c.send(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    got = c.read_to_eof()
    assert got.startswith(b"HTTP/1.1 400 "), got
    assert b"plain HTTP request was sent" in got
    assert b"connection: close" in got.lower()


def test_handshake_never_finished_is_closed_at_the_header_deadline(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs, "--header-timeout", "1"))
    silent = socket.create_connection((srv.host, srv.port), timeout=5)
    partial = socket.create_connection((srv.host, srv.port), timeout=5)
    partial.sendall(b"\x16\x03\x01\x02\x00\x01")  # a ClientHello that never ends
    start = time.monotonic()
    for s in (silent, partial):
        s.settimeout(5)
        try:
            assert s.recv(100) == b""
        except ConnectionResetError:
            pass
    elapsed = time.monotonic() - start
    assert 0.7 < elapsed < 3.0, elapsed
    silent.close()
    partial.close()
    # The server still serves.
    s = tls_conn(srv, client_ctx(certs))
    s.sendall(get("/"))
    assert read_response(s, bytearray())[1] == b"ok"
    s.close()


def test_untrusting_client_fails_and_server_lives(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs))
    with pytest.raises(ssl.SSLCertVerificationError):
        tls_conn(srv, ssl.create_default_context())  # the system CAs do not know ours
    s = tls_conn(srv, client_ctx(certs))
    s.sendall(get("/"))
    assert read_response(s, bytearray())[1] == b"ok"
    s.close()


# ---- mutual TLS -------------------------------------------------------------


def _refused(srv, ctx) -> bool:
    """Whether the server refuses the handshake (with TLS 1.3 the client
    learns it at its first read)."""
    try:
        s = tls_conn(srv, ctx)
        s.sendall(get("/"))
        data = s.recv(100)
        s.close()
        return data == b""
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError):
        return True


def test_mtls_required(server_factory, certs):
    srv = server_factory(SCOPE_APP, *tls_args(certs, "--ssl-ca-certs", str(certs.ca),
                                              "--ssl-cert-reqs", "required"))
    assert _refused(srv, client_ctx(certs))  # no certificate
    assert _refused(srv, client_ctx(certs, cert=(certs.rogue_cert, certs.rogue_key)))
    assert _refused(srv, client_ctx(certs, cert=(certs.expired_cert, certs.expired_key)))
    s = tls_conn(srv, client_ctx(certs, cert=(certs.client_cert, certs.client_key)))
    s.sendall(get("/"))
    tls = json.loads(read_response(s, bytearray())[1])["extensions"]["tls"]
    s.close()
    assert tls["client_cert_name"] == "CN=test-client,O=Pounce tests"
    assert len(tls["client_cert_chain"]) >= 1
    assert tls["client_cert_chain"][0].strip() == certs.client_cert.read_text().strip()
    assert tls["client_cert_error"] is None


def test_mtls_optional(server_factory, certs):
    srv = server_factory(SCOPE_APP, *tls_args(certs, "--ssl-ca-certs", str(certs.ca),
                                              "--ssl-cert-reqs", "optional"))
    s = tls_conn(srv, client_ctx(certs))
    s.sendall(get("/"))
    tls = json.loads(read_response(s, bytearray())[1])["extensions"]["tls"]
    s.close()
    assert tls["client_cert_name"] is None and tls["client_cert_chain"] == []
    # A certificate that does not verify is let through, with the reason
    # (tests/test_tls_features.py: client_cert_error).
    assert not _refused(srv, client_ctx(certs, cert=(certs.rogue_cert, certs.rogue_key)))
    s = tls_conn(srv, client_ctx(certs, cert=(certs.client_cert, certs.client_key)))
    buf = bytearray()
    for _ in range(2):  # keep-alive: the second request sees the same
        s.sendall(get("/"))
        tls = json.loads(read_response(s, buf)[1])["extensions"]["tls"]
        assert tls["client_cert_name"] == "CN=test-client,O=Pounce tests"
    # Another connection on the same worker meanwhile: its own values.
    other = tls_conn(srv, client_ctx(certs))
    other.sendall(get("/"))
    tls = json.loads(read_response(other, bytearray())[1])["extensions"]["tls"]
    assert tls["client_cert_name"] is None and tls["client_cert_chain"] == []
    other.close()
    s.sendall(get("/"))
    tls = json.loads(read_response(s, buf)[1])["extensions"]["tls"]
    assert tls["client_cert_name"] == "CN=test-client,O=Pounce tests"
    s.close()


# ---- start-up errors --------------------------------------------------------


def start_fails(*args: str, env: dict | None = None) -> str:
    out = subprocess.run(
        [str(VENV_BIN / "pounce"), HTTP_APP, "--host", "127.0.0.1", "--port", "0", *args],
        capture_output=True, timeout=20, env={**os.environ, **(env or {})},
        cwd=Path(__file__).resolve().parent.parent,
    )
    err = out.stderr.decode(errors="replace")
    assert out.returncode != 0, err
    assert "Listening on" not in err
    return err


def test_missing_certificate_file(certs):
    err = start_fails("--ssl-certfile", str(certs.dir / "nope.pem"))
    assert "--ssl-certfile" in err and "nope.pem" in err and "No such file" in err


def test_certificate_file_that_is_not_pem(certs, tmp_path):
    bad = tmp_path / "junk.pem"
    bad.write_text("not a certificate\n")
    err = start_fails("--ssl-certfile", str(bad), "--ssl-keyfile", str(certs.key))
    assert "junk.pem" in err and "certificate" in err


def test_key_not_matching_the_certificate(certs):
    err = start_fails("--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.other_key))
    assert "does not match" in err and "other.key" in err and "server.pem" in err


def test_encrypted_key_needs_its_password(certs):
    err = start_fails("--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key_enc))
    assert "encrypted" in err and "server-enc.key" in err and "ssl_keyfile_password" in err


def test_wrong_key_password(certs):
    err = start_fails("--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key_enc),
                      env={"POUNCE_SSL_KEYFILE_PASSWORD": "wrong"})
    assert "POUNCE_SSL_KEYFILE_PASSWORD" in err and "server-enc.key" in err
    assert "does not decrypt" in err


def test_right_key_password(server_factory, certs):
    srv = server_factory(HTTP_APP, "--ssl-certfile", str(certs.cert), "--ssl-keyfile",
                         str(certs.key_enc), env={"POUNCE_SSL_KEYFILE_PASSWORD": PASSWORD})
    assert PASSWORD not in srv.log_text()
    r = httpx.get(f"https://127.0.0.1:{srv.port}/", verify=client_ctx(certs), timeout=5)
    assert r.content == b"ok"


def test_tls_settings_without_a_certificate(certs):
    err = start_fails("--ssl-keyfile", str(certs.key))
    assert "ssl_keyfile needs ssl_certfile" in err
    err = start_fails(*tls_args(certs, "--ssl-cert-reqs", "required"))
    assert "needs ssl_ca_certs" in err
    err = start_fails(*tls_args(certs, "--ssl-ca-certs", str(certs.dir / "nope.pem"),
                                "--ssl-cert-reqs", "optional"))
    assert "--ssl-ca-certs" in err and "nope.pem" in err
    err = start_fails(*tls_args(certs, "--ssl-ciphers", "NO-SUCH-CIPHER"))
    assert "--ssl-ciphers" in err and "NO-SUCH-CIPHER" in err


def test_password_hidden_from_config_repr(certs):
    from pounce._pounce import Config

    c = Config(ssl_certfile=str(certs.cert), ssl_keyfile=str(certs.key_enc),
               ssl_keyfile_password=PASSWORD)
    assert PASSWORD not in repr(c) and "ssl_keyfile_password='***'" in repr(c)
