"""A test certificate authority, made by the tests at run time (issue 14).

No private key is ever committed: `make_test_ca(directory)` writes a fresh
set into a temporary directory, and the `tls_ca` fixture (session scope)
does that once per pytest run.  What it makes, all PEM files:

  ca_cert / ca_key                the trusted test CA
  server_cert / server_key        leaf for 127.0.0.1, ::1 and localhost (SANs),
                                  serverAuth; server_chain = leaf + CA
  server_key_encrypted            the same key, PKCS#8 encrypted with
                                  server_key_password
  mismatched_key                  a key that belongs to no certificate (for
                                  "key does not match the certificate")
  client_cert / client_key        clientAuth leaf, CN "pounce-test-client",
                                  signed by the CA: mutual TLS accepted
  expired_client_cert / _key      signed by the CA, validity ended a day ago
  untrusted_client_cert / _key    signed by other_ca_cert, which nobody trusts
  other_ca_cert                   that second CA

Why the `cryptography` package and not the `openssl` command: the CLI of
Debian 12's OpenSSL 3.0 refuses a validity in the past (`req`/`x509 -days`
must be positive; only `openssl ca` with its database and config file takes
a start and end date), and the expired client certificate needs one.  In
Python every field is explicit, and nothing is parsed from a config file.
The certificates are still checked with the independent `openssl` CLI in
tests/test_tls_ca.py, and the CLI is what clients such as curl and
`openssl s_client` use against them.

Keys are ECDSA P-256: fast to make (the whole set takes milliseconds) and
the key type most TLS deployments now use.

To use it from a test module, import the fixture (pytest finds fixtures in
a module's namespace):

    from tests.tls_ca import tls_ca  # noqa: F401  (fixture)

    def test_x(tls_ca, server_factory):
        srv = server_factory(APP, "--ssl-certfile", str(tls_ca.server_cert),
                             "--ssl-keyfile", str(tls_ca.server_key))
        ctx = tls_ca.client_context()          # trusts the test CA

Runs in the pytest process only; nothing here is shared between threads.
"""

from __future__ import annotations

import base64
import datetime
import hashlib
import ipaddress
import ssl
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

#: The names every server certificate is made for.
SERVER_DNS_NAMES = ("localhost",)
SERVER_IPS = ("127.0.0.1", "::1")
CLIENT_CN = "pounce-test-client"
SERVER_KEY_PASSWORD = "pounce-test-password"


@dataclass(frozen=True)
class TestCA:
    """Paths of one generated set (see the module docstring)."""

    __test__ = False  # not a test class, despite the name

    dir: Path
    ca_cert: Path
    ca_key: Path
    other_ca_cert: Path
    server_cert: Path
    server_key: Path
    server_chain: Path
    server_key_encrypted: Path
    server_key_password: str
    mismatched_key: Path
    client_cert: Path
    client_key: Path
    expired_client_cert: Path
    expired_client_key: Path
    untrusted_client_cert: Path
    untrusted_client_key: Path

    def server_spki_sha256(self) -> str:
        """base64 SHA-256 of the server key's SubjectPublicKeyInfo (what
        Chromium's --ignore-certificate-errors-spki-list and HPKP pins use)."""
        return spki_sha256(self.server_cert)

    def client_context(self, cert: Path | None = None, key: Path | None = None) -> ssl.SSLContext:
        """A client context that trusts only the test CA, checks the host
        name, and presents (cert, key) when given."""
        ctx = ssl.create_default_context(cafile=str(self.ca_cert))
        if cert is not None:
            ctx.load_cert_chain(str(cert), str(key) if key is not None else None)
        return ctx

    def server_args(self) -> tuple[str, ...]:
        """The Pounce (and uvicorn) options that serve the test server cert."""
        return ("--ssl-certfile", str(self.server_cert), "--ssl-keyfile", str(self.server_key))


