"""The test CA of tests/tls_ca.py checks out with tools that did not make it.

The certificates are made with the `cryptography` package; here Debian's
`openssl` command (in the Makefile's DEB_PACKAGES: a missing one fails,
never skips) verifies the chains, purposes, names, dates and keys, and
Python's `ssl` module does real handshakes on 127.0.0.1 with them: server
name checked, mutual TLS accepted, an expired or untrusted client refused.
Each handshake is bounded by a 5 s socket timeout.
"""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import threading
from pathlib import Path

import pytest

from tests.server import ROOT
from tests.tls_ca import CLIENT_CN, TestCA, make_test_ca, tls_ca  # noqa: F401  (fixture)

OPENSSL = shutil.which("openssl")


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    assert OPENSSL, "the openssl command is missing (make deps installs Debian's openssl)"
    p = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=20)
    if check:
        assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stdout}{p.stderr}"
    return p


def verify(ca: Path, cert: Path, *extra: str) -> subprocess.CompletedProcess:
    return openssl("verify", "-CAfile", str(ca), *extra, str(cert), check=False)


def pubkey(*args: str) -> str:
    return openssl(*args).stdout


def test_chains_and_purposes(tls_ca):
    assert verify(tls_ca.ca_cert, tls_ca.server_cert, "-purpose", "sslserver").returncode == 0
    assert verify(tls_ca.ca_cert, tls_ca.client_cert, "-purpose", "sslclient").returncode == 0
    # Each leaf is for its side only (extended key usage).
    assert verify(tls_ca.ca_cert, tls_ca.server_cert, "-purpose", "sslclient").returncode != 0
    assert verify(tls_ca.ca_cert, tls_ca.client_cert, "-purpose", "sslserver").returncode != 0
    # The chain file is the leaf, then the CA.
    chain = tls_ca.server_chain.read_text()
    assert chain == tls_ca.server_cert.read_text() + tls_ca.ca_cert.read_text()


def test_server_names(tls_ca):
    sans = openssl("x509", "-in", str(tls_ca.server_cert), "-noout", "-ext",
                   "subjectAltName").stdout
    names = {s.strip() for s in sans.splitlines()[1].split(",")}
    assert names == {"DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"}, sans
    for opt in (("-verify_ip", "127.0.0.1"), ("-verify_ip", "::1"), ("-verify_hostname", "localhost")):
        assert verify(tls_ca.ca_cert, tls_ca.server_cert, *opt).returncode == 0, opt
    for opt in (("-verify_ip", "127.0.0.2"), ("-verify_hostname", "example.com")):
        p = verify(tls_ca.ca_cert, tls_ca.server_cert, *opt)
        assert p.returncode != 0 and "mismatch" in p.stdout + p.stderr, opt


def test_expired_client_is_expired(tls_ca):
    # -checkend 0: exit 1 when the certificate is no longer valid now.
    assert openssl("x509", "-in", str(tls_ca.expired_client_cert), "-noout", "-checkend", "0",
                   check=False).returncode == 1
    p = verify(tls_ca.ca_cert, tls_ca.expired_client_cert)
    assert p.returncode != 0 and "certificate has expired" in p.stdout + p.stderr
    # Only the date is wrong: it verifies at a time inside its validity.
    dates = openssl("x509", "-in", str(tls_ca.expired_client_cert), "-noout", "-startdate",
                    "-enddate", "-dateopt", "iso_8601").stdout
    assert "notBefore=" in dates and "notAfter=" in dates
    for good in (tls_ca.server_cert, tls_ca.client_cert, tls_ca.untrusted_client_cert):
        assert openssl("x509", "-in", str(good), "-noout", "-checkend", "3600",
                       check=False).returncode == 0, good


def test_untrusted_client_has_another_ca(tls_ca):
    p = verify(tls_ca.ca_cert, tls_ca.untrusted_client_cert)
    assert p.returncode != 0 and "unable to get local issuer certificate" in p.stdout + p.stderr
    assert verify(tls_ca.other_ca_cert, tls_ca.untrusted_client_cert).returncode == 0


def test_keys_match_and_encrypted_key(tls_ca):
    cert_pub = pubkey("x509", "-in", str(tls_ca.server_cert), "-noout", "-pubkey")
    assert pubkey("pkey", "-in", str(tls_ca.server_key), "-pubout") == cert_pub
    assert pubkey("pkey", "-in", str(tls_ca.mismatched_key), "-pubout") != cert_pub
    for cert, key in ((tls_ca.client_cert, tls_ca.client_key),
                      (tls_ca.expired_client_cert, tls_ca.expired_client_key),
                      (tls_ca.untrusted_client_cert, tls_ca.untrusted_client_key)):
        assert (pubkey("pkey", "-in", str(key), "-pubout")
                == pubkey("x509", "-in", str(cert), "-noout", "-pubkey")), key
    enc = tls_ca.server_key_encrypted
    assert enc.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert pubkey("pkey", "-in", str(enc), "-passin", f"pass:{tls_ca.server_key_password}",
                  "-pubout") == cert_pub
    for wrong in ("pass:wrong", "pass:"):
        assert openssl("pkey", "-in", str(enc), "-passin", wrong, "-pubout",
                       check=False).returncode != 0, wrong


