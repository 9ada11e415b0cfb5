"""Server memory per idle TLS keep-alive connection (issue 14).

    python3 bench/tls_idle_rss.py [--venv .venv] [-n 1000] [--before-request]

Starts pounce (bench.apps.plaintext, one worker, TLS with a fresh P-256
certificate), opens n TLS connections from this process (Python's ssl),
makes one request on each (or none with --before-request: the connection
then waits for its first request) and leaves them open; the server's RSS
(summed over its processes, from /proc) with the n idle connections minus
its RSS before them, divided by n, is the memory of one idle connection.
"""

from __future__ import annotations

import argparse
import os
import resource
import socket
import ssl
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, free_port  # noqa: E402
from bench.tls_callgrind import REQ, make_cert, read_response  # noqa: E402


def tree_rss_kib(pid: int) -> int:
    """VmRSS of pid and its descendants, KiB."""
    children: dict[int, list[int]] = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    ppid = int(f.read().rsplit(")", 1)[1].split()[1])
            except OSError:
                continue
            children.setdefault(ppid, []).append(int(d))
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        todo += children.get(p, [])
        try:
            with open(f"/proc/{p}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        total += int(line.split()[1])
        except OSError:
            pass
    return total


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default=os.path.join(REPO, ".venv"))
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--before-request", action="store_true",
                    help="leave each connection before its first request")
    a = ap.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 2 * a.n + 100)), hard))
    with tempfile.TemporaryDirectory(prefix="tls-rss-") as tmp:
        cert, key = make_cert(tmp, "p256")
        port = free_port()
        cmd = [os.path.join(a.venv, "bin", "pounce"), "bench.apps.plaintext:app",
               "--host", "127.0.0.1", "--port", str(port), "--no-access-log",
               "--ssl-certfile", cert, "--ssl-keyfile", key, "--keep-alive-timeout", "300",
               "--backlog", str(2 * a.n)]
        proc = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                preexec_fn=lambda: resource.setrlimit(
                                    resource.RLIMIT_NOFILE, (min(hard, 2 * a.n + 100), hard)))
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        conns = []
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    if time.monotonic() > deadline or proc.poll() is not None:
                        raise SystemExit(f"server did not start: {cmd}")
                    time.sleep(0.1)
            for _ in range(20):  # warm-up: the allocator's arenas, Python's caches
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port)))
                s.sendall(REQ + b"\r\n")
                read_response(s, b"")
                s.close()
            time.sleep(0.5)
            before = tree_rss_kib(proc.pid)
            for _ in range(a.n):
                s = ctx.wrap_socket(socket.create_connection(("127.0.0.1", port), timeout=30))
                if not a.before_request:
                    s.sendall(REQ + b"\r\n")
                    read_response(s, b"")
                conns.append(s)
            time.sleep(1.0)
            after = tree_rss_kib(proc.pid)
        finally:
            for s in conns:
                s.close()
            proc.terminate()
            proc.wait(30)
    state = "before their first request" if a.before_request else "after one request"
    print(f"{a.n} idle TLS connections ({state}): server RSS {before:,} -> {after:,} KiB, "
          f"{(after - before) / a.n:.1f} KiB per connection")


if __name__ == "__main__":
    sys.exit(main())
