"""Test certificates for TLS, made with the openssl CLI (no fixture files).

make_certs(dir) writes a test CA, a server certificate for 127.0.0.1 and
localhost signed by it, client certificates (one signed by the CA, one by a
CA the server does not trust, one expired), the server key encrypted with
PASSWORD, and a key that matches nothing.  tests/test_tls.py makes them
once per session; tests/server.py's TLS mode (POUNCE_TEST_TLS=1) once per
test process.
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
    cert: Path  # server certificate (127.0.0.1, localhost), signed by ca
    key: Path
    key_enc: Path  # key, encrypted with PASSWORD
    other_key: Path  # a key that is not cert's
    client_cert: Path  # CN=test-client, signed by ca
    client_key: Path
    rogue_cert: Path  # CN=rogue-client, signed by a CA the server does not trust
    rogue_key: Path
    expired_cert: Path  # CN=expired-client, signed by ca, valid in 2020 only
    expired_key: Path


PASSWORD = "s3cret-pass"


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


def make_certs(d: Path) -> Certs:
    """Every file of Certs, written into the directory d."""
    _ca(d, "ca")
    _ca(d, "rogue-ca")
    _leaf(d, "server", "ca", "/CN=localhost",
          "subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth\n")
    _leaf(d, "client", "ca", "/O=Pounce tests/CN=test-client", "extendedKeyUsage=clientAuth\n")
    _leaf(d, "rogue", "rogue-ca", "/CN=rogue-client", "extendedKeyUsage=clientAuth\n")
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
    return Certs(d, d / "ca.pem", d / "server.pem", d / "server.key", d / "server-enc.key",
                 d / "other.key", d / "client.pem", d / "client.key", d / "rogue.pem",
                 d / "rogue.key", d / "expired.pem", d / "expired.key")
