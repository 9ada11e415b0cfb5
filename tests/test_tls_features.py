"""TLS features beyond the transport (issue 14, second part), through the
real server and real clients: session-ticket keys rotated and shared by
the workers, client_cert_error with --ssl-cert-reqs optional, the SNI name
in the scope, and which path pathsend took over TLS.

Certificates: tests/tls_certs.py (openssl CLI), once per session.  Every
server listens on 127.0.0.1; every wait is bounded.
"""

from __future__ import annotations

import json
import socket
import ssl
import time
from pathlib import Path

import pytest

from tests.tls_certs import Certs, make_certs

pytestmark = pytest.mark.pounce_only("Pounce's own TLS (the C core's OpenSSL transport)")

SCOPE_APP = "tests.apps.scope:app"
HTTP_APP = "tests.apps.asgi_http:app"


@pytest.fixture(scope="module")
def certs(tmp_path_factory) -> Certs:
    return make_certs(tmp_path_factory.mktemp("tlsfeat"))


def tls_args(c: Certs, *extra: str) -> tuple[str, ...]:
    return ("--ssl-certfile", str(c.cert), "--ssl-keyfile", str(c.key), *extra)


def client_ctx(c: Certs, *, cert: tuple[Path, Path] | None = None,
               version: ssl.TLSVersion | None = None) -> ssl.SSLContext:
    ctx = ssl.create_default_context(cafile=str(c.ca))
    if cert:
        ctx.load_cert_chain(str(cert[0]), str(cert[1]))
    if version:
        ctx.minimum_version = ctx.maximum_version = version
    return ctx


def read_response(s: ssl.SSLSocket, buf: bytearray | None = None) -> tuple[bytes, bytes]:
    """One Content-Length response (bytes past it stay in buf, for the
    next response of a keep-alive connection)."""
    buf = bytearray() if buf is None else buf
    while b"\r\n\r\n" not in buf:
        data = s.recv(65536)
        assert data, f"closed before a response head: {bytes(buf)!r}"
        buf += data
    head, _, rest = bytes(buf).partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        data = s.recv(65536)
        assert data, "closed mid-body"
        rest += data
    buf[:] = rest[length:]
    return head, rest[:length]


def request(srv, ctx: ssl.SSLContext, *, session: ssl.SSLSession | None = None,
            server_hostname: str | None = "127.0.0.1", path: str = "/"):
    """One request on a new connection: (scope or body, the SSL socket's
    session, whether it was resumed)."""
    raw = socket.create_connection((srv.host, srv.port), timeout=5)
    s = ctx.wrap_socket(raw, server_hostname=server_hostname, session=session)
    try:
        s.sendall(f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())
        head, body = read_response(s)
        assert head.startswith(b"HTTP/1.1 200"), head
        return body, s.session, s.session_reused
    finally:
        s.close()


# ---- session tickets ----------------------------------------------------------


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_tickets_resume_on_every_worker_of_process_mode(server_factory, certs, version):
    """Two worker processes (--reuse-port: the kernel spreads the
    connections over their sockets): a ticket one sealed opens on the other,
    since both derive the same key from the secret they inherited."""
    srv = server_factory(SCOPE_APP, *tls_args(certs), "--workers", "2", "--worker-mode",
                         "process", "--reuse-port")
    ctx = client_ctx(certs, version=version)
    body, session, reused = request(srv, ctx)
    assert not reused
    workers = {json.loads(body)["extensions"]["pounce.worker"]}
    for _ in range(12):
        body, new_session, reused = request(srv, ctx, session=session)
        assert reused, "a connection was not resumed"
        workers.add(json.loads(body)["extensions"]["pounce.worker"])
        session = new_session
    assert len(workers) == 2, workers


def _wait_for_phase(period: float, lo: float, hi: float) -> None:
    """Sleep until wall-clock time mod period is in [lo, hi): the server's
    epoch is floor(time / period), so the test knows where its boundaries
    fall."""
    deadline = time.monotonic() + 3 * period
    while not lo <= time.time() % period < hi:
        assert time.monotonic() < deadline
        time.sleep(0.02)


