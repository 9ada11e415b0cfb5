#!/usr/bin/env python3
"""Static-file benchmark (issue 16): Pounce's `--static` against nginx,
granian's static mount and Starlette's StaticFiles under uvicorn, same run,
same files, one core each.

    make bench-static                                   # ~5 min
    .venv/bin/python bench/static_bench.py --rounds 5 --duration 5
    .venv/bin/python bench/static_bench.py --servers pounce,nginx --files 1k
    python3 bench/static_bench.py --render bench/results/<run>-static-host.json

Servers (each serves the same directory at the URL prefix /s):
* pounce: `pounce bench.apps.plaintext:app --static /s=DIR --no-access-log`
  (.venv, `make build`); pounce-log is the same with the access log on,
  written to a file in the run's temporary directory, so the table shows
  what the log costs.  Listed as not run while `pounce --help` has no
  --static.
* nginx (Debian's nginx-light): master + one worker process, `sendfile on`,
  `tcp_nopush on`, `access_log off`, `open_file_cache` on with a 1 s
  revalidation (Pounce caches open files the same way),
  `keepalive_requests` raised so that it does not close wrk's connections
  every 1000 requests (Pounce does not either); its config is generated in
  the run's temporary directory.
* granian (pinned in bench/requirements-peers.txt, .venv-bench):
  `--static-path-route /s --static-path-mount DIR` in front of the trivial
  plaintext app, uvloop, HTTP/1.
* starlette: bench/apps/static_starlette.py (StaticFiles mounted at /s)
  under uvicorn with httptools and uvloop (.venv-bench).

Files: 1k (1 KiB) and 100k (100 KiB) of random bytes, and 1g (1 GiB, a
random MiB repeated), made in a fresh temporary directory (under /tmp, so
on the page cache after the first read) and removed after the run.

Method, as bench/run.py: every server pinned to CPU 1 (`taskset -c 1`, one
worker), the load generator to CPU 0.  1k and 100k: `wrk -t1 -c64
--latency`, keep-alive, each server warmed up, then interleaved rounds (the
order rotated each round); medians (min-max) of req/s, p50/p99 and server
CPU µs per request (utime+stime of the server's process tree from
/proc/PID/stat over the wrk run, divided by the requests; loopback softirq
time is not in it), and the server's CPU % (under ~90 %: wrk or the
neighbours set the pace, so compare CPU per request).  The failure criteria
of bench/run.py apply (errors, stalls).  1g: one curl on CPU 0 fetches
the file --transfers times (3) on one keep-alive connection to /dev/null,
per server per round, after a warm-up transfer; MB/s from curl's
time_total, server CPU ms per GiB from /proc/PID/stat (3 GiB per sample, so
that the 10 ms clock ticks are a few per cent of it); a transfer that is
not 200 with every byte fails the server.  On loopback the receiver's copy
is most of the work, so curl's core, not the server's, sets the MB/s of a
sendfile server: read the CPU per GiB beside it.

Issue 16's targets, per core: on 1k, Pounce >= 1.0x nginx req/s with no
more CPU per request, >= 10x Starlette, >= 1.5x granian; on 1g, Pounce's
throughput within 10 % of nginx's.

Results: bench/results/<date>_<time>-static-host.{json,md} and
latest-static-host.md; the load average before, during and after is in
both.  docs/benchmarks.md ("Static files") has the method and the analysis.
"""

from __future__ import annotations

import argparse
import datetime
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import run  # noqa: E402  (the path above makes bench importable)
from bench.run import (  # noqa: E402
    CLIENT_CPU, HOST_BENCH_VENV, REPO, RESULTS, SERVER_CPU, BenchError, Env, Workload,
    apt_install, dechunk, ensure_venv, free_port, loadavg, log, machine_info, parse_wrk,
    tree_cpu_ticks, tree_peak_rss_kb)

