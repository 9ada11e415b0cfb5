#!/usr/bin/env python3
"""Memory of the whole server process tree for 1, 2, 4, 8 workers in thread
and process mode (the hello app, after a short warm-up load).

    .venv/bin/python scripts/measure_workers.py [--loop asyncio] [--counts 1,2,4,8]

RSS counts shared pages once per process (so it overstates process mode);
PSS splits shared pages between the processes that map them and adds up to
what the tree really costs.  Both are read from /proc, for the supervisor
and every worker.  Prints a Markdown table (docs/workers.md has the last one).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import socket
import subprocess
import sys
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tree(pid: int) -> list[int]:
    out = [pid]
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                for c in f.read().split():
                    out += tree(int(c))
    except FileNotFoundError:
        pass
    return out


def memory(pid: int) -> tuple[float, float]:
    """(RSS MiB, PSS MiB) of the process tree."""
    rss = pss = 0
    for p in tree(pid):
        try:
            with open(f"/proc/{p}/smaps_rollup") as f:
                for line in f:
                    if line.startswith("Rss:"):
                        rss += int(line.split()[1])
                    elif line.startswith("Pss:"):
                        pss += int(line.split()[1])
        except FileNotFoundError:
            pass
    return rss / 1024, pss / 1024


def load(port: int, requests: int) -> None:
    s = socket.create_connection(("127.0.0.1", port))
    req = b"GET / HTTP/1.1\r\nHost: x\r\n\r\n"
    for _ in range(requests):
        s.sendall(req)
        data = b""
        while not data.endswith(b"Hello, world!"):
            chunk = s.recv(4096)
            if not chunk:
                raise RuntimeError("server closed the connection")
            data += chunk
    s.close()


def measure(python: str, mode: str, n: int, loop: str) -> tuple[float, float]:
    cmd = [python, "-m", "pounce", "examples.hello:app", "--port", "0", "--workers", str(n),
           "--worker-mode", mode, "--no-access-log", "--loop", loop]
    p = subprocess.Popen(cmd, cwd=REPO, stderr=subprocess.PIPE, text=True)
    try:
        port = None
        deadline = time.monotonic() + 30
        assert p.stderr is not None
        while time.monotonic() < deadline:
            line = p.stderr.readline()
            if not line:
                break
            m = re.search(r"Listening on http://[\d.]+:(\d+)", line)
            if m:
                port = int(m.group(1))
                break
        if port is None:
            raise RuntimeError(f"{' '.join(cmd)} did not start")
        for _ in range(4 * n):  # several connections, so every worker serves some
            load(port, 200)
        time.sleep(0.3)
        return memory(p.pid)
    finally:
        p.send_signal(signal.SIGTERM)
        try:
            p.wait(20)
        except subprocess.TimeoutExpired:
            p.kill()


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--python", default=sys.executable)
    ap.add_argument("--loop", default="asyncio", choices=["asyncio", "uvloop", "auto"])
    ap.add_argument("--counts", default="1,2,4,8")
    args = ap.parse_args()
    counts = [int(x) for x in args.counts.split(",")]
    ver = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"],
                         capture_output=True, text=True).stdout.strip()
    print(f"CPython {ver}, --loop {args.loop}, hello app after a warm-up load\n")
    print("| workers | thread RSS | thread PSS | process RSS | process PSS |")
    print("|---:|---:|---:|---:|---:|")
    for n in counts:
        t = measure(args.python, "thread", n, args.loop)
        pr = measure(args.python, "process", n, args.loop)
        print(f"| {n} | {t[0]:.1f} MiB | {t[1]:.1f} MiB | {pr[0]:.1f} MiB | {pr[1]:.1f} MiB |",
              flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