def test_ticket_of_the_previous_period_resumes_and_is_renewed(server_factory, certs):
    """A TLS 1.2 ticket sealed late in one period, used early in the next:
    accepted (the previous key still opens tickets) and replaced by a new
    ticket (new session id: OpenSSL's client names a session by its
    ticket's hash); in the same period, the ticket is kept."""
    period = 2
    srv = server_factory(HTTP_APP, *tls_args(certs, "--ssl-ticket-lifetime", str(period)))
    ctx = client_ctx(certs, version=ssl.TLSVersion.TLSv1_2)
    _wait_for_phase(period, 0.1, 0.6)
    _, session, _ = request(srv, ctx)
    _, same, reused = request(srv, ctx, session=session)
    assert reused and same.id == session.id  # same period: no new ticket
    _wait_for_phase(period, 1.3, 1.7)
    _, session, _ = request(srv, ctx)
    _wait_for_phase(period, 0.1, 0.5)  # the next period, about a second later
    _, renewed, reused = request(srv, ctx, session=session)
    assert reused, "the previous period's ticket was refused"
    assert renewed.id != session.id, "no new ticket for a ticket of the previous key"


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_ticket_older_than_two_periods_is_refused(server_factory, certs, version):
    srv = server_factory(HTTP_APP, *tls_args(certs, "--ssl-ticket-lifetime", "1"))
    ctx = client_ctx(certs, version=version)
    _, session, _ = request(srv, ctx)
    _, fresh, reused = request(srv, ctx, session=session)
    assert reused
    time.sleep(2.2)  # past two periods: both keys that could open it are gone
    _, _, reused = request(srv, ctx, session=fresh)
    assert not reused


def test_ticket_lifetime_is_the_hint_sent_to_clients(server_factory, certs):
    srv = server_factory(HTTP_APP, *tls_args(certs, "--ssl-ticket-lifetime", "600"))
    _, session, _ = request(srv, client_ctx(certs))
    assert session.ticket_lifetime_hint == 600
    srv = server_factory(HTTP_APP, *tls_args(certs))
    _, session, _ = request(srv, client_ctx(certs))
    assert session.ticket_lifetime_hint == 3600  # the default


def test_another_generation_does_not_take_the_ticket(server_factory, certs):
    """Each server (each generation, after a reload) has its own secret."""
    a = server_factory(HTTP_APP, *tls_args(certs))
    b = server_factory(HTTP_APP, *tls_args(certs))
    ctx = client_ctx(certs, version=ssl.TLSVersion.TLSv1_2)
    _, session, _ = request(a, ctx)
    _, _, reused = request(b, ctx, session=session)
    assert not reused
    _, _, reused = request(a, ctx, session=session)
    assert reused


# ---- client_cert_error ----------------------------------------------------------


def _refused(srv, ctx) -> bool:
    """Whether the server refuses the handshake (with TLS 1.3 the client
    learns it at its first read)."""
    try:
        request(srv, ctx)
        return False
    except (ssl.SSLError, ConnectionResetError, BrokenPipeError, AssertionError):
        return True


def mtls_args(certs: Certs, reqs: str) -> tuple[str, ...]:
    return tls_args(certs, "--ssl-ca-certs", str(certs.ca), "--ssl-cert-reqs", reqs)


def tls_ext(body: bytes) -> dict:
    return json.loads(body)["extensions"]["tls"]


@pytest.mark.parametrize("version", [ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2])
def test_optional_client_cert_that_does_not_verify_is_reported(server_factory, certs, version):
    srv = server_factory(SCOPE_APP, *mtls_args(certs, "optional"))
    cases = [
        ((certs.expired_cert, certs.expired_key), "certificate has expired",
         "CN=expired-client"),
        ((certs.rogue_cert, certs.rogue_key), "unable to get local issuer certificate",
         "CN=rogue-client"),
        ((certs.client_cert, certs.client_key), None, "CN=test-client"),
        (None, None, None),
    ]
    for cert, error, name in cases:
        ctx = client_ctx(certs, cert=cert, version=version)
        body, session, _ = request(srv, ctx)
        tls = tls_ext(body)
        assert tls["client_cert_error"] == error, (cert, tls)
        if name:
            assert tls["client_cert_name"].startswith(name)
            assert tls["client_cert_chain"][0].strip() == cert[0].read_text().strip()
        else:
            assert tls["client_cert_name"] is None
        # A resumed session keeps the verdict (it is in the ticket).
        body, _, reused = request(srv, ctx, session=session)
        assert reused and tls_ext(body)["client_cert_error"] == error


def test_required_still_refuses_what_does_not_verify(server_factory, certs):
    srv = server_factory(SCOPE_APP, *mtls_args(certs, "required"))
    assert _refused(srv, client_ctx(certs, cert=(certs.expired_cert, certs.expired_key)))
    assert _refused(srv, client_ctx(certs, cert=(certs.rogue_cert, certs.rogue_key)))
    assert _refused(srv, client_ctx(certs))
    body, _, _ = request(srv, client_ctx(certs, cert=(certs.client_cert, certs.client_key)))
    assert tls_ext(body)["client_cert_error"] is None