PREFIX = "/s"
FILES = {"1k": 1024, "100k": 100 * 1024, "1g": 1 << 30}
WRK_FILES = ("1k", "100k")
SERVERS = ("pounce", "pounce-log", "nginx", "granian", "starlette")
DEFAULT_SERVERS = "pounce,pounce-log,nginx,granian,starlette"
NOTES = {
    "pounce": "`--static /s=DIR --no-access-log`",
    "pounce-log": "`--static /s=DIR`, access log on (default format, to a file)",
    "nginx": "nginx-light, 1 worker, sendfile, tcp_nopush, open_file_cache, access_log off",
    "granian": "`--static-path-mount DIR`, plaintext app behind it",
    "starlette": "Starlette StaticFiles under uvicorn (httptools, uvloop)",
}
# (workload, peer, goal, kind): issue 16's targets.
GOALS = (("1k", "nginx", 1.0, "rps"), ("1k", "nginx", 1.0, "cpu"), ("1k", "starlette", 10.0, "rps"),
         ("1k", "granian", 1.5, "rps"), ("1g", "nginx", 0.9, "mbps"))
CLK = os.sysconf("SC_CLK_TCK")


def url(port: int, name: str) -> str:
    return f"http://127.0.0.1:{port}{PREFIX}/{name}.bin"


# --------------------------------------------------------------------------
# The files


def make_files(root: str, which: list[str]) -> dict[str, bytes]:
    """The benchmark files under root; returns the small ones' content (the
    probe compares bodies byte for byte)."""
    small = {}
    for name in which:
        size = FILES[name]
        path = os.path.join(root, f"{name}.bin")
        if size <= 1 << 20:
            small[name] = os.urandom(size)
            with open(path, "wb") as f:
                f.write(small[name])
        else:
            block = os.urandom(1 << 20)
            with open(path, "wb") as f:
                for _ in range(size >> 20):
                    f.write(block)
        os.chmod(path, 0o644)
    return small


# --------------------------------------------------------------------------
# Servers


NGINX_CONF = """\
worker_processes 1;
daemon off;
master_process on;
pid {tmp}/nginx.pid;
error_log stderr warn;
events {{ worker_connections 4096; }}
http {{
    default_type application/octet-stream;
    access_log off;
    sendfile on;
    tcp_nopush on;
    keepalive_timeout 75s;
    keepalive_requests 100000000;
    open_file_cache max=1024 inactive=60s;
    open_file_cache_valid 1s;
    client_body_temp_path {tmp}/body;
    proxy_temp_path {tmp}/proxy;
    fastcgi_temp_path {tmp}/fastcgi;
    uwsgi_temp_path {tmp}/uwsgi;
    scgi_temp_path {tmp}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location {prefix}/ {{ alias {files}/; }}
    }}
}}
"""


def server_cmd(env: Env, name: str, port: int, files: str, tmp: str) -> tuple[list[str], dict]:
    """(command, extra environment) of one server."""
    host = ["--host", "127.0.0.1", "--port", str(port)]
    if name in ("pounce", "pounce-log"):
        cmd = [env.bin("pounce", "pounce"), "bench.apps.plaintext:app", *host, "--workers", "1",
               "--static", f"{PREFIX}={files}"]
        if name == "pounce":
            cmd.append("--no-access-log")
        else:
            cmd += ["--access-log-file", os.path.join(tmp, "pounce-access.log")]
        return cmd, {}
    if name == "nginx":
        conf = os.path.join(tmp, "nginx.conf")
        with open(conf, "w") as f:
            f.write(NGINX_CONF.format(tmp=tmp, port=port, prefix=PREFIX, files=files))
        return [shutil.which("nginx") or "/usr/sbin/nginx", "-e", "stderr", "-p", tmp, "-c", conf], {}
    if name == "granian":
        return [env.bin("peers", "granian"), "--interface", "asgi", *host, "--workers", "1",
                "--loop", "uvloop", "--http", "1", "--no-ws", "--log-level", "warning",
                "--static-path-route", PREFIX, "--static-path-mount", files,
                "bench.apps.plaintext:app"], {}
    if name == "starlette":
        return [env.bin("peers", "uvicorn"), "bench.apps.static_starlette:app", *host, "--workers", "1",
                "--loop", "uvloop", "--http", "httptools", "--no-access-log", "--log-level", "warning"], \
            {"BENCH_STATIC_DIR": files}
    raise BenchError(f"unknown server {name!r}")


