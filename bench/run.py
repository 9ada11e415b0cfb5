#!/usr/bin/env python3
"""Benchmark Pounce against peer ASGI servers on the same machine, same run.

    make bench                                   # pounce + uvicorn, both apps
    make bench BENCH_ARGS="--servers uvicorn"    # harness check without pounce
    make bench-callgrind                         # instructions per request

Throughput method (wrk): each server runs one worker pinned to CPU 1
(`taskset -c 1`), wrk runs pinned to CPU 0, keep-alive, `-t1 -c64`.  Each
measurement starts a fresh server, waits for a 200 answer, warms up, then
runs wrk once.  Rounds are interleaved (A B A B A B) so that drift of the
machine (thermal, noisy neighbours) hits every server alike; we report the
median and the spread (min..max) over rounds.  Server CPU per request is the
utime+stime of the server's process tree (from /proc/PID/stat, children
included) over the run, divided by the requests wrk reports.

Callgrind method: the server runs under `valgrind --tool=callgrind`; a small
client sends W warm-up requests and then N measured requests on one
keep-alive connection.  A second run sends only the warm-up; the difference
of the total instruction counts divided by N is the cost of one request,
with start-up, import and shutdown cancelled out.

Results: bench/results/<date>-<kind>.json (every raw measurement) and .md
(the table, also printed).  Only the standard library is used here; the peer
servers live in their own pinned venv, .venv-bench.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import hashlib
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
BENCH_VENV = os.path.join(REPO, ".venv-bench")
PEERS_REQ = os.path.join(REPO, "bench", "requirements-peers.txt")
RESULTS = os.path.join(REPO, "bench", "results")

# Expected body length per app: the readiness probe checks it, so a server
# that answers the wrong thing fails before it is measured.
APPS = {"plaintext": 13, "body10k": 10240}
SERVER_CPU = "1"
CLIENT_CPU = "0"


class BenchError(Exception):
    """A failure that should stop the run with a clear message."""


def log(msg: str) -> None:
    print(msg, file=sys.stderr, flush=True)


# --------------------------------------------------------------------------
# Servers


def server_cmd(name: str, app: str, port: int) -> list[str]:
    target = f"bench.apps.{app}:app"
    if name == "pounce":
        exe = os.path.join(REPO, ".venv", "bin", "pounce")
        return [exe, target, "--port", str(port), "--no-access-log"]
    if name == "uvicorn":
        exe = os.path.join(BENCH_VENV, "bin", "uvicorn")
        return [
            exe, target, "--port", str(port), "--loop", "uvloop", "--http", "httptools",
            "--no-access-log", "--log-level", "warning",
        ]
    raise BenchError(f"unknown server {name!r}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(port: int, timeout: float) -> tuple[int, bytes]:
    """One GET on a fresh connection; returns (status, body)."""
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        data = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    m = re.match(rb"HTTP/1\.[01] (\d{3})", head)
    if not m:
        raise BenchError(f"not an HTTP response: {data[:80]!r}")
    return int(m.group(1)), body


class Server:
    """A server process in its own process group (so stop() gets every worker)."""

    def __init__(self, name: str, app: str, wrapper: list[str] | None = None,
                 ready_timeout: float = 20.0, env: dict | None = None):
        self.name, self.app = name, app
        self.port = free_port()
        cmd = server_cmd(name, app, self.port)
        if not os.path.exists(cmd[0]):
            raise BenchError(f"{name}: {cmd[0]} is missing "
                             f"({'run make build' if name == 'pounce' else 'peer venv not installed'})")
        self.cmd = (wrapper or []) + cmd
        self.log = tempfile.NamedTemporaryFile(prefix=f"bench-{name}-", suffix=".log", delete=False)
        penv = dict(os.environ)
        penv["PYTHONPATH"] = REPO + os.pathsep + penv.get("PYTHONPATH", "")
        penv.update(env or {})
        self.proc = subprocess.Popen(self.cmd, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=penv, start_new_session=True)
        self._wait_ready(ready_timeout)

    def _output(self) -> str:
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-3000:]

    def _wait_ready(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        last = "no connection"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(
                    f"{self.name} exited with status {self.proc.returncode} before serving\n"
                    f"command: {' '.join(self.cmd)}\n--- output ---\n{self._output()}")
            try:
                status, body = http_get(self.port, timeout=2.0)
                if status == 200 and len(body) == APPS[self.app]:
                    return
                last = f"status {status}, body {len(body)} bytes (want 200, {APPS[self.app]})"
            except (OSError, BenchError) as e:
                last = str(e)
            time.sleep(0.1)
        output = self._output()
        self.stop()
        raise BenchError(f"{self.name} did not come up on port {self.port} within {timeout:.0f}s "
                         f"({last})\ncommand: {' '.join(self.cmd)}\n--- output ---\n{output}")

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGINT (graceful for every ASGI server we run), then SIGKILL."""
        if self.proc.poll() is None:
            try:
                os.killpg(self.proc.pid, signal.SIGINT)
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
            except ProcessLookupError:
                pass
        try:
            os.unlink(self.log.name)
        except OSError:
            pass
        return self.proc.returncode


