"""Instructions the server spends per TLS keep-alive request, per full
handshake and per resumed handshake (issue 14's performance work).

    python3 bench/tls_callgrind.py [--venv .venv] [--venv /tmp/base/.venv] [-n 1000] [--handshakes 150]

Same method as bench/metrics_callgrind.py (whole server under callgrind,
counts of one run minus those of a shorter one), with a TLS client of
Python's ssl module outside valgrind.  Each build's server runs four times,
each run doing the phases of the previous one plus one more:

  0. warm-up: a few connections of every kind (full, resumed, keep-alive);
  1. + one TLS keep-alive connection with n plaintext requests;
  2. + h new connections, each a FULL handshake (no session offered) and one
     request with `Connection: close`;
  3. + h new connections, each RESUMING the previous connection's session
     (TLS 1.3 ticket) with one request and `Connection: close`.

Run k minus run k-1, divided by its count, is the server's cost of one
keep-alive request, one full handshake + request + close, one resumed
handshake + request + close.  The cost is broken down by object (libcrypto,
libssl, libc, libpython, the _pounce extension, kernel-side work is not
counted by callgrind).  The certificate is a fresh self-signed P-256 one
(what `make bench-tls` uses by default); the client offers X25519 first,
as wrk, ab and browsers do.  --outdir keeps the profiles for
callgrind_annotate (e.g. `callgrind_annotate --inclusive=yes FILE`).
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import ssl
import subprocess
import sys
import tempfile
from collections import defaultdict

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, callgrind_server, self_cost_by_object  # noqa: E402

REQ = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n"


def make_cert(d: str, kind: str) -> tuple[str, str]:
    cert, key = os.path.join(d, "cert.pem"), os.path.join(d, "key.pem")
    newkey = {"p256": ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256"],
              "rsa2048": ["-newkey", "rsa:2048"]}[kind]
    subprocess.run(["openssl", "req", "-x509", *newkey, "-sha256", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-addext",
                    "subjectAltName=IP:127.0.0.1,DNS:localhost", "-keyout", key, "-out", cert],
                   check=True, capture_output=True, timeout=60)
    return cert, key


def read_response(s: ssl.SSLSocket, buf: bytes) -> bytes:
    while b"\r\n\r\n" not in buf:
        chunk = s.recv(65536)
        if not chunk:
            raise SystemExit("server closed the connection")
        buf += chunk
    head, _, buf = buf.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    need = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
    while len(buf) < need:
        buf += s.recv(65536)
    return buf[need:]


def keepalive(ctx: ssl.SSLContext, port: int, n: int) -> None:
    with socket.create_connection(("127.0.0.1", port), timeout=300) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost") as s:
            buf = b""
            for _ in range(n):
                s.sendall(REQ + b"\r\n")
                buf = read_response(s, buf)


def one_conn(ctx: ssl.SSLContext, port: int, session: ssl.SSLSession | None):
    """One connection, one request with Connection: close; its session."""
    with socket.create_connection(("127.0.0.1", port), timeout=300) as raw:
        with ctx.wrap_socket(raw, server_hostname="localhost", session=session) as s:
            s.sendall(REQ + b"Connection: close\r\n\r\n")
            read_response(s, b"")
            if session is not None and not s.session_reused:
                raise SystemExit("the server did not resume the session")
            while s.recv(65536):  # to the server's close_notify / EOF
                pass
            return s.session


def handshakes(ctx: ssl.SSLContext, port: int, n: int, resume: bool) -> None:
    session = one_conn(ctx, port, None) if resume else None
    for _ in range(n):
        got = one_conn(ctx, port, session)
        if resume:
            session = got


def run_server(venv: str, cert: str, key: str, phases: list[tuple[str, int]], outdir: str,
               tag: str, extra: list[str]) -> None:
    ctx = ssl.create_default_context()
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE

    def drive(port: int) -> None:
        for kind, n in phases:
            if kind == "keepalive":
                keepalive(ctx, port, n)
            else:
                handshakes(ctx, port, n, resume=kind == "resumed")

    callgrind_server(venv, ["--no-access-log", "--ssl-certfile", cert, "--ssl-keyfile", key, *extra],
                     outdir, tag, drive)


def by_object(outdir: str, tag: str) -> dict[str, int]:
    """Self cost (Ir) per object file, summed over the profiles of one run."""
    out: dict[str, int] = defaultdict(int)
    for ob, ir in self_cost_by_object(outdir, tag).items():
        out[short(ob)] += ir
    return out


def short(ob: str) -> str:
    base = os.path.basename(ob)
    for key in ("libcrypto", "libssl", "libc.so", "libpython", "_pounce", "ld-linux"):
        if key in base:
            return "libc" if key == "libc.so" else key
    if base.startswith("python"):
        return "libpython"  # a statically linked interpreter
    return "other"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("-n", type=int, default=1000, help="keep-alive requests")
    ap.add_argument("--handshakes", type=int, default=150, help="connections per handshake kind")
    ap.add_argument("--key", choices=("p256", "rsa2048"), default="p256")
    ap.add_argument("--outdir", help="keep the callgrind profiles here")
    ap.add_argument("--server-arg", action="append", default=[],
                    help="an extra option for pounce (repeatable)")
    a = ap.parse_args()
    venvs = a.venv or [os.path.join(REPO, ".venv")]
    warm = [("full", 10), ("resumed", 10), ("keepalive", 50)]
    steps = [("keepalive", a.n), ("full", a.handshakes), ("resumed", a.handshakes)]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-tls-") as tmp:
        outdir = a.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        cert, key = make_cert(tmp, a.key)
        for vi, venv in enumerate(venvs):
            prev = None
            for k in range(len(steps) + 1):
                tag = f"{vi}-{k}"
                run_server(venv, cert, key, warm + steps[:k], outdir, tag, a.server_arg)
                cur = by_object(outdir, tag)
                if prev is not None:
                    kind, n = steps[k - 1]
                    per = {ob: (cur.get(ob, 0) - prev.get(ob, 0)) / n
                           for ob in set(cur) | set(prev)}
                    tot = sum(per.values())
                    rows.append((venv, kind, tot, per))
                    parts = ", ".join(f"{ob} {v:,.0f}" for ob, v in
                                      sorted(per.items(), key=lambda kv: -kv[1]) if abs(v) >= 50)
                    print(f"{venv:30} {kind:10} {tot:12,.0f} Ir ({parts})", flush=True)
                prev = cur
    print()
    obs = ["libcrypto", "libssl", "libc", "libpython", "_pounce"]
    print("| build | per | Ir | " + " | ".join(obs) + " | other |")
    print("|---|---|---:|" + "---:|" * (len(obs) + 1))
    label = {"keepalive": "keep-alive request", "full": "full handshake + request",
             "resumed": "resumed handshake + request"}
    for venv, kind, tot, per in rows:
        rest = tot - sum(per.get(ob, 0) for ob in obs)
        print(f"| {venv} | {label[kind]} | {tot:,.0f} | "
              + " | ".join(f"{per.get(ob, 0):,.0f}" for ob in obs) + f" | {rest:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