def unsupported(env: Env, name: str) -> str | None:
    """Why a server cannot run here, or None."""
    if name.startswith("pounce"):
        help_text = env.run([env.bin("pounce", "pounce"), "--help"], "pounce --help")
        if "--static" not in help_text:
            return "this build of pounce has no --static (issue 16's runtime has not landed in it)"
    if name == "nginx" and not shutil.which("nginx"):
        return "nginx is missing (Debian: nginx-light)"
    return None


class StaticServer:
    """A server in its own process group, pinned to CPU 1."""

    def __init__(self, env: Env, name: str, files: str, tmp: str):
        self.name = name
        self.port = free_port()
        cmd, extra = server_cmd(env, name, self.port, files, tmp)
        kw = env.popen_args(cmd, extra)
        kw["args"] = ["taskset", "-c", SERVER_CPU, *kw["args"]]
        self.cmd = kw["args"]
        self.log = open(os.path.join(tmp, f"{name}.out"), "w+b")
        self.proc = subprocess.Popen(**kw, stdout=self.log, stderr=subprocess.STDOUT,
                                     start_new_session=True)

    def output(self) -> str:
        self.log.flush()
        with open(self.log.name, errors="replace") as f:
            return f.read()[-3000:]

    def wait_ready(self, small: dict[str, bytes], timeout: float = 60.0) -> None:
        """Every small file must come back 200 and byte for byte."""
        deadline = time.monotonic() + timeout
        last = "no connection"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise BenchError(f"{self.name} exited with status {self.proc.returncode} before serving\n"
                                 f"command: {' '.join(self.cmd)}\n--- output ---\n{self.output()}")
            try:
                last = None
                for name, want in small.items():
                    status, body = fetch(self.port, f"{PREFIX}/{name}.bin")
                    if status != 200 or body != want:
                        last = f"{name}: status {status}, {len(body)} bytes (want 200, {len(want)} bytes as on disk)"
                        break
                if last is None:
                    return
            except OSError as e:
                last = str(e)
            time.sleep(0.1)
        out = self.output()
        self.stop()
        raise BenchError(f"{self.name} did not serve the files correctly within {timeout:.0f}s ({last})\n"
                         f"command: {' '.join(self.cmd)}\n--- output ---\n{out}")

    def stop(self, timeout: float = 10.0) -> None:
        """SIGINT (graceful for the ASGI servers, fast shutdown for nginx), then SIGKILL."""
        run.stop_group(self.proc, timeout)
        self.log.close()


def fetch(port: int, path: str) -> tuple[int, bytes]:
    """One GET on a fresh connection: (status, body read to EOF, de-chunked:
    granian sends its static files chunked)."""
    return run.probe(port, Workload("static", path=path), 10.0)


# --------------------------------------------------------------------------
# Measurements


def measure_wrk(srv: StaticServer, name: str, duration: int, connections: int) -> dict:
    wl = Workload("static", path=f"{PREFIX}/{name}.bin", connections=connections)
    t0 = tree_cpu_ticks(srv.proc.pid)
    out = run.wrk(srv.port, wl, duration)
    t1 = tree_cpu_ticks(srv.proc.pid)
    if srv.proc.poll() is not None:
        raise BenchError(f"{srv.name} died during {name}:\n{srv.output()}")
    res = parse_wrk(out)
    if res["requests"] == 0:
        raise BenchError(f"{srv.name}/{name}: wrk completed no request\n{out}")
    cpu_s = (t1 - t0) / CLK
    res["cpu_us_per_req"] = cpu_s / res["requests"] * 1e6
    # run.judge's names: CPU seconds per 10k requests and CPU % of one core.
    res["cpu_s_per_10k"] = cpu_s / res["requests"] * 10_000
    res["cpu_pct"] = cpu_s / duration * 100
    res["load_after"] = loadavg()
    return res