def tree_cpu_ticks(root: int) -> int:
    """utime+stime+cutime+cstime of root and all its live descendants."""
    children: dict[int, list[int]] = {}
    stats: dict[int, list[str]] = {}
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                # The command name may hold spaces; fields start after ')'.
                fields = f.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        pid = int(d)
        stats[pid] = fields
        children.setdefault(int(fields[1]), []).append(pid)
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            # Fields 14..17 of stat(5); here index 11..14 after pid and comm.
            total += sum(int(x) for x in stats[pid][11:15])
        todo.extend(children.get(pid, []))
    return total


# --------------------------------------------------------------------------
# wrk

UNITS_US = {"us": 1.0, "ms": 1000.0, "s": 1_000_000.0}


def parse_duration_us(text: str) -> float:
    m = re.fullmatch(r"([\d.]+)(us|ms|s)", text)
    if not m:
        raise BenchError(f"cannot parse wrk latency {text!r}")
    return float(m.group(1)) * UNITS_US[m.group(2)]


def parse_wrk(out: str) -> dict:
    res = {}
    m = re.search(r"^\s*(\d+) requests in ([\d.]+)(us|ms|s)", out, re.M)
    rps = re.search(r"^Requests/sec:\s+([\d.]+)", out, re.M)
    if not m or not rps:
        raise BenchError(f"unexpected wrk output:\n{out}")
    res["requests"] = int(m.group(1))
    res["rps"] = float(rps.group(1))
    for pct in ("50", "99"):
        lm = re.search(rf"^\s+{pct}%\s+(\S+)", out, re.M)
        if not lm:
            raise BenchError(f"wrk output has no {pct}% latency (was --latency given?)\n{out}")
        res[f"p{pct}_us"] = parse_duration_us(lm.group(1))
    errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    res["socket_errors"] = sum(int(x) for x in errs.groups()) if errs else 0
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    res["non_2xx"] = int(non2xx.group(1)) if non2xx else 0
    return res


def wrk(port: int, duration: float, args) -> str:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", f"-t{args.threads}", f"-c{args.connections}",
           f"-d{duration}s", "--latency", f"http://127.0.0.1:{port}/"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    if p.returncode != 0:
        raise BenchError(f"wrk failed ({p.returncode}): {p.stderr or p.stdout}")
    return p.stdout


def measure_wrk(name: str, app: str, args) -> dict:
    srv = Server(name, app, wrapper=["taskset", "-c", SERVER_CPU])
    try:
        if args.warmup > 0:
            wrk(srv.port, args.warmup, args)
        t0 = tree_cpu_ticks(srv.proc.pid)
        out = wrk(srv.port, args.duration, args)
        t1 = tree_cpu_ticks(srv.proc.pid)
        if srv.proc.poll() is not None:
            raise BenchError(f"{name} died during the run:\n{srv._output()}")
    finally:
        srv.stop()
    res = parse_wrk(out)
    if res["requests"] == 0:
        raise BenchError(f"{name}/{app}: wrk completed no request\n{out}")
    ticks = t1 - t0
    res["cpu_us_per_req"] = ticks * 1e6 / os.sysconf("SC_CLK_TCK") / res["requests"]
    res["server_cpu_ticks"] = ticks
    if res["socket_errors"] or res["non_2xx"]:
        log(f"  warning: {name}/{app}: {res['socket_errors']} socket errors, "
            f"{res['non_2xx']} non-2xx responses")
    return res


# --------------------------------------------------------------------------
# callgrind


def keepalive_client(port: int, n: int, timeout: float = 120.0) -> None:
    """n sequential GETs on one keep-alive connection, each response read whole."""
    if n == 0:
        return
    req = b"GET / HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        buf = b""
        for _ in range(n):
            s.sendall(req)
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(65536)
                if not chunk:
                    raise BenchError("server closed the keep-alive connection")
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise BenchError(f"unexpected response {head[:60]!r}")
            m = re.search(rb"(?im)^content-length:\s*(\d+)\s*$", head)
            if not m:
                raise BenchError("response without Content-Length (the bench apps always send one)")
            need = int(m.group(1))
            while len(buf) < need:
                chunk = s.recv(65536)
                if not chunk:
                    raise BenchError("server closed mid-body")
                buf += chunk
            buf = buf[need:]


