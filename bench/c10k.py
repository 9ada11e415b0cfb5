#!/usr/bin/env python3
"""10,000 concurrent connections under load (issue 17, item 3).

    make bench-c10k                                     # 3 minutes per server
    .venv/bin/python bench/c10k.py --quick              # ~30 s per server
    .venv/bin/python bench/c10k.py --duration 300 --servers pounce
    .venv/bin/python bench/c10k.py --render bench/results/<run>-c10k-host.json

One server at a time runs one worker pinned to CPU 1 (`taskset -c 1`), the
plaintext app (bench/apps/plaintext.py, 13 bytes); `wrk -t1 -c10000
--latency` runs pinned to CPU 0 for the whole duration, every connection
keep-alive.  `ulimit -n` is raised to its hard limit (20,000 here) for the
harness, wrk and the server.  Every server runs with its own defaults
(listen backlog, connection and concurrency limits, keep-alive timeout):
the run reports the backlog the kernel really gave the listening socket
(`ss -ltn`'s Send-Q, the smaller of the server's backlog and
net.core.somaxconn).

While wrk runs, every SAMPLE_S seconds the harness reads the server's RSS
(VmRSS summed over its process tree, /proc/PID/status), its open sockets
(/proc/PID/fd links to socket:[...], summed over the tree: the connections
it has accepted), the established TCP connections on its port (`ss`: the
accepted ones plus those still in the accept queue) and its CPU time.

Reported per server: req/s and requests, wrk's p50/p99/max latency (wrk
counts a response slower than --timeout as a *timeout* error and leaves it
out of the latency figures), wrk's socket errors (connect, read, write,
timeout) and non-2xx answers, server CPU µs per request
(utime+stime of the tree from /proc/PID/stat over wrk's run / requests),
the peak of concurrent connections, and the RSS curve.  *Flat*: after the
warm-up (the first minute, or the first third of a shorter run) RSS grows
by less than FLAT_BOUND_KIB or FLAT_BOUND_SHARE of its value at the end of
the warm-up, whichever is larger.  After wrk the server must still answer a
request, and its open sockets must be back to the count before the run
(checked for up to 10 s).

A server that fails (exits, stops answering, errors or timeouts) has that
as its result; no peer is tuned beyond its defaults.

Results: bench/results/<date>_<time>-c10k-host.{json,md} and
latest-c10k-host.md; docs/benchmarks.md ("10,000 connections under load")
has the analysis.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import run  # noqa: E402  (the path above makes bench importable)
from bench.idle_rss import tree_rss_kib  # noqa: E402
from bench.run import (  # noqa: E402
    CLIENT_CPU, HOST_BENCH_VENV, REPO, RESULTS, SERVER_CPU, BenchError, Env, Workload, apt_install,
    ensure_venv, loadavg, log, machine_info)

SERVERS = ("pounce", "uvicorn", "granian")
CONNECTIONS = 10_000
DURATION = 180  # seconds of wrk per server
QUICK_DURATION = 30
WARMUP_S = 60.0  # the RSS of the first minute is the warm-up (a third of shorter runs)
SAMPLE_S = 5.0
FLAT_BOUND_KIB = 4096  # RSS growth after warm-up that still counts as flat ...
FLAT_BOUND_SHARE = 0.05  # ... or this share of the RSS at the end of the warm-up
WRK_TIMEOUT = "5s"  # as bench/run.py
FD_SETTLE_S = 10.0
PLAINTEXT = Workload("plaintext", expect_len=13)


# --------------------------------------------------------------------------
# Sampling the server


def tree_sockets(pid: int) -> int:
    """Open sockets of pid and its descendants (/proc/PID/fd)."""
    n = 0
    for p in run.process_tree(pid)[1]:
        try:
            fds = os.listdir(f"/proc/{p}/fd")
        except OSError:
            continue
        for fd in fds:
            try:
                if os.readlink(f"/proc/{p}/fd/{fd}").startswith("socket:"):
                    n += 1
            except OSError:
                pass
    return n


def established(port: int) -> int:
    """Established TCP connections whose local port is port (server side)."""
    p = subprocess.run(["ss", "-Htn", "state", "established", f"( sport = :{port} )"],
                       capture_output=True, text=True, timeout=30)
    return sum(1 for line in p.stdout.splitlines() if line.strip())


def listen_backlog(port: int) -> int | None:
    """The backlog of the socket listening on port: `ss -ltn`'s Send-Q."""
    p = subprocess.run(["ss", "-Hltn", f"( sport = :{port} )"], capture_output=True, text=True,
                       timeout=30)
    for line in p.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[0] == "LISTEN":
            return int(f[2])
    return None