def measure_big(srv: StaticServer, name: str, transfers: int) -> dict:
    """`transfers` transfers of the big file, one after the other on one
    keep-alive connection (one curl on CPU 0): enough bytes that the server's
    CPU, counted in clock ticks, is more than a few ticks."""
    size = FILES[name]
    cmd = ["taskset", "-c", CLIENT_CPU, "curl", "-s", "--max-time", str(60 * transfers),
           "-w", "%{http_code} %{size_download} %{time_total}\\n"]
    for _ in range(transfers):
        cmd += ["-o", "/dev/null", url(srv.port, name)]
    t0 = tree_cpu_ticks(srv.proc.pid)
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=60 * transfers + 30)
    t1 = tree_cpu_ticks(srv.proc.pid)
    if srv.proc.poll() is not None:
        raise BenchError(f"{srv.name} died during {name}:\n{srv.output()}")
    try:
        done = [(int(c), int(n), float(t)) for c, n, t in (ln.split() for ln in p.stdout.splitlines())]
    except ValueError:
        raise BenchError(f"{srv.name}/{name}: curl said {p.stdout!r} {p.stderr!r} (exit {p.returncode})") from None
    bad = [d for d in done if d[0] != 200 or d[1] != size]
    if p.returncode != 0 or len(done) != transfers or bad:
        raise BenchError(f"{srv.name}/{name}: curl exit {p.returncode}, {len(done)} of {transfers} transfers, "
                         f"not 200 with {size:,} bytes: {bad[:2]}")
    secs = sum(d[2] for d in done)
    cpu_s = (t1 - t0) / CLK
    gib = transfers * size / (1 << 30)
    return {"transfers": transfers, "seconds": secs, "mb_per_s": transfers * size / secs / 1e6,
            "cpu_ms_per_gib": cpu_s * 1000 / gib, "cpu_pct": cpu_s / secs * 100, "load_after": loadavg()}


def stats(vals: list[float]) -> dict:
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


def summarize_wrk(samples: list[dict]) -> dict:
    out = {k: stats([s[k] for s in samples]) for k in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "cpu_pct")}
    out["errors"] = sum(s["socket_errors"] + s["non_2xx"] for s in samples)
    return out


def summarize_big(samples: list[dict]) -> dict:
    return {k: stats([s[k] for s in samples]) for k in ("mb_per_s", "cpu_ms_per_gib", "cpu_pct")}


def run_file(env: Env, name: str, servers: list[str], files: str, tmp: str, small: dict, args) -> dict:
    """Every server on one file: start, check, warm up, interleaved rounds."""
    big = name not in WRK_FILES
    started: list[StaticServer] = []
    samples: dict[str, list[dict]] = {s: [] for s in servers}
    failed: dict[str, str] = {}
    rss: dict[str, int] = {}

    def drop(srv: StaticServer, err: BenchError) -> None:
        log(f"  {name}: {srv.name} FAILED, left out: {err}")
        failed[srv.name] = str(err).splitlines()[0][:300]
        samples.pop(srv.name, None)
        started.remove(srv)
        srv.stop()

    def one(srv: StaticServer, seconds: int, warmup: bool = False) -> dict:
        if big:
            return measure_big(srv, name, 1 if warmup else args.transfers)
        return measure_wrk(srv, name, seconds, args.connections)

    try:
        for s in servers:
            started.append(StaticServer(env, s, files, tmp))
        for srv in list(started):
            try:
                srv.wait_ready(small)
                if args.warmup > 0:
                    one(srv, args.warmup, warmup=True)
            except BenchError as e:
                drop(srv, e)
        for rnd in range(args.rounds):
            k = rnd % max(1, len(started))
            for srv in started[k:] + started[:k]:
                try:
                    res = one(srv, args.duration)
                except BenchError as e:
                    drop(srv, e)
                    continue
                res["round"] = rnd + 1
                samples[srv.name].append(res)
                if big:
                    log(f"  {name:5} r{rnd + 1} {srv.name:10} {res['mb_per_s']:>8,.0f} MB/s  "
                        f"{res['cpu_ms_per_gib']:7.0f} ms CPU/GiB  cpu {res['cpu_pct']:3.0f}%  "
                        f"load {res['load_after']:.2f}")
                else:
                    warn = (f"  ({res['socket_errors']} socket errors, {res['non_2xx']} non-2xx)"
                            if res["socket_errors"] or res["non_2xx"] else "")
                    log(f"  {name:5} r{rnd + 1} {srv.name:10} {res['rps']:>9,.0f} req/s  p99 "
                        f"{res['p99_us'] / 1000:6.2f} ms  {res['cpu_us_per_req']:6.1f} µs CPU/req  "
                        f"cpu {res['cpu_pct']:3.0f}%  load {res['load_after']:.2f}{warn}")
        for srv in started:
            rss[srv.name] = tree_peak_rss_kb(srv.proc.pid)
    finally:
        for srv in started:
            srv.stop()
    res = {"kind": "transfer" if big else "wrk", "size": FILES[name], "samples": samples,
           "failed": failed, "peak_rss_kb": rss}
    if not big:
        # bench/run.py's failure criteria (errors over 1 %, stalls).
        for s, why in run.judge(name, {"samples": samples}).items():
            if s not in failed:
                log(f"  {name}: {s} FAILED, left out of the summary and the ratios: {why}")
                failed[s] = why
    summ = summarize_big if big else summarize_wrk
    res["summary"] = {s: summ(v) for s, v in samples.items() if v and s not in failed}
    return res


