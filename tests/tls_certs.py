"""The test certificate authority, made with the openssl CLI at run time.

No key or certificate is committed: make_certs(dir) writes a fresh set into
a directory, and tests/server.py's shared_certs() makes one set per test
process, in a temporary directory removed at exit.  That one set serves
every user: the `certs` session fixture (tests/conftest.py) of
tests/test_tls.py, tests/test_tls_ca.py and tests/test_tls_browser.py, and
the POUNCE_TEST_TLS=1 mode of tests/server.py.

What a set holds, all PEM (see Certs):

  a test CA, and a second CA ("rogue") that nobody trusts;
  the server's certificate for localhost, 127.0.0.1 and ::1 (SANs, which is
  all browsers look at), serverAuth, signed by the CA; its key, the same
  key encrypted with PASSWORD (PKCS#8), and the chain file (leaf + CA);
  a server certificate for the same names signed by the rogue CA (a
  browser must refuse it);
  client certificates (clientAuth): one signed by the CA, one by the rogue
  CA, one signed by the CA but valid on 2020-01-01 only (expired);
  a key that matches no certificate.

Keys are ECDSA P-256 (fast to make; what most TLS deployments use now),
readable by their owner only.  The expired certificate needs `openssl ca`
with its database and config file: `req`/`x509 -days` take no date in the
past.  tests/test_tls_ca.py checks every file with the CLI's verify and
with real handshakes of Python's ssl module.

Runs in the pytest process only; nothing here is shared between threads.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Certs:
    dir: Path
    ca: Path  # the CA clients and the server trust
    cert: Path  # server certificate (localhost, 127.0.0.1, ::1), signed by ca
    key: Path
    chain: Path  # cert, then ca: a chain file as a server is given one
    key_enc: Path  # key, encrypted with PASSWORD (PKCS#8)
    other_key: Path  # a key that is not cert's
    client_cert: Path  # O=Pounce tests, CN=CLIENT_CN, signed by ca
    client_key: Path
    rogue_ca: Path  # a second CA that nobody trusts
    rogue_cert: Path  # CN=rogue-client, signed by rogue_ca
    rogue_key: Path
    rogue_server_cert: Path  # the server's names, signed by rogue_ca
    rogue_server_key: Path
    expired_cert: Path  # CN=expired-client, signed by ca, valid on 2020-01-01 only
    expired_key: Path

    def server_args(self, cert: Path | None = None, key: Path | None = None) -> tuple[str, ...]:
        """The Pounce (and uvicorn) options that serve cert/key (default: the
        server certificate signed by the test CA)."""
        return ("--ssl-certfile", str(cert or self.cert), "--ssl-keyfile", str(key or self.key))


PASSWORD = "s3cret-pass"
CLIENT_CN = "test-client"
#: The server certificates' names (subjectAltName).
SERVER_DNS = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")


def tool_env() -> dict[str, str]:
    """The environment for curl and the openssl CLI: without the sanitizer
    runtime `make asan` / `make tsan` preload (curl hangs with it)."""
    return {k: v for k, v in os.environ.items() if k != "LD_PRELOAD"}


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=30,
                   env=tool_env())


def _ca(d: Path, name: str) -> None:
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.pem", "-days", "3", "-subj", f"/CN=Pounce {name}",
        "-addext", "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign",
        cwd=d,
    )


def _leaf(d: Path, name: str, ca: str, subject: str, ext: str) -> None:
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
        "-keyout", f"{name}.key", "-out", f"{name}.csr", "-subj", subject, cwd=d,
    )
    (d / f"{name}.ext").write_text(ext)
    _openssl(
        "x509", "-req", "-in", f"{name}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-out", f"{name}.pem", "-days", "2", "-extfile", f"{name}.ext", cwd=d,
    )


SERVER_EXT = ("subjectAltName=" + ",".join([f"DNS:{n}" for n in SERVER_DNS]
                                            + [f"IP:{ip}" for ip in SERVER_IPS])
              + "\nextendedKeyUsage=serverAuth\n")
CLIENT_EXT = "extendedKeyUsage=clientAuth\n"


def make_certs(d: Path) -> Certs:
    """Every file of Certs, written into the directory d (created if missing)."""
    d = Path(d)
    d.mkdir(parents=True, exist_ok=True)
    _ca(d, "ca")
    _ca(d, "rogue-ca")
    _leaf(d, "server", "ca", "/CN=localhost", SERVER_EXT)
    _leaf(d, "rogue-server", "rogue-ca", "/CN=localhost", SERVER_EXT)
    _leaf(d, "client", "ca", f"/O=Pounce tests/CN={CLIENT_CN}", CLIENT_EXT)
    _leaf(d, "rogue", "rogue-ca", "/CN=rogue-client", CLIENT_EXT)
    # An expired client certificate: `openssl ca` takes explicit dates.
    _openssl("req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes",
             "-keyout", "expired.key", "-out", "expired.csr", "-subj", "/CN=expired-client", cwd=d)
    (d / "index.txt").write_text("")
    (d / "serial").write_text("1000\n")
    (d / "ca.cnf").write_text(
        "[ca]\ndefault_ca = test\n[test]\ndatabase = index.txt\nnew_certs_dir = .\n"
        "serial = serial\ndefault_md = sha256\npolicy = any\n[any]\ncommonName = supplied\n"
    )
    _openssl("ca", "-batch", "-config", "ca.cnf", "-cert", "ca.pem", "-keyfile", "ca.key",
             "-in", "expired.csr", "-out", "expired.pem", "-notext",
             "-startdate", "20200101000000Z", "-enddate", "20200102000000Z", cwd=d)
    _openssl("pkey", "-in", "server.key", "-aes256", "-passout", f"pass:{PASSWORD}",
             "-out", "server-enc.key", cwd=d)
    _openssl("genpkey", "-algorithm", "ec", "-pkeyopt", "ec_paramgen_curve:P-256",
             "-out", "other.key", cwd=d)
    (d / "server-chain.pem").write_text((d / "server.pem").read_text() + (d / "ca.pem").read_text())
    for key in d.glob("*.key"):
        key.chmod(0o600)
    return Certs(
        dir=d, ca=d / "ca.pem", cert=d / "server.pem", key=d / "server.key",
        chain=d / "server-chain.pem", key_enc=d / "server-enc.key", other_key=d / "other.key",
        client_cert=d / "client.pem", client_key=d / "client.key", rogue_ca=d / "rogue-ca.pem",
        rogue_cert=d / "rogue.pem", rogue_key=d / "rogue.key",
        rogue_server_cert=d / "rogue-server.pem", rogue_server_key=d / "rogue-server.key",
        expired_cert=d / "expired.pem", expired_key=d / "expired.key",
    )