def test_private_keys_stay_out_of_the_repository(tls_ca):
    assert ROOT not in tls_ca.dir.resolve().parents
    for key in tls_ca.dir.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key
    tracked = subprocess.run(["git", "-C", str(ROOT), "ls-files"], capture_output=True, text=True,
                             timeout=20).stdout.splitlines()
    assert not [f for f in tracked if f.endswith((".key",)) and f.startswith("tests/")], tracked


def test_fresh_sets_differ(tmp_path, tls_ca):
    other = make_test_ca(tmp_path / "again")
    assert other.server_spki_sha256() != tls_ca.server_spki_sha256()
    assert other.ca_cert.read_bytes() != tls_ca.ca_cert.read_bytes()


# -- real handshakes with Python's ssl --------------------------------------


def handshake(ca: TestCA, client: ssl.SSLContext, server_hostname: str,
              require_client_cert: bool) -> dict:
    """One handshake on 127.0.0.1; returns {"peer": the client cert the
    server saw, "error": the server side's error, "client_error": the
    client side's}, each only when there was one."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(str(ca.server_chain), str(ca.server_key))
    if require_client_cert:
        srv_ctx.verify_mode = ssl.CERT_REQUIRED
        srv_ctx.load_verify_locations(str(ca.ca_cert))
    out: dict = {}
    with socket.create_server(("127.0.0.1", 0)) as lsock:
        lsock.settimeout(5)

        def serve():
            try:
                conn, _ = lsock.accept()
                conn.settimeout(5)
                with srv_ctx.wrap_socket(conn, server_side=True) as tls:
                    out["peer"] = tls.getpeercert()
                    tls.sendall(b"ok")
            except (OSError, ssl.SSLError) as e:
                out["error"] = e

        t = threading.Thread(target=serve, daemon=True)
        t.start()
        try:
            with socket.create_connection(lsock.getsockname(), timeout=5) as raw:
                with client.wrap_socket(raw, server_hostname=server_hostname) as tls:
                    # TLS 1.3: a refused client certificate shows on the first read.
                    tls.recv(2)
        except (OSError, ssl.SSLError) as e:
            out.setdefault("client_error", e)
        t.join(10)
        assert not t.is_alive()
    return out


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1"])
def test_handshake_checks_server_name(tls_ca, name):
    out = handshake(tls_ca, tls_ca.client_context(), name, require_client_cert=False)
    assert out == {"peer": None}, out


def test_handshake_wrong_name_or_ca_fails(tls_ca):
    out = handshake(tls_ca, tls_ca.client_context(), "example.com", require_client_cert=False)
    err = out.get("client_error")
    assert isinstance(err, ssl.SSLCertVerificationError) and "mismatch" in str(err), out
    other = ssl.create_default_context(cafile=str(tls_ca.other_ca_cert))
    out = handshake(tls_ca, other, "localhost", require_client_cert=False)
    err = out.get("client_error")
    assert isinstance(err, ssl.SSLCertVerificationError), out
    # The server sends its chain: the client finds a root it does not trust.
    assert "self-signed certificate in certificate chain" in str(err), out


def test_handshake_mutual_tls(tls_ca):
    ok = tls_ca.client_context(tls_ca.client_cert, tls_ca.client_key)
    out = handshake(tls_ca, ok, "localhost", require_client_cert=True)
    assert set(out) == {"peer"}, out
    assert dict(x[0] for x in out["peer"]["subject"])["commonName"] == CLIENT_CN
    for cert, key, why in ((tls_ca.expired_client_cert, tls_ca.expired_client_key, "expired"),
                           (tls_ca.untrusted_client_cert, tls_ca.untrusted_client_key,
                            "unable to get local issuer")):
        out = handshake(tls_ca, tls_ca.client_context(cert, key), "localhost",
                        require_client_cert=True)
        err = out.get("error")
        assert isinstance(err, ssl.SSLCertVerificationError) and why in str(err), out
    # No certificate at all, where one is required.
    out = handshake(tls_ca, tls_ca.client_context(), "localhost", require_client_cert=True)
    err = out.get("error")
    assert isinstance(err, ssl.SSLError) and "certificate" in str(err), out