# --------------------------------------------------------------------------
# Tables and targets


def targets(doc: dict) -> list[dict]:
    out = []
    w = doc["workloads"]
    for wl, peer, goal, kind in GOALS:
        if wl not in w:
            continue
        res = w[wl]
        label = {"rps": f"{wl}: pounce ≥ {goal:g}× {peer} req/s",
                 "cpu": f"{wl}: pounce CPU per request ≤ {peer}'s",
                 "mbps": f"{wl}: pounce throughput ≥ {goal:.0%} of {peer}'s"}[kind]
        gone = {s: why for s in ("pounce", peer)
                for why in [res["failed"].get(s) or doc.get("skipped", {}).get(s)] if why}
        if gone or "pounce" not in res["summary"] or peer not in res["summary"]:
            why = "; ".join(f"{s} {'failed' if s in res['failed'] else 'not run'}" for s in gone)
            why = why or f"{' and '.join(s for s in ('pounce', peer) if s not in doc['servers'])} not in --servers"
            out.append({"target": label, "met": None, "value": f"not measured: {why}"})
            continue
        me, them = res["summary"]["pounce"], res["summary"][peer]
        if kind == "mbps":
            r = me["mb_per_s"]["median"] / them["mb_per_s"]["median"]
            cpu = them["cpu_ms_per_gib"]["median"] / me["cpu_ms_per_gib"]["median"]
            value = (f"{r:.2f}× ({me['mb_per_s']['median']:,.0f} vs {them['mb_per_s']['median']:,.0f} MB/s; "
                     f"CPU per GiB: {peer}'s ÷ Pounce's {cpu:.2f})")
        else:
            rps = me["rps"]["median"] / them["rps"]["median"]
            cpu = them["cpu_us_per_req"]["median"] / me["cpu_us_per_req"]["median"]
            mine = {x["round"]: x["rps"] for x in res["samples"]["pounce"]}
            theirs = {x["round"]: x["rps"] for x in res["samples"][peer]}
            per = ", ".join(f"{mine[k] / theirs[k]:.2f}" for k in sorted(mine) if k in theirs)
            if kind == "rps":
                r = rps
                value = f"{rps:.2f}× (CPU per request: {peer}'s ÷ Pounce's {cpu:.2f}; req/s per round {per})"
            else:
                r = cpu
                value = (f"{me['cpu_us_per_req']['median']:.1f} vs {them['cpu_us_per_req']['median']:.1f} µs "
                         f"({peer}'s ÷ Pounce's {cpu:.2f}; req/s {rps:.2f}×)")
        out.append({"target": label, "met": r >= goal, "value": value, "ratio": r})
    return out


