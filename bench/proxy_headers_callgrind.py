"""Instructions per plaintext request with and without proxy headers
(issue 12, item 1: "< 2 % with the headers present; zero with
--no-proxy-headers or without them").

    python3 bench/proxy_headers_callgrind.py [--venv .venv] [--venv /tmp/base/.venv] [-n 2000]

Each server runs bench.apps.plaintext under callgrind, as bench/run.py's
callgrind profile does: one run with only the warm-up requests, one with
warm-up + n; the difference divided by n is the cost of a request.  The
request carries no proxy header, or X-Forwarded-For + X-Forwarded-Proto
(what nginx sends), from 127.0.0.1 (trusted by default); each is measured
with the default settings and with --no-proxy-headers.  Several --venv
options compare builds (before / after a change) in one table.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import socket
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

HEADERS = {
    "none": b"",
    "xff": b"X-Forwarded-For: 203.0.113.7\r\nX-Forwarded-Proto: https\r\n",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def client(port: int, n: int, extra: bytes) -> None:
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n" + extra + b"\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        buf = b""
        for _ in range(n):
            s.sendall(req)
            while b"\r\n\r\n" not in buf:
                buf += s.recv(65536)
            head, _, buf = buf.partition(b"\r\n\r\n")
            assert head.startswith(b"HTTP/1.1 200"), head
            need = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
            while len(buf) < need:
                buf += s.recv(65536)
            buf = buf[need:]


def callgrind_server(venv: str, args: list[str], outdir: str, tag: str, drive,
                     app: str = "bench.apps.plaintext:app", env: dict | None = None,
                     wrap: tuple[str, ...] = (), guest_outdir: str | None = None) -> int:
    """Run `pounce APP --host 127.0.0.1 --port P ARGS` from venv under
    callgrind (every process, profiles ``outdir/cg.<tag>.<pid>``), call
    drive(P) once it accepts connections, stop it, and return the
    instructions of all its processes.  wrap: a command the server runs
    under (a chroot, where venv and guest_outdir are paths inside it and
    outdir is guest_outdir seen from the host)."""
    port = free_port()
    cmd = [*wrap, "valgrind", "--tool=callgrind", "--trace-children=yes",
           f"--callgrind-out-file={guest_outdir or outdir}/cg.{tag}.%p", "--dump-instr=no",
           "--dump-line=no",
           os.path.join(venv, "bin", "pounce"), app, "--host", "127.0.0.1",
           "--port", str(port), *args]
    proc = subprocess.Popen(cmd, cwd=REPO, env=dict(os.environ, PYTHONHASHSEED="0", **(env or {})),
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 300
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                if time.monotonic() > deadline or proc.poll() is not None:
                    raise SystemExit(f"server did not start: {cmd}")
                time.sleep(0.2)
        drive(port)
    finally:
        proc.terminate()
        proc.wait(300)
    out = 0
    for path in glob.glob(f"{outdir}/cg.{tag}.*"):
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    out += int(line.split()[1])
                    break
    return out


def total(venv: str, args: list[str], extra: bytes, n: int, outdir: str, tag: str,
          app: str = "bench.apps.plaintext:app", access_log: bool = False,
          wrap: tuple[str, ...] = (), guest_outdir: str | None = None) -> int:
    return callgrind_server(venv, ["--access-log" if access_log else "--no-access-log", *args],
                            outdir, tag, lambda port: client(port, n, extra), app=app, wrap=wrap,
                            guest_outdir=guest_outdir)


def self_cost_by_object(outdir: str, tag: str) -> dict[str, int]:
    """Self cost (Ir) per object file (its path as callgrind names it),
    summed over the profiles of one run (``cg.<tag>.*``): every line of cost
    counted under the ``ob=`` naming its object, except the inclusive cost
    that follows a ``calls=`` line.  Object names are given once, on an
    ``ob=`` or ``cob=`` line, then referred to by number."""
    out: dict[str, int] = {}
    for path in glob.glob(f"{outdir}/cg.{tag}.*"):
        names: dict[str, str] = {}
        ob, skip = "", False
        with open(path, errors="replace") as f:
            for line in f:
                m = re.match(r"(c?ob)=\((\d+)\)(?: (.*))?", line)
                if m:
                    if m.group(3):
                        names[m.group(2)] = m.group(3).strip()
                    if m.group(1) == "ob":
                        ob = names.get(m.group(2), "")
                elif line.startswith("calls="):
                    skip = True
                elif line[:1].isdigit() or line[:1] in "+-*":
                    if skip:
                        skip = False
                        continue
                    parts = line.split()
                    if len(parts) >= 2:
                        out[ob] = out.get(ob, 0) + int(parts[1])
    return out

def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    a = ap.parse_args()
    venvs = a.venv or [os.path.join(REPO, ".venv")]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-proxy-") as outdir:
        for vi, venv in enumerate(venvs):
            for hname, extra in HEADERS.items():
                for opts in ([], ["--no-proxy-headers"]):
                    tag = f"{vi}-{hname}-{len(opts)}"
                    base = total(venv, opts, extra, a.warmup, outdir, tag + "-b")
                    full = total(venv, opts, extra, a.warmup + a.n, outdir, tag + "-f")
                    per = (full - base) / a.n
                    rows.append((venv, hname, " ".join(opts) or "(default)", per))
                    print(f"{venv:40} headers={hname:5} {rows[-1][2]:20} {per:10,.0f} Ir/request",
                          flush=True)
    print()
    print("| build | headers | settings | Ir/request |")
    print("|---|---|---|---:|")
    for venv, h, o, per in rows:
        print(f"| {venv} | {h} | {o} | {per:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