def spki_sha256(cert_pem: Path) -> str:
    cert = x509.load_pem_x509_certificate(cert_pem.read_bytes())
    der = cert.public_key().public_bytes(serialization.Encoding.DER,
                                         serialization.PublicFormat.SubjectPublicKeyInfo)
    return base64.b64encode(hashlib.sha256(der).digest()).decode()


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Pounce tests"),
                      x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _ca(cn: str, now: datetime.datetime) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    cert = (x509.CertificateBuilder()
            .subject_name(_name(cn)).issuer_name(_name(cn))
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                         content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False,
                                         encipher_only=False, decipher_only=False), critical=True)
            .add_extension(ski, critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def _leaf(cn: str, ca: x509.Certificate, ca_key: ec.EllipticCurvePrivateKey, *,
          server: bool, not_before: datetime.datetime, not_after: datetime.datetime,
          ) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = _key()
    usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
    b = (x509.CertificateBuilder()
         .subject_name(_name(cn)).issuer_name(ca.subject)
         .public_key(key.public_key()).serial_number(x509.random_serial_number())
         .not_valid_before(not_before).not_valid_after(not_after)
         .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
         .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False, crl_sign=False,
                                      content_commitment=False, key_encipherment=False,
                                      data_encipherment=False, key_agreement=False,
                                      encipher_only=False, decipher_only=False), critical=True)
         .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
         .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
         .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                        critical=False))
    if server:
        # RFC 6125 / the CA/B baseline: browsers look only at the SANs, never the CN.
        sans = [x509.DNSName(n) for n in SERVER_DNS_NAMES]
        sans += [x509.IPAddress(ipaddress.ip_address(ip)) for ip in SERVER_IPS]
        b = b.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    return b.sign(ca_key, hashes.SHA256()), key


def _pem_cert(cert: x509.Certificate) -> bytes:
    return cert.public_bytes(serialization.Encoding.PEM)


def _pem_key(key: ec.EllipticCurvePrivateKey, password: str | None = None) -> bytes:
    enc = (serialization.BestAvailableEncryption(password.encode()) if password
           else serialization.NoEncryption())
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, enc)


def make_test_ca(directory: Path) -> TestCA:
    """Write a fresh CA and its certificates into `directory` (created if
    missing); the private keys are readable by their owner only."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    now = datetime.datetime.now(datetime.timezone.utc)
    day = datetime.timedelta(days=1)
    ca, ca_key = _ca("Pounce test CA", now)
    other, other_key = _ca("Pounce untrusted CA", now)
    server, server_key = _leaf("localhost", ca, ca_key, server=True,
                               not_before=now - day, not_after=now + 7 * day)
    client, client_key = _leaf(CLIENT_CN, ca, ca_key, server=False,
                               not_before=now - day, not_after=now + 7 * day)
    expired, expired_key = _leaf("pounce-expired-client", ca, ca_key, server=False,
                                 not_before=now - 10 * day, not_after=now - day)
    untrusted, untrusted_key = _leaf("pounce-untrusted-client", other, other_key, server=False,
                                     not_before=now - day, not_after=now + 7 * day)

    def write(name: str, data: bytes, secret: bool = False) -> Path:
        path = directory / name
        path.write_bytes(data)
        if secret:
            path.chmod(0o600)
        return path

    return TestCA(
        dir=directory,
        ca_cert=write("ca.pem", _pem_cert(ca)),
        ca_key=write("ca.key", _pem_key(ca_key), secret=True),
        other_ca_cert=write("other-ca.pem", _pem_cert(other)),
        server_cert=write("server.pem", _pem_cert(server)),
        server_key=write("server.key", _pem_key(server_key), secret=True),
        server_chain=write("server-chain.pem", _pem_cert(server) + _pem_cert(ca)),
        server_key_encrypted=write("server-encrypted.key",
                                   _pem_key(server_key, SERVER_KEY_PASSWORD), secret=True),
        server_key_password=SERVER_KEY_PASSWORD,
        mismatched_key=write("mismatched.key", _pem_key(_key()), secret=True),
        client_cert=write("client.pem", _pem_cert(client)),
        client_key=write("client.key", _pem_key(client_key), secret=True),
        expired_client_cert=write("expired-client.pem", _pem_cert(expired)),
        expired_client_key=write("expired-client.key", _pem_key(expired_key), secret=True),
        untrusted_client_cert=write("untrusted-client.pem", _pem_cert(untrusted)),
        untrusted_client_key=write("untrusted-client.key", _pem_key(untrusted_key), secret=True),
    )


@pytest.fixture(scope="session")
def tls_ca(tmp_path_factory) -> TestCA:
    """One test CA per pytest run, in a temporary directory."""
    return make_test_ca(tmp_path_factory.mktemp("tls-ca"))