def markdown(doc: dict) -> str:
    lines = ["| file | server | req/s | p50 ms | p99 ms | server CPU µs/request | server CPU % | peak RSS MB "
             "| pounce × req/s | pounce × CPU |", "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    skipped = doc.get("skipped", {})
    for name, res in doc["workloads"].items():
        if res["kind"] != "wrk":
            continue
        summ, ref = res["summary"], res["summary"].get("pounce")
        for s, m in summ.items():
            ratio = cpu = ""
            if ref and s != "pounce":
                ratio = f"{ref['rps']['median'] / m['rps']['median']:.2f}"
                cpu = f"{m['cpu_us_per_req']['median'] / ref['cpu_us_per_req']['median']:.2f}"
            err = f" ⚠{m['errors']} err" if m["errors"] else ""
            r, c = m["rps"], m["cpu_us_per_req"]
            lines.append(f"| {name} | {s}{err} | {r['median']:,.0f} ({r['min']:,.0f}–{r['max']:,.0f}) | "
                         f"{m['p50_us']['median'] / 1000:.2f} | {m['p99_us']['median'] / 1000:.2f} | "
                         f"{c['median']:.1f} ({c['min']:.1f}–{c['max']:.1f}) | {m['cpu_pct']['median']:.0f} | "
                         f"{res['peak_rss_kb'].get(s, 0) / 1024:.0f} | {ratio} | {cpu} |")
        for s, why in res["failed"].items():
            lines.append(f"| {name} | {s} | **failed**: {why} | – | – | – | – | – | – | – |")
        for s, why in skipped.items():
            lines.append(f"| {name} | {s} | **not run**: {why} | – | – | – | – | – | – | – |")
    big = [(n, r) for n, r in doc["workloads"].items() if r["kind"] == "transfer"]
    if big:
        lines += ["", "| file | server | MB/s | server CPU ms/GiB | server CPU % | pounce × MB/s | pounce × CPU |",
                  "|---|---|---:|---:|---:|---:|---:|"]
        for name, res in big:
            ref = res["summary"].get("pounce")
            for s, m in res["summary"].items():
                ratio = cpu = ""
                if ref and s != "pounce":
                    ratio = f"{ref['mb_per_s']['median'] / m['mb_per_s']['median']:.2f}"
                    cpu = f"{m['cpu_ms_per_gib']['median'] / ref['cpu_ms_per_gib']['median']:.2f}"
                b, c = m["mb_per_s"], m["cpu_ms_per_gib"]
                lines.append(f"| {name} | {s} | {b['median']:,.0f} ({b['min']:,.0f}–{b['max']:,.0f}) | "
                             f"{c['median']:.0f} ({c['min']:.0f}–{c['max']:.0f}) | {m['cpu_pct']['median']:.0f} | "
                             f"{ratio} | {cpu} |")
            for s, why in res["failed"].items():
                lines.append(f"| {name} | {s} | **failed**: {why} | – | – | – | – |")
            for s, why in skipped.items():
                lines.append(f"| {name} | {s} | **not run**: {why} | – | – | – | – |")
    lines += ["", "Median over rounds, (min–max) in brackets.  *server CPU %*: the server's CPU time over "
              "the run's wall time (100 = its one core busy; well under 100 means wrk, curl or the "
              "neighbours set the pace: compare CPU per request there).  *pounce × req/s* (× MB/s) = "
              "Pounce's ÷ that server's; *pounce × CPU* = that server's CPU per request (per GiB) ÷ "
              "Pounce's (both > 1 when Pounce is better).  " + run.FAILURE_CRITERIA + "  Servers: "
              + "; ".join(f"**{s}** {NOTES[s]}" for s in doc["servers"]) + "."]
    log_cost = access_log_cost(doc)
    if log_cost:
        lines += ["", log_cost]
    if doc.get("callgrind"):
        lines += ["", callgrind_markdown(doc["callgrind"])]
    tt = targets(doc)
    if tt:
        verdict = {True: "met", False: "**missed**", None: "not measured"}
        lines += ["", "| target (issue 16, per core) | this run | |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['value']} | {verdict[t['met']]} |" for t in tt]
    return "\n".join(lines)


def access_log_cost(doc: dict) -> str:
    """One sentence per wrk file: what the access log adds per request."""
    parts = []
    for name, res in doc["workloads"].items():
        s = res["summary"]
        if res["kind"] == "wrk" and "pounce" in s and "pounce-log" in s:
            off, on = s["pounce"]["cpu_us_per_req"]["median"], s["pounce-log"]["cpu_us_per_req"]["median"]
            rps = s["pounce-log"]["rps"]["median"] / s["pounce"]["rps"]["median"]
            parts.append(f"{name}: {on - off:+.1f} µs per request ({on:.1f} vs {off:.1f}), req/s {rps:.2f}×")
    return ("Access log on vs off (pounce-log vs pounce): " + "; ".join(parts) + ".") if parts else ""


# --------------------------------------------------------------------------


# --------------------------------------------------------------------------
# callgrind: instructions per static request, access log off and on (user
# space only, nearly immune to the neighbours that move the CPU figures)

CG_SETTINGS = {"--no-access-log": [], "access log (default format, file)": ["--access-log-file", "{tmp}/a.log"]}


def cg_client(port: int, path: str, n: int) -> None:
    """n GETs of path on one keep-alive connection, each answer read whole."""
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=300) as s:
        buf = b""
        for _ in range(n):
            s.sendall(req)
            while b"\r\n\r\n" not in buf:
                chunk = s.recv(1 << 16)
                if not chunk:
                    raise BenchError("server closed the connection")
                buf += chunk
            head, _, buf = buf.partition(b"\r\n\r\n")
            if not head.startswith(b"HTTP/1.1 200"):
                raise BenchError(f"unexpected answer {head[:80]!r}")
            need = int(re.search(rb"(?im)^content-length:\s*(\d+)", head).group(1))
            while len(buf) < need:
                buf += s.recv(1 << 16)
            buf = buf[need:]