def somaxconn() -> int | None:
    try:
        with open("/proc/sys/net/core/somaxconn") as f:
            return int(f.read())
    except (OSError, ValueError):
        return None


class Sampler(threading.Thread):
    """Samples the server every SAMPLE_S seconds until stopped."""

    def __init__(self, pid: int, port: int):
        super().__init__(daemon=True)
        self.pid, self.port = pid, port
        self.curve: list[dict] = []
        self.done = threading.Event()
        self.t0 = time.monotonic()

    def sample(self) -> None:
        self.curve.append({"t": round(time.monotonic() - self.t0, 1), "rss_kib": tree_rss_kib(self.pid),
                           "sockets": tree_sockets(self.pid), "established": established(self.port),
                           "cpu_ticks": run.tree_cpu_ticks(self.pid)})

    def run(self) -> None:
        while True:
            self.sample()
            if self.done.wait(SAMPLE_S):
                return

    def stop(self) -> list[dict]:
        self.done.set()
        self.join(30)
        return self.curve


# --------------------------------------------------------------------------
# wrk


def parse_wrk(out: str) -> dict:
    """bench/run.py's fields plus the maximum latency.  wrk says a run of a
    minute or more lasted e.g. "3.00m", which run.parse_wrk does not read:
    that is turned into seconds first."""
    out = re.sub(r"(requests in )([\d.]+)m,", lambda m: f"{m.group(1)}{float(m.group(2)) * 60:.2f}s,", out)
    res = run.parse_wrk(out)
    m = re.search(r"^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    res["max_us"] = run.parse_duration_us(m.group(3)) if m else None
    return res


def wrk(port: int, connections: int, duration: int) -> str:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s", "--latency",
           "--timeout", WRK_TIMEOUT, f"http://127.0.0.1:{port}/"]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 120)
    if p.returncode != 0:
        raise BenchError(f"wrk failed ({p.returncode}): {p.stderr or p.stdout}")
    return p.stdout


# --------------------------------------------------------------------------
# One server


def warmup_end(duration: int) -> float:
    return min(WARMUP_S, duration / 3)


def rss_verdict(curve: list[dict], duration: int) -> dict:
    """The RSS after warm-up and whether it stayed flat."""
    w = warmup_end(duration)
    after = [s for s in curve if s["t"] >= w] or curve[-1:]
    base = after[0]["rss_kib"]
    growth = max(s["rss_kib"] for s in after) - base
    bound = max(FLAT_BOUND_KIB, FLAT_BOUND_SHARE * base)
    return {"warmup_s": w, "rss_warm_kib": base, "rss_end_kib": after[-1]["rss_kib"],
            "rss_max_kib": max(s["rss_kib"] for s in curve), "rss_growth_kib": growth,
            "rss_bound_kib": bound, "flat": growth < bound}


def measure(env: Env, name: str, args) -> dict:
    srv = run.Server(env, name, PLAINTEXT, SERVER_CPU)
    try:
        srv.wait_ready(60.0)
        pid = srv.proc.pid
        # A few hundred requests first: imports, first allocations.
        run.keepalive_client(srv.port, 400)
        time.sleep(0.5)
        backlog = listen_backlog(srv.port)
        sockets0 = tree_sockets(pid)
        rss0 = tree_rss_kib(pid)
        sampler = Sampler(pid, srv.port)
        ticks0 = run.tree_cpu_ticks(pid)
        sampler.start()
        t0 = time.monotonic()
        try:
            out = wrk(srv.port, args.connections, args.duration)
        finally:
            curve = sampler.stop()
        wall = time.monotonic() - t0
        ticks1 = run.tree_cpu_ticks(pid)
        if srv.proc.poll() is not None:
            raise BenchError(f"{name} died during the run:\n{srv.output()}")
        res = parse_wrk(out)
        res["wrk_output"] = out
        # After the run: still serving, and the connections' sockets closed.
        try:
            status, body = run.probe(srv.port, PLAINTEXT, timeout=10.0)
            res["answers_after"] = run.answer_ok(PLAINTEXT, status, body) or "ok"
        except (OSError, BenchError) as e:
            res["answers_after"] = f"no: {e}"
        deadline = time.monotonic() + FD_SETTLE_S
        while (sockets1 := tree_sockets(pid)) > sockets0 and time.monotonic() < deadline:
            time.sleep(0.2)
        tck = os.sysconf("SC_CLK_TCK")
        res.update({
            "connections": args.connections, "duration_s": args.duration, "wall_s": round(wall, 1),
            "listen_backlog": backlog, "rss_start_kib": rss0, "sockets_before": sockets0,
            "sockets_after": sockets1,
            "peak_sockets": max(s["sockets"] for s in curve) - sockets0,
            "peak_established": max(s["established"] for s in curve),
            "server_cpu_s": (ticks1 - ticks0) / tck,
            "cpu_us_per_req": (ticks1 - ticks0) / tck / max(1, res["requests"]) * 1e6,
            "curve": curve, "load_after": loadavg(), **rss_verdict(curve, args.duration)})
        log(f"  {name:8} {res['rps']:,.0f} req/s, p50 {res['p50_us'] / 1000:.1f} ms, p99 "
            f"{res['p99_us'] / 1000:.1f} ms, max {(res['max_us'] or 0) / 1000:.0f} ms; errors "
            f"{res['socket_error_kinds']} non-2xx {res['non_2xx']}; {res['cpu_us_per_req']:.1f} µs CPU/req; "
            f"peak {res['peak_established']:,} established / {res['peak_sockets']:,} accepted; RSS "
            f"{res['rss_warm_kib'] / 1024:.1f} -> {res['rss_end_kib'] / 1024:.1f} MiB after warm-up "
            f"({'flat' if res['flat'] else 'GROWS'}); sockets {sockets0} -> {sockets1}; answers after: "
            f"{res['answers_after']}")
        return res
    finally:
        srv.stop()


