"""Instructions per keep-alive request over TLS (server side, every process
of the server, callgrind), for comparing builds or settings of the TLS
write path, e.g. Pounce's own socket BIO against OpenSSL's (the kTLS path).

    python3 bench/tls_bio_callgrind.py [--venv .venv ...] [--env NAME=VALUE] [-n 2000]

Same method as bench/metrics_callgrind.py: each server runs
bench.apps.plaintext under callgrind, once with the warm-up requests only
and once with warm-up + n, on one keep-alive TLS 1.3 connection (Python's
ssl module as the client, outside valgrind); the difference divided by n is
the cost of one request.  The last column is the _pounce extension's own
code; OpenSSL's share is the libssl and libcrypto objects.
"""

from __future__ import annotations

import argparse
import os
import re
import socket
import ssl
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, callgrind_server, self_cost_by_object  # noqa: E402
from tests.tls_certs import make_certs  # noqa: E402

REQUEST = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"


def client(port: int, n: int, ca: Path) -> None:
    ctx = ssl.create_default_context(cafile=str(ca))
    raw = socket.create_connection(("127.0.0.1", port), timeout=120)
    s = ctx.wrap_socket(raw, server_hostname="127.0.0.1")
    buf = b""
    for _ in range(n):
        s.sendall(REQUEST)
        while True:
            head, sep, rest = buf.partition(b"\r\n\r\n")
            m = re.search(rb"(?i)content-length: *(\d+)", head) if sep else None
            if m and len(rest) >= int(m.group(1)):
                buf = rest[int(m.group(1)):]
                break
            data = s.recv(65536)
            if not data:
                raise SystemExit("closed")
            buf += data
    s.close()


def objects_cost(outdir: str, tag: str) -> dict[str, int]:
    """Self cost (Ir) per object (_pounce, libssl, libcrypto) of one run."""
    out = {"_pounce": 0, "libssl": 0, "libcrypto": 0}
    for ob, ir in self_cost_by_object(outdir, tag).items():
        for k in out:
            if k in ob:
                out[k] += ir
    return out


def total(venv: str, env: dict, n: int, outdir: str, tag: str, certs) -> tuple[int, dict]:
    args = ["--no-access-log", "--ssl-certfile", str(certs.cert), "--ssl-keyfile", str(certs.key)]
    out = callgrind_server(venv, args, outdir, tag, lambda port: client(port, n, certs.ca), env=env)
    return out, objects_cost(outdir, tag)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("--env", action="append", default=[],
                    help="NAME=VALUE for the server; each is measured beside none")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    a = ap.parse_args()
    venvs = a.venv or [os.path.join(REPO, ".venv")]
    envs = [{}] + [dict([e.split("=", 1)]) for e in a.env]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-tls-") as outdir:
        (Path(outdir) / "certs").mkdir()
        certs = make_certs(Path(outdir) / "certs")
        for vi, venv in enumerate(venvs):
            for ei, env in enumerate(envs):
                tag = f"{vi}-{ei}"
                b, bo = total(venv, env, a.warmup, outdir, tag + "-b", certs)
                f, fo = total(venv, env, a.warmup + a.n, outdir, tag + "-f", certs)
                per = {k: (fo[k] - bo[k]) / a.n for k in fo}
                rows.append((venv, env, (f - b) / a.n, per))
                print(f"{venv:30} {env!s:24} {(f - b) / a.n:10,.0f} Ir/request "
                      + " ".join(f"{k} {v:,.0f}" for k, v in per.items()), flush=True)
    print()
    print("| build | env | Ir/request | _pounce | libssl | libcrypto |")
    print("|---|---|---:|---:|---:|---:|")
    for venv, env, per, objs in rows:
        print(f"| {venv} | {env or '-'} | {per:,.0f} | {objs['_pounce']:,.0f} | "
              f"{objs['libssl']:,.0f} | {objs['libcrypto']:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