def run_callgrind(files: str, tmp: str, n: int, warmup: int) -> list[dict]:
    """Pounce under callgrind: (warmup + n) minus (warmup) requests of /s/1k.bin
    over n, per access-log setting, and the plaintext app's / beside it."""
    from bench.proxy_headers_callgrind import callgrind_server
    venv = os.path.join(REPO, ".venv")
    rows = []
    for what, path in (("static 1k", f"{PREFIX}/1k.bin"), ("plaintext app", "/")):
        for name, opts in CG_SETTINGS.items():
            args = ["--static", f"{PREFIX}={files}"] + [o.format(tmp=tmp) for o in opts]
            if not opts:
                args.append("--no-access-log")
            tag = f"{len(rows)}"
            cg = os.path.join(tmp, "cg")
            os.makedirs(cg, exist_ok=True)
            base = callgrind_server(venv, args, cg, tag + "b", lambda port: cg_client(port, path, warmup))
            full = callgrind_server(venv, args, cg, tag + "f", lambda port: cg_client(port, path, warmup + n))
            rows.append({"request": what, "setting": name, "ir_per_req": (full - base) / n})
            log(f"  callgrind {what:14} {name:34} {rows[-1]['ir_per_req']:10,.0f} Ir/request")
    return rows


def callgrind_markdown(rows: list[dict]) -> str:
    lines = ["| request | access log | instructions/request | the log adds |", "|---|---|---:|---:|"]
    off = {r["request"]: r["ir_per_req"] for r in rows if r["setting"] == "--no-access-log"}
    for r in rows:
        add = ""
        if r["setting"] != "--no-access-log" and r["request"] in off:
            d = r["ir_per_req"] - off[r["request"]]
            add = f"{d:+,.0f} ({d / off[r['request']] * 100:+.0f} %)"
        lines.append(f"| {r['request']} | {r['setting']} | {r['ir_per_req']:,.0f} | {add} |")
    return "\n".join(lines)


def render(path: str) -> str:
    """The tables of a stored result, as the run printed them."""
    return markdown(run.load_result(path, "static", "static_bench.py"))


def setup(servers: list[str]) -> Env:
    if any(s.startswith("pounce") for s in servers) and not os.path.exists(
            os.path.join(REPO, ".venv", "bin", "pounce")):
        raise BenchError(".venv/bin/pounce is missing: run `make build` first")
    for tool, pkg in (("wrk", "wrk"), ("curl", "curl")):
        if not shutil.which(tool):
            apt_install(pkg)
    if "nginx" in servers and not shutil.which("nginx"):
        apt_install("nginx-light")
    if not shutil.which("taskset"):
        raise BenchError("taskset (util-linux) is missing")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("need at least 2 CPUs: server on CPU 1, the client on CPU 0")
    env = Env("host")
    if any(s in ("granian", "starlette") for s in servers):
        ensure_venv(env, HOST_BENCH_VENV, ["requirements-peers.txt"], "python3")
    return env


