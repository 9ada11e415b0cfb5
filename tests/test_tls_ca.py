"""The test CA of tests/tls_certs.py checks out, by the tools that verify it.

The certificates are made with the openssl CLI; here its `verify` (with
purposes, names and dates) and its key commands check the chains, the
extended key usages, the SANs, the validity dates and that every key goes
with its certificate, and Python's `ssl` module does real handshakes on
127.0.0.1 with them: server name checked, mutual TLS accepted, an expired
or untrusted client refused, a server from the untrusted CA refused.  A
missing `openssl` fails, never skips (the Makefile's DEB_PACKAGES).  Each
handshake is bounded by a 5 s socket timeout.
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
from tests.tls_certs import CLIENT_CN, PASSWORD, Certs, make_certs, tool_env

OPENSSL = shutil.which("openssl")


def client_context(certs: Certs, cert: Path | None = None, key: Path | None = None,
                   ca: Path | None = None) -> ssl.SSLContext:
    """A client context that trusts only ca (default: the test CA), checks
    the host name, and presents (cert, key) when given."""
    ctx = ssl.create_default_context(cafile=str(ca or certs.ca))
    if cert is not None:
        ctx.load_cert_chain(str(cert), str(key))
    return ctx


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    assert OPENSSL, "the openssl command is missing (make deps installs Debian's openssl)"
    p = subprocess.run([OPENSSL, *args], capture_output=True, text=True, timeout=20,
                       env=tool_env())
    if check:
        assert p.returncode == 0, f"openssl {' '.join(args)}: {p.stdout}{p.stderr}"
    return p


def verify(ca: Path, cert: Path, *extra: str) -> subprocess.CompletedProcess:
    return openssl("verify", "-CAfile", str(ca), *extra, str(cert), check=False)


def pubkey(*args: str) -> str:
    return openssl(*args).stdout


def test_chains_and_purposes(certs):
    assert verify(certs.ca, certs.cert, "-purpose", "sslserver").returncode == 0
    assert verify(certs.ca, certs.client_cert, "-purpose", "sslclient").returncode == 0
    # Each leaf is for its side only (extended key usage).
    assert verify(certs.ca, certs.cert, "-purpose", "sslclient").returncode != 0
    assert verify(certs.ca, certs.client_cert, "-purpose", "sslserver").returncode != 0
    # The CAs are CAs (basicConstraints, keyUsage keyCertSign): -x509_strict
    # refuses a chain whose issuer is not one.
    for ca, leaf in ((certs.ca, certs.cert), (certs.rogue_ca, certs.rogue_server_cert)):
        assert verify(ca, leaf, "-x509_strict", "-purpose", "sslserver").returncode == 0, leaf
    # The chain file is the leaf, then the CA.
    chain = certs.chain.read_text()
    assert chain == certs.cert.read_text() + certs.ca.read_text()


def test_server_names(certs):
    sans = openssl("x509", "-in", str(certs.cert), "-noout", "-ext",
                   "subjectAltName").stdout
    names = {s.strip() for s in sans.splitlines()[1].split(",")}
    assert names == {"DNS:localhost", "IP Address:127.0.0.1", "IP Address:0:0:0:0:0:0:0:1"}, sans
    for opt in (("-verify_ip", "127.0.0.1"), ("-verify_ip", "::1"), ("-verify_hostname", "localhost")):
        assert verify(certs.ca, certs.cert, *opt).returncode == 0, opt
    for opt in (("-verify_ip", "127.0.0.2"), ("-verify_hostname", "example.com")):
        p = verify(certs.ca, certs.cert, *opt)
        assert p.returncode != 0 and "mismatch" in p.stdout + p.stderr, opt


def test_expired_client_is_expired(certs):
    # -checkend 0: exit 1 when the certificate is no longer valid now.
    assert openssl("x509", "-in", str(certs.expired_cert), "-noout", "-checkend", "0",
                   check=False).returncode == 1
    p = verify(certs.ca, certs.expired_cert)
    assert p.returncode != 0 and "certificate has expired" in p.stdout + p.stderr
    # Only the date is wrong: it verifies when time is not checked, and its
    # validity is the one day of 2020 it was signed for.
    assert verify(certs.ca, certs.expired_cert, "-no_check_time").returncode == 0
    dates = openssl("x509", "-in", str(certs.expired_cert), "-noout", "-startdate",
                    "-enddate").stdout.split()
    assert dates == ["notBefore=Jan", "1", "00:00:00", "2020", "GMT",
                     "notAfter=Jan", "2", "00:00:00", "2020", "GMT"], dates
    for good in (certs.ca, certs.rogue_ca, certs.cert, certs.client_cert, certs.rogue_cert,
                 certs.rogue_server_cert):
        assert openssl("x509", "-in", str(good), "-noout", "-checkend", "3600",
                       check=False).returncode == 0, good


def test_untrusted_client_has_another_ca(certs):
    p = verify(certs.ca, certs.rogue_cert)
    assert p.returncode != 0 and "unable to get local issuer certificate" in p.stdout + p.stderr
    assert verify(certs.rogue_ca, certs.rogue_cert, "-purpose", "sslclient").returncode == 0
    # The rogue server certificate: the server's names, the other CA.
    p = verify(certs.ca, certs.rogue_server_cert)
    assert p.returncode != 0 and "unable to get local issuer certificate" in p.stdout + p.stderr
    assert verify(certs.rogue_ca, certs.rogue_server_cert, "-purpose", "sslserver",
                  "-verify_hostname", "localhost").returncode == 0


def test_keys_match_and_encrypted_key(certs):
    cert_pub = pubkey("x509", "-in", str(certs.cert), "-noout", "-pubkey")
    assert pubkey("pkey", "-in", str(certs.key), "-pubout") == cert_pub
    assert pubkey("pkey", "-in", str(certs.other_key), "-pubout") != cert_pub
    for cert, key in ((certs.client_cert, certs.client_key),
                      (certs.expired_cert, certs.expired_key),
                      (certs.rogue_cert, certs.rogue_key),
                      (certs.rogue_server_cert, certs.rogue_server_key)):
        assert (pubkey("pkey", "-in", str(key), "-pubout")
                == pubkey("x509", "-in", str(cert), "-noout", "-pubkey")), key
    enc = certs.key_enc
    assert enc.read_text().startswith("-----BEGIN ENCRYPTED PRIVATE KEY-----")
    assert pubkey("pkey", "-in", str(enc), "-passin", f"pass:{PASSWORD}",
                  "-pubout") == cert_pub
    for wrong in ("pass:wrong", "pass:"):
        assert openssl("pkey", "-in", str(enc), "-passin", wrong, "-pubout",
                       check=False).returncode != 0, wrong


def test_private_keys_stay_out_of_the_repository(certs):
    assert ROOT not in certs.dir.resolve().parents
    for key in certs.dir.glob("*.key"):
        assert key.stat().st_mode & 0o077 == 0, key
    # No private key in the source tree either (walked rather than asked of
    # git: the 3.14 chroot gets a copy of the tree without .git).
    found = []
    for top in ("tests", "bench", "src", "scripts", "docs"):
        for path in (ROOT / top).rglob("*"):
            if path.suffix in (".key", ".pem") and path.is_file():
                if b"PRIVATE KEY-----" in path.read_bytes():
                    found.append(str(path))
    assert not found, found


def test_fresh_sets_differ(tmp_path, certs):
    # No fixed key or certificate hides in the maker: a second set is new.
    other = make_certs(tmp_path / "again")
    for name in ("ca", "cert", "key", "client_cert", "client_key", "rogue_ca"):
        assert getattr(other, name).read_bytes() != getattr(certs, name).read_bytes(), name


# -- real handshakes with Python's ssl --------------------------------------


def handshake(ca: Certs, client: ssl.SSLContext, server_hostname: str,
              require_client_cert: bool, server: tuple[Path, Path] | None = None) -> dict:
    """One handshake on 127.0.0.1, the server presenting `server` (default:
    the chain file and key); returns {"peer": the client cert the server
    saw, "error": the server side's error, "client_error": the client
    side's}, each only when there was one."""
    srv_ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    srv_ctx.load_cert_chain(*map(str, server or (ca.chain, ca.key)))
    if require_client_cert:
        srv_ctx.verify_mode = ssl.CERT_REQUIRED
        srv_ctx.load_verify_locations(str(ca.ca))
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


@pytest.mark.parametrize("name", ["localhost", "127.0.0.1", "::1"])
def test_handshake_checks_server_name(certs, name):
    out = handshake(certs, client_context(certs), name, require_client_cert=False)
    assert out == {"peer": None}, out


def test_handshake_wrong_name_or_ca_fails(certs):
    out = handshake(certs, client_context(certs), "example.com", require_client_cert=False)
    err = out.get("client_error")
    assert isinstance(err, ssl.SSLCertVerificationError) and "mismatch" in str(err), out
    other = ssl.create_default_context(cafile=str(certs.rogue_ca))
    out = handshake(certs, other, "localhost", require_client_cert=False)
    err = out.get("client_error")
    assert isinstance(err, ssl.SSLCertVerificationError), out
    # The server sends its chain: the client finds a root it does not trust.
    assert "self-signed certificate in certificate chain" in str(err), out
    # The server's names, but from the rogue CA: refused by a client of the
    # test CA, accepted by one of the rogue CA.
    rogue = (certs.rogue_server_cert, certs.rogue_server_key)
    out = handshake(certs, client_context(certs), "localhost", False, server=rogue)
    err = out.get("client_error")
    assert isinstance(err, ssl.SSLCertVerificationError), out
    assert "unable to get local issuer certificate" in str(err), out
    out = handshake(certs, client_context(certs, ca=certs.rogue_ca), "localhost", False,
                    server=rogue)
    assert out == {"peer": None}, out


def test_handshake_mutual_tls(certs):
    ok = client_context(certs, certs.client_cert, certs.client_key)
    out = handshake(certs, ok, "localhost", require_client_cert=True)
    assert set(out) == {"peer"}, out
    assert dict(x[0] for x in out["peer"]["subject"])["commonName"] == CLIENT_CN
    for cert, key, why in ((certs.expired_cert, certs.expired_key, "expired"),
                           (certs.rogue_cert, certs.rogue_key,
                            "unable to get local issuer")):
        out = handshake(certs, client_context(certs, cert, key), "localhost",
                        require_client_cert=True)
        err = out.get("error")
        assert isinstance(err, ssl.SSLCertVerificationError) and why in str(err), out
    # No certificate at all, where one is required.
    out = handshake(certs, client_context(certs), "localhost", require_client_cert=True)
    err = out.get("error")
    assert isinstance(err, ssl.SSLError) and "certificate" in str(err), out