def callgrind_total(name: str, app: str, warmup: int, n: int, outdir: str) -> int:
    tag = f"{name}-{app}-{n}"
    pattern = os.path.join(outdir, f"callgrind.{tag}.%p")
    wrapper = ["valgrind", "--tool=callgrind", "--trace-children=yes",
               f"--callgrind-out-file={pattern}", "--dump-instr=no", "--dump-line=no"]
    # Fixed hash seed: dict layouts, hence instruction counts, repeat.
    srv = Server(name, app, wrapper=wrapper, ready_timeout=180.0, env={"PYTHONHASHSEED": "0"})
    try:
        keepalive_client(srv.port, warmup + n)
    finally:
        rc = srv.stop(timeout=120.0)
    files = glob.glob(os.path.join(outdir, f"callgrind.{tag}.*"))
    total = 0
    for path in files:
        with open(path, errors="replace") as f:
            for line in f:
                if line.startswith(("summary:", "totals:")):
                    total += int(line.split()[1])
                    break
    if not files or total == 0:
        raise BenchError(f"{name}: callgrind wrote no totals (server exit status {rc})")
    return total


def run_callgrind(args) -> dict:
    if not shutil.which("valgrind"):
        apt_install("valgrind")
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-callgrind-") as outdir:
        for app in args.apps:
            for name in args.servers:
                log(f"callgrind {name}/{app}: baseline ({args.cg_warmup} warm-up requests)")
                base = callgrind_total(name, app, args.cg_warmup, 0, outdir)
                log(f"callgrind {name}/{app}: + {args.cg_requests} requests")
                full = callgrind_total(name, app, args.cg_warmup, args.cg_requests, outdir)
                per = (full - base) / args.cg_requests
                log(f"  {per:,.0f} instructions/request")
                rows.append({"app": app, "server": name, "baseline_ir": base, "total_ir": full,
                             "requests": args.cg_requests, "ir_per_req": per})
    return {"rows": rows}


def callgrind_markdown(result: dict, servers: list[str]) -> str:
    lines = ["| app | server | instructions/request | vs uvicorn |", "|---|---|---:|---:|"]
    by = {(r["app"], r["server"]): r for r in result["rows"]}
    for r in result["rows"]:
        ref = by.get((r["app"], "uvicorn"))
        ratio = f"{r['ir_per_req'] / ref['ir_per_req']:.2f}" if ref and r["server"] != "uvicorn" else ""
        lines.append(f"| {r['app']} | {r['server']} | {r['ir_per_req']:,.0f} | {ratio} |")
    return "\n".join(lines)


# --------------------------------------------------------------------------
# throughput runs and the table


def summarize(samples: list[dict]) -> dict:
    out = {}
    for key in ("rps", "p50_us", "p99_us", "cpu_us_per_req"):
        vals = [s[key] for s in samples]
        out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    return out


def fmt_metric(key: str, m: dict) -> str:
    if key == "rps":
        return f"{m['median']:,.0f} ({m['min']:,.0f}..{m['max']:,.0f})"
    return f"{m['median']:.1f} ({m['min']:.1f}..{m['max']:.1f})"


def throughput_markdown(summary: dict, servers: list[str]) -> str:
    lines = [
        "| app | server | req/s | p50 µs | p99 µs | server CPU µs/req |",
        "|---|---|---:|---:|---:|---:|",
    ]
    keys = ("rps", "p50_us", "p99_us", "cpu_us_per_req")
    for app, per_server in summary.items():
        for name in servers:
            s = per_server[name]
            lines.append(f"| {app} | {name} | " + " | ".join(fmt_metric(k, s[k]) for k in keys) + " |")
        if "pounce" in per_server and "uvicorn" in per_server:
            p, u = per_server["pounce"], per_server["uvicorn"]
            ratios = [f"{p[k]['median'] / u[k]['median']:.2f}" if u[k]["median"] else "n/a" for k in keys]
            lines.append(f"| {app} | **pounce/uvicorn** | " + " | ".join(ratios) + " |")
    lines.append("")
    lines.append("Median over rounds, (min..max) in brackets.")
    return "\n".join(lines)


def run_throughput(args) -> dict:
    samples: dict[str, dict[str, list]] = {a: {s: [] for s in args.servers} for a in args.apps}
    for app in args.apps:
        for rnd in range(1, args.rounds + 1):
            for name in args.servers:
                res = measure_wrk(name, app, args)
                res["round"] = rnd
                samples[app][name].append(res)
                log(f"  {app:9} round {rnd} {name:8} {res['rps']:>10,.0f} req/s  "
                    f"p50 {res['p50_us']:8.1f} µs  p99 {res['p99_us']:8.1f} µs  "
                    f"cpu {res['cpu_us_per_req']:6.2f} µs/req")
    summary = {a: {s: summarize(v) for s, v in per.items()} for a, per in samples.items()}
    return {"samples": samples, "summary": summary}


# --------------------------------------------------------------------------
# set-up