def nginx_version() -> str:
    p = subprocess.run(["nginx", "-v"], capture_output=True, text=True)
    return (p.stderr or p.stdout).strip().split("/")[-1]


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=DEFAULT_SERVERS, help=f"comma list from: {', '.join(SERVERS)}")
    ap.add_argument("--files", default=",".join(FILES), help=f"comma list from: {', '.join(FILES)}")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds (1g: one transfer each)")
    ap.add_argument("--duration", type=int, default=4, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, default=1, help="seconds of warm-up per server and file "
                                                          "(1g: one transfer; 0: none)")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--transfers", type=int, default=3,
                    help="1g: transfers per round and server, on one keep-alive connection")
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--callgrind", action="store_true",
                    help="also count Pounce's instructions per 1k request, access log off and on "
                         "(valgrind; about a minute)")
    ap.add_argument("--cg-requests", type=int, default=1000)
    ap.add_argument("--render", metavar="RESULT.json",
                    help="only print the tables of a stored result (runs nothing, writes nothing)")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    servers = [s for s in args.servers.split(",") if s]
    names = [f for f in args.files.split(",") if f]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r} (have {', '.join(SERVERS)})")
    for f in names:
        if f not in FILES:
            ap.error(f"unknown file {f!r} (have {', '.join(FILES)})")
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    tmp = tempfile.mkdtemp(prefix="bench-static-")
    os.chmod(tmp, 0o755)  # nginx's worker runs as nobody
    files = os.path.join(tmp, "files")
    os.mkdir(files)
    os.chmod(files, 0o755)
    try:
        env = setup(servers)
        skipped = {s: why for s in servers for why in [unsupported(env, s)] if why}
        for s, why in skipped.items():
            log(f"{s}: not run: {why}")
        live = [s for s in servers if s not in skipped]
        log(f"making {', '.join(names)} in {files}")
        small = make_files(files, names)
        small = small or make_files(files, ["1k"])  # the readiness probe needs a small file
        loads = [loadavg()]
        doc = {"kind": "static", "profile": "static", "python": "host",
               "started": started.isoformat(timespec="seconds"), "machine": machine_info(),
               "command": "python bench/static_bench.py " + " ".join(sys.argv[1:]),
               "servers": servers, "skipped": skipped,
               "method": (f"1 worker per server (nginx: master + 1 worker), `taskset -c {SERVER_CPU}`; "
                          f"1k/100k: `taskset -c {CLIENT_CPU} wrk -t1 -c{args.connections} --latency`, "
                          f"keep-alive, {args.warmup} s warm-up per server, {args.rounds} interleaved "
                          f"rounds of {args.duration} s (order rotated each round); 1g: `taskset -c "
                          f"{CLIENT_CPU} curl -o /dev/null`, {'one warm-up, then ' if args.warmup else ''}"
                          f"{args.transfers} transfers on one connection per server per round, {args.rounds} "
                          "rounds; server CPU from /proc/PID/stat of its process tree; files on the page cache "
                          "(/tmp)."),
               "failure_criteria": run.FAILURE_CRITERIA, "workloads": {}}
        for name in names:
            log(f"file {name} ({FILES[name]:,} bytes)")
            doc["workloads"][name] = run_file(env, name, live, files, tmp, small, args)
            loads += [x["load_after"] for v in doc["workloads"][name]["samples"].values() for x in v]
        if args.callgrind and not skipped.get("pounce") and "pounce" in servers:
            if not shutil.which("valgrind"):
                apt_install("valgrind")
            if "1k" not in names:
                make_files(files, ["1k"])
            doc["callgrind"] = run_callgrind(files, tmp, args.cg_requests, 200)
        vers = run.versions(env, ["pounce"] + (["uvicorn"] if any(s in ("granian", "starlette")
                                                                   for s in servers) else []))
        if "nginx" in servers and shutil.which("nginx"):
            vers["nginx"] = {"nginx": nginx_version()}
        doc["versions"] = vers
        doc["load"] = {"start": loads[0], "end": loadavg(), "max": max(loads)}
        doc["targets"] = targets(doc)
    except BenchError as e:
        log(f"static bench: FAILED: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run.save_result(doc, markdown(doc), args.out, stamp, "static-host",
                    "Static-file bench (issue 16), host CPython")
    return 0


if __name__ == "__main__":
    sys.exit(main())