# ---- SNI ----------------------------------------------------------------------


def test_sni_name_reaches_the_app(server_factory, certs):
    import subprocess

    from tests.tls_certs import tool_env

    srv = server_factory(SCOPE_APP, *tls_args(certs))
    ctx = client_ctx(certs)
    body, _, _ = request(srv, ctx, server_hostname="localhost")
    assert tls_ext(body)["server_name"] == "localhost"
    # An IP address: Python sends no SNI (RFC 6066 §3 forbids literal IPs).
    body, _, _ = request(srv, ctx, server_hostname="127.0.0.1")
    assert tls_ext(body)["server_name"] is None
    # Any name the client asks for is passed on, whether the certificate
    # covers it or not (the app may refuse it).
    lax = client_ctx(certs)
    lax.check_hostname = False
    lax.verify_mode = ssl.CERT_NONE
    body, _, _ = request(srv, lax, server_hostname="other.example")
    assert tls_ext(body)["server_name"] == "other.example"
    # curl with a name resolved to our address.
    out = subprocess.run(
        ["curl", "-sS", "--max-time", "5", "--cacert", str(certs.ca), "--resolve",
         f"localhost:{srv.port}:127.0.0.1", f"https://localhost:{srv.port}/"],
        capture_output=True, timeout=10, env=tool_env(),
    )
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout)["extensions"]["tls"]["server_name"] == "localhost"


def test_sni_name_of_a_resumed_session(server_factory, certs):
    srv = server_factory(SCOPE_APP, *tls_args(certs))
    for version in (ssl.TLSVersion.TLSv1_3, ssl.TLSVersion.TLSv1_2):
        ctx = client_ctx(certs, version=version)
        _, session, _ = request(srv, ctx, server_hostname="localhost")
        body, _, reused = request(srv, ctx, session=session, server_hostname="localhost")
        assert reused and tls_ext(body)["server_name"] == "localhost", version


# ---- pathsend: kernel TLS or read-and-write -------------------------------------


def _ktls_in_kernel() -> bool:
    return "tls" in Path("/proc/sys/net/ipv4/tcp_available_ulp").read_text().split()


def test_pathsend_over_tls_says_which_path_ran(server_factory, certs, tmp_path):
    """The debug log says once per connection how its files go out; every
    file arrives intact either way (this machine's kernel may lack the TLS
    ULP: then the read-and-write path runs and the line says why)."""
    import hashlib
    import os

    blobs = []
    for i, size in enumerate((1024 * 1024 + 123, 70_000, 1)):
        f = tmp_path / f"blob{i}.bin"
        f.write_bytes(os.urandom(size))
        blobs.append(f)
    srv = server_factory(HTTP_APP, *tls_args(certs, "--log-level", "debug"))
    raw = socket.create_connection((srv.host, srv.port), timeout=10)
    s = client_ctx(certs).wrap_socket(raw, server_hostname="127.0.0.1")
    buf = bytearray()
    for f in blobs:  # keep-alive: one connection, three files
        s.sendall(f"GET /pathsend?path={f} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
        head, body = read_response(s, buf)
        assert head.startswith(b"HTTP/1.1 200")
        assert hashlib.sha256(body).digest() == hashlib.sha256(f.read_bytes()).digest()
    s.close()
    request(srv, client_ctx(certs))  # a connection without a file: no line
    srv.wait_log(r"pathsend over TLS", timeout=5)
    time.sleep(0.2)
    lines = [ln for ln in srv.log_text().splitlines() if "pathsend over TLS" in ln]
    assert len(lines) == 1, lines
    if _ktls_in_kernel():
        assert "pathsend over TLS: kTLS sendfile" in lines[0], lines
    else:
        assert "pathsend over TLS: read-and-write (kernel TLS not available: " in lines[0], lines
        assert "TLS ULP" in lines[0], lines


def test_pathsend_line_only_at_debug_level(server_factory, certs, tmp_path):
    f = tmp_path / "blob.bin"
    f.write_bytes(b"x" * 5000)
    srv = server_factory(HTTP_APP, *tls_args(certs))
    body, _, _ = request(srv, client_ctx(certs), path=f"/pathsend?path={f}")
    assert body == b"x" * 5000
    time.sleep(0.2)
    assert "pathsend over TLS" not in srv.log_text()