def apt_install(pkg: str) -> None:
    log(f"installing {pkg} (apt-get)")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", pkg], check=True, env=env)


def ensure_tools(callgrind: bool) -> None:
    if not shutil.which("wrk") and not callgrind:
        apt_install("wrk")
    if not shutil.which("taskset"):
        raise BenchError("taskset (util-linux) is missing")
    if os.cpu_count() is None or os.cpu_count() < 2:
        raise BenchError("need at least 2 CPUs: server on CPU 1, wrk on CPU 0")


def ensure_peer_venv() -> None:
    """(Re)install .venv-bench when requirements-peers.txt changed."""
    with open(PEERS_REQ, "rb") as f:
        digest = hashlib.sha256(f.read()).hexdigest()
    stamp = os.path.join(BENCH_VENV, ".peers-installed")
    try:
        with open(stamp) as f:
            if f.read().strip() == digest:
                return
    except OSError:
        pass
    log("installing peer servers into .venv-bench")
    py = os.path.join(BENCH_VENV, "bin", "python")
    if not os.path.exists(py):
        subprocess.run([sys.executable, "-m", "venv", BENCH_VENV], check=True)
    # Output only on failure: pip's warnings about the host's extra indexes are noise here.
    p = subprocess.run([py, "-m", "pip", "install", "-q", "-r", PEERS_REQ],
                       capture_output=True, text=True)
    if p.returncode != 0:
        raise BenchError(f"pip install -r {PEERS_REQ} failed:\n{p.stdout}{p.stderr}")
    with open(stamp, "w") as f:
        f.write(digest + "\n")


def machine_info() -> dict:
    cpu = ""
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), "")
    except OSError:
        pass
    commit = subprocess.run(["git", "-C", REPO, "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    return {"cpu": cpu, "cpus": os.cpu_count(), "kernel": platform.release(),
            "python": platform.python_version(), "commit": commit}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default="pounce,uvicorn", help="comma list (pounce,uvicorn)")
    ap.add_argument("--apps", default="plaintext,body10k", help="comma list (plaintext,body10k)")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds per server")
    ap.add_argument("--duration", type=float, default=5, help="seconds per wrk run")
    ap.add_argument("--warmup", type=float, default=2, help="seconds of warm-up before each run")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--threads", type=int, default=1, help="wrk threads")
    ap.add_argument("--callgrind", action="store_true", help="instructions/request under callgrind")
    ap.add_argument("--cg-requests", type=int, default=2000, help="measured requests (callgrind)")
    ap.add_argument("--cg-warmup", type=int, default=200, help="warm-up requests (callgrind)")
    ap.add_argument("--out", default=RESULTS, help="directory for the .json and .md results")
    args = ap.parse_args()
    args.servers = [s for s in args.servers.split(",") if s]
    args.apps = [a for a in args.apps.split(",") if a]
    for a in args.apps:
        if a not in APPS:
            ap.error(f"unknown app {a!r} (have {', '.join(APPS)})")

    try:
        ensure_tools(args.callgrind)
        if any(s != "pounce" for s in args.servers):
            ensure_peer_venv()
        started = datetime.datetime.now()
        if args.callgrind:
            kind = "callgrind"
            result = run_callgrind(args)
            table = callgrind_markdown(result, args.servers)
            method = (f"valgrind --tool=callgrind; ({args.cg_warmup} + {args.cg_requests} requests) "
                      f"minus ({args.cg_warmup} requests), divided by {args.cg_requests}; "
                      "one keep-alive connection, sequential.")
        else:
            kind = "wrk"
            result = run_throughput(args)
            table = throughput_markdown(result["summary"], args.servers)
            method = (f"server `taskset -c {SERVER_CPU}`, 1 worker; `taskset -c {CLIENT_CPU} wrk "
                      f"-t{args.threads} -c{args.connections} -d{args.duration:g}s --latency`, "
                      f"{args.warmup:g}s warm-up, {args.rounds} interleaved rounds, fresh server per run.")
    except BenchError as e:
        log(f"bench: FAILED: {e}")
        return 1

    os.makedirs(args.out, exist_ok=True)
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    base = os.path.join(args.out, f"{stamp}-{kind}")
    doc = {"kind": kind, "started": started.isoformat(timespec="seconds"),
           "machine": machine_info(), "method": method, "args": vars(args), **result}
    with open(base + ".json", "w") as f:
        json.dump(doc, f, indent=2)
    info = doc["machine"]
    md = (f"# Pounce bench, {kind}, {doc['started']}\n\n"
          f"Commit {info['commit']}, {info['cpu']} ({info['cpus']} CPUs), Linux {info['kernel']}.\n\n"
          f"Method: {method}\n\n{table}\n")
    with open(base + ".md", "w") as f:
        f.write(md)
    print(md)
    print(f"results: {os.path.relpath(base, REPO)}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