# --------------------------------------------------------------------------
# Tables


def ms(us: float | None) -> str:
    return "–" if us is None else f"{us / 1000:,.1f}"


def verdict(r: dict) -> str:
    """'ok', or what went wrong."""
    bad = []
    if r["socket_errors"]:
        bad.append(f"{r['socket_errors']:,} socket errors")
    if r["non_2xx"]:
        bad.append(f"{r['non_2xx']:,} non-2xx")
    if r["peak_established"] < r["connections"]:
        bad.append(f"only {r['peak_established']:,} connections at once")
    if not r["flat"]:
        bad.append("RSS grows")
    if r["answers_after"] != "ok":
        bad.append("no answer after the run")
    if r["sockets_after"] > r["sockets_before"]:
        bad.append(f"{r['sockets_after'] - r['sockets_before']:,} sockets left open")
    return "ok" if not bad else "; ".join(bad)


def markdown(doc: dict) -> str:
    res = doc["results"]
    lines = [f"{doc['connections']:,} keep-alive connections, `wrk -t1 -c{doc['connections']} "
             f"-d{doc['duration_s']}s --latency --timeout {WRK_TIMEOUT}`, plaintext app, one worker; "
             f"net.core.somaxconn {doc['somaxconn']}.", "",
             "| server | req/s | p50 ms | p99 ms | max ms | socket errors (connect/read/write/timeout) | "
             "non-2xx | CPU µs/req | peak connections (established / accepted) | listen backlog | "
             "RSS after warm-up → end MiB | growth KiB (bound) | sockets before → after | verdict |",
             "|---|---:|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for name, r in res.items():
        e = r["socket_error_kinds"]
        errs = "/".join(f"{e.get(k, 0):,}" for k in ("connect", "read", "write", "timeout"))
        lines.append(
            f"| {name} | {r['rps']:,.0f} | {ms(r['p50_us'])} | {ms(r['p99_us'])} | {ms(r['max_us'])} | "
            f"{errs} | {r['non_2xx']:,} | {r['cpu_us_per_req']:.1f} | {r['peak_established']:,} / "
            f"{r['peak_sockets']:,} | {r['listen_backlog']} | {r['rss_warm_kib'] / 1024:.1f} → "
            f"{r['rss_end_kib'] / 1024:.1f} | {r['rss_growth_kib']:,} ({r['rss_bound_kib']:,.0f}) | "
            f"{r['sockets_before']} → {r['sockets_after']} | {verdict(r)} |")
    for name, why in doc["failed"].items():
        lines.append(f"| {name} | **failed**: {why} |" + " – |" * 12)
    lines.append("")
    if res:
        # The RSS curves side by side, one row per sample time.
        names = list(res)
        lines += ["RSS (MiB) and connections accepted, every ~5 s:", "",
                  "| t s | " + " | ".join(f"{n} RSS | {n} conns" for n in names) + " |",
                  "|---:|" + "---:|---:|" * len(names)]
        rows = max(len(res[n]["curve"]) for n in names)
        for i in range(rows):
            cells = []
            t = None
            for n in names:
                c = res[n]["curve"]
                if i < len(c):
                    t = c[i]["t"] if t is None else t
                    cells.append(f"{c[i]['rss_kib'] / 1024:.1f} | "
                                 f"{c[i]['sockets'] - res[n]['sockets_before']:,}")
                else:
                    cells.append("– | –")
            lines.append(f"| {t:.0f} | " + " | ".join(cells) + " |")
        lines.append("")
    lines.append(f"*Flat*: RSS grows by less than the bound after the warm-up (the first "
                 f"{doc['warmup_s']:g} s): {FLAT_BOUND_KIB:,} KiB or {FLAT_BOUND_SHARE * 100:g} % of the "
                 "RSS at the end of the warm-up, whichever is larger.  *established*: the server "
                 "port's established TCP connections (`ss`, accept queue included); *accepted*: the "
                 "server's open sockets (/proc/PID/fd) minus those before the run.  *listen "
                 "backlog*: `ss -ltn`'s Send-Q of the listening socket.  wrk counts a response "
                 f"slower than {WRK_TIMEOUT} as a timeout and leaves it out of the latencies.")
    return "\n".join(lines)


def render(path: str) -> str:
    return markdown(run.load_result(path, "c10k", "c10k.py"))


# --------------------------------------------------------------------------


def setup(servers: list[str]) -> Env:
    if "pounce" in servers and not os.path.exists(os.path.join(REPO, ".venv", "bin", "pounce")):
        raise BenchError(".venv/bin/pounce is missing: run `make build` first")
    if not shutil.which("wrk"):
        apt_install("wrk")
    for tool in ("taskset", "ss"):
        if not shutil.which(tool):
            raise BenchError(f"{tool} is missing (Debian: util-linux, iproute2)")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("need at least 2 CPUs: server on CPU 1, wrk on CPU 0")
    env = Env("host")
    if any(s != "pounce" for s in servers):
        ensure_venv(env, HOST_BENCH_VENV, ["requirements-peers.txt"], "python3")
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--duration", type=int, help=f"seconds of wrk per server (default {DURATION})")
    ap.add_argument("--quick", action="store_true", help=f"{QUICK_DURATION} s per server")
    ap.add_argument("-c", "--connections", type=int, default=CONNECTIONS)
    ap.add_argument("--servers", default=",".join(SERVERS), help=f"comma list from: {', '.join(SERVERS)}")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--render", metavar="RESULT.json", help="only print a stored result's tables")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    args.duration = args.duration or (QUICK_DURATION if args.quick else DURATION)
    servers = [s for s in args.servers.split(",") if s]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r} (have {', '.join(SERVERS)})")
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))  # wrk and the servers inherit it
    if args.connections + 1000 > hard:
        ap.error(f"{args.connections:,} connections need more than the hard limit of {hard:,} files")
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    try:
        env = setup(servers)
        load0 = loadavg()
        doc = {"kind": "c10k", "profile": "c10k", "python": "host",
               "started": started.isoformat(timespec="seconds"), "machine": machine_info(),
               "command": "python bench/c10k.py " + " ".join(sys.argv[1:]), "servers": servers,
               "connections": args.connections, "duration_s": args.duration,
               "warmup_s": warmup_end(args.duration), "somaxconn": somaxconn(), "nofile": hard,
               "method": (f"One server at a time, 1 worker, `taskset -c {SERVER_CPU}`, its default "
                          f"settings; `taskset -c {CLIENT_CPU} wrk -t1 -c{args.connections} "
                          f"-d{args.duration}s --latency --timeout {WRK_TIMEOUT}` on the plaintext app "
                          f"after 400 warm-up requests; RSS, sockets, established connections and CPU "
                          f"sampled every {SAMPLE_S:g} s; `ulimit -n` {hard:,}."),
               "results": {}, "failed": {}}
        log(f"{args.connections:,} connections, {args.duration} s per server; net.core.somaxconn "
            f"{doc['somaxconn']}, ulimit -n {hard:,}")
        for name in servers:
            try:
                doc["results"][name] = measure(env, name, args)
            except (BenchError, OSError, subprocess.TimeoutExpired) as e:
                log(f"  {name:8} FAILED: {e}")
                doc["failed"][name] = str(e).splitlines()[0][:300]
            time.sleep(2.0)  # the kernel tears down the sockets
        doc["versions"] = run.versions(env, [s for s in servers if s in run.SERVER_VENV])
        doc["load"] = {"start": load0, "end": loadavg(),
                       "max": max([load0] + [r["load_after"] for r in doc["results"].values()])}
    except BenchError as e:
        log(f"c10k bench: FAILED: {e}")
        return 1
    run.save_result(doc, markdown(doc), args.out, stamp, "c10k-host",
                    "10,000 connections under load (issue 17), host CPython")
    return 0


if __name__ == "__main__":
    sys.exit(main())
