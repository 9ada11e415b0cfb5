#!/usr/bin/env python3
"""HTTP/2 benchmark (issue 15): Pounce against hypercorn and granian over
HTTP/2, same run, same apps, one core each.

    make bench-h2                                       # ~2 min
    .venv/bin/python bench/h2_bench.py --rounds 5 --duration 5
    .venv/bin/python bench/h2_bench.py --servers granian,hypercorn --workloads multiplex
    python3 bench/h2_bench.py --render bench/results/<run>-h2-host.json

Servers, each started by bench/run.py's Server (its command line from
run.server_cmd, one worker, uvloop, no access log):
* pounce (.venv, `make build`): `--http auto`, the default, which speaks
  HTTP/2 to a cleartext connection opening with the connection preface and
  offers ALPN h2 over TLS.  Listed as *not run* while this build answers the
  preface with a 505 (before the HTTP/2 transport of issue 15 landed in it).
* hypercorn (pinned in bench/requirements-peers.txt with h2, its HTTP/2
  dependency; .venv-bench): h2c by prior knowledge on a cleartext port and
  ALPN h2 over TLS are both on by default.
* granian (same venv): `--http 2` (HTTP/2 only), the issue's reference.
* pounce-wb1m (only when asked for with --servers): Pounce with
  `--write-buffer-size 1048576` (POUNCE_WRITE_BUFFER_SIZE), the per-stream
  output a send() may queue before it waits, 16× the default.

Workloads:
* multiplex: the plaintext app ("Hello, world!", 13 bytes) under `h2load
  -t1 -c16 -m16` over h2c (prior knowledge): 16 connections with 16
  concurrent streams each; req/s and server CPU µs per request.
* stream: one request at a time on one connection (`h2load -t1 -c1 -m1 -n
  N`) for bench/apps/stream64m.py, 64 MiB in 64 KiB body messages with a
  Content-Length; MB/s (DATA payload over h2load's wall time) and server CPU
  µs per MB.  h2load's windows are 2^30-1, so the client's flow control never
  holds the server back.
* tls-multiplex: multiplex over TLS (h2load offers ALPN h2; a fresh
  self-signed P-256 certificate from run.make_tls_cert for each run).

Method, as bench/run.py and bench/static_bench.py: every server pinned to
CPU 1 (`taskset -c 1`, one worker), h2load (one thread) to CPU 0.  Each
server is checked first (curl over HTTP/2 must get the right body with
http_version 2), warmed up, then the rounds are interleaved (the order
rotated each round); medians (min-max) of req/s (MB/s), server CPU per
request (per MB: utime+stime of the server's process tree from
/proc/PID/stat over the h2load run; loopback softirq time is not in it),
and the server's CPU % (well under 100: h2load or the neighbours set the
pace, so compare CPU per request).  h2load must report the protocol asked
for (h2c, or h2 over TLS).  bench/run.py's failure criteria apply to the
multiplexed runs (h2load's errored requests, reset, closed or timed out, count
as socket errors, its 3xx/4xx/5xx as non-2xx); a stream run fails unless every
request is 2xx with all of its bytes.

Issue 15's target, per core: on multiplex, Pounce's CPU per request at most
granian's ÷ 1.5 (req/s per CPU second ≥ 1.5× granian's).  The issue measured
hypercorn at about 370 µs and granian at about 16 µs per request there.

HTTP/1.1 unchanged (issue 15: "callgrind ±2 %"): --http1-callgrind VENV
also counts the instructions of one HTTP/1.1 plaintext request (keep-alive,
bench/metrics_callgrind.py's method and code: warm-up only and warm-up + n
requests under callgrind, the difference over n; whole processes, and the
_pounce extension's own code) for the Pounce in VENV (a build of main, say
`git archive main | tar -x -C /tmp/main && make -C /tmp/main build`) and for
this tree's.

Results: bench/results/<date>_<time>-h2-host.{json,md} and latest-h2-host.md;
the load average before, during and after is in both.  docs/benchmarks.md
("HTTP/2") has the method and the analysis.
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
from dataclasses import dataclass

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench import run  # noqa: E402  (the path above makes bench importable)
from bench.run import (  # noqa: E402
    CLIENT_CPU, HOST_BENCH_VENV, REPO, RESULTS, SERVER_CPU, BenchError, Env, Server,
    Workload, apt_install, ensure_venv, loadavg, log, machine_info, parse_duration_us,
    tree_cpu_ticks, tree_peak_rss_kb)

CLK = os.sysconf("SC_CLK_TCK")
STREAM_SIZE = 64 << 20  # bench/apps/stream64m.py


@dataclass(frozen=True)
class H2Workload:
    wl: Workload  # the app and how the servers are started (run.Server)
    kind: str  # "rate": h2load -c -m for a duration; "transfer": -c1 -m1 -n N
    size: int  # the response body's bytes
    note: str


def _wl(app: str, size: int, tls: bool = False) -> Workload:
    return Workload(app, expect_len=size, tls=tls, http="2")


WORKLOADS = {
    "multiplex": H2Workload(_wl("plaintext", 13), "rate", 13,
                            "plaintext (13 B), h2c by prior knowledge, `h2load -c16 -m16`"),
    "stream": H2Workload(_wl("stream64m", STREAM_SIZE), "transfer", STREAM_SIZE,
                         "64 MiB in 64 KiB body messages, h2c, `h2load -c1 -m1`, one request at a time"),
    "tls-multiplex": H2Workload(_wl("plaintext", 13, tls=True), "rate", 13,
                                "plaintext (13 B) over TLS (ALPN h2), `h2load -c16 -m16`"),
}
SERVERS = ("pounce", "hypercorn", "granian", "pounce-wb1m")
DEFAULT_SERVERS = "pounce,hypercorn,granian"
# Pounce variants: the same server with settings through POUNCE_<NAME>.
VARIANTS = {"pounce-wb1m": {"POUNCE_WRITE_BUFFER_SIZE": str(1 << 20)}}
NOTES = {
    "pounce": "`--http auto` (default): prior knowledge on cleartext, ALPN h2 over TLS",
    "hypercorn": "uvloop worker, h2 4.4.1; h2c by prior knowledge and ALPN h2 by default",
    "granian": "`--http 2`, uvloop",
    "pounce-wb1m": "as pounce, with `--write-buffer-size 1048576` (16× the default)",
}
# (workload, peer, goal, kind): issue 15's target, per core.
GOALS = (("multiplex", "granian", 1.5, "cpu"),)


# --------------------------------------------------------------------------
# Servers: run.Server starts them (pinned, in their own process group); the
# readiness check is over HTTP/2 here, with curl.


def url(srv: Server, path: str = "/") -> str:
    return f"{'https' if srv.tls else 'http'}://127.0.0.1:{srv.port}{path}"


def curl_h2(srv: Server, out: str, timeout: float) -> tuple[int, str, int]:
    """One GET over HTTP/2 (prior knowledge on cleartext, ALPN over TLS,
    the run's certificate trusted): (status, http_version, body bytes)."""
    mode = ["--http2", "--cacert", srv.tls.host_cert] if srv.tls else ["--http2-prior-knowledge"]
    p = subprocess.run(["curl", "-s", *mode, "--max-time", str(timeout), "-o", out,
                        "-w", "%{http_code} %{http_version} %{size_download}", url(srv)],
                       capture_output=True, text=True, timeout=timeout + 10)
    try:
        code, version, size = p.stdout.split()
        return int(code), version, int(size)
    except ValueError:
        raise BenchError(f"curl exit {p.returncode}: {p.stdout!r} {p.stderr.strip()!r}") from None


def answers_preface_505(port: int) -> bool:
    """Whether the server answers the HTTP/2 connection preface as an
    HTTP/1.1 request with 505 (Pounce before its HTTP/2 transport)."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
            s.sendall(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n")
            return s.recv(64).startswith(b"HTTP/1.1 505")
    except OSError:
        return False


class NotRun(Exception):
    """The server cannot speak HTTP/2 in this build."""


def wait_ready_h2(srv: Server, h2: H2Workload, tmp: str, timeout: float = 60.0) -> None:
    """curl over HTTP/2 must get 200, http_version 2 and the whole body
    (the plaintext app's exact bytes)."""
    deadline = time.monotonic() + timeout
    out = os.path.join(tmp, f"{srv.name}.body")
    last = "no connection"
    while time.monotonic() < deadline:
        if srv.proc.poll() is not None:
            raise BenchError(f"{srv.name} exited with status {srv.proc.returncode} before serving\n"
                             f"command: {' '.join(srv.cmd)}\n--- output ---\n{srv.output()}")
        try:
            code, version, size = curl_h2(srv, out, 30.0)
            if code == 200 and version == "2" and size == h2.size:
                if h2.size != 13:
                    return
                with open(out, "rb") as f:
                    body = f.read()
                if body == b"Hello, world!":
                    return
                last = f"body {body[:40]!r}"
            elif srv.name.startswith("pounce") and srv.tls and code == 200 and version == "1.1":
                raise NotRun("this build does not offer ALPN h2: the HTTP/2 transport (issue 15) "
                             "has not landed in it")
            else:
                last = f"status {code}, HTTP/{version}, {size} bytes (want 200, HTTP/2, {h2.size})"
        except (BenchError, subprocess.TimeoutExpired) as e:
            last = str(e)
        if srv.name.startswith("pounce") and not srv.tls and answers_preface_505(srv.port):
            raise NotRun("this build answers the HTTP/2 preface with 505: the HTTP/2 transport "
                         "(issue 15) has not landed in it")
        time.sleep(0.2)
    raise BenchError(f"{srv.name} did not answer over HTTP/2 within {timeout:.0f}s ({last})\n"
                     f"command: {' '.join(srv.cmd)}\n--- output ---\n{srv.output()}")


# --------------------------------------------------------------------------
# h2load


def h2load(srv: Server, args: list[str], timeout: float) -> str:
    cmd = ["taskset", "-c", CLIENT_CPU, "h2load", "-t1", *args, url(srv)]
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    if p.returncode != 0 or "finished in" not in p.stdout:
        raise BenchError(f"{srv.name}: h2load failed ({p.returncode}): {(p.stderr or p.stdout)[-1500:]}")
    return p.stdout


SIZE_UNITS = {"B": 1, "KB": 1 << 10, "MB": 1 << 20, "GB": 1 << 30}


def parse_h2load(out: str) -> dict:
    """The figures of one h2load run (its summary lines)."""
    fin = re.search(r"^finished in ([\d.]+(?:us|ms|s)), ([\d.]+) req/s", out, re.M)
    req = re.search(r"^requests: (\d+) total, (\d+) started, (\d+) done, (\d+) succeeded, (\d+) failed, "
                    r"(\d+) errored, (\d+) timeout", out, re.M)
    codes = re.search(r"^status codes: (\d+) 2xx, (\d+) 3xx, (\d+) 4xx, (\d+) 5xx", out, re.M)
    traffic = re.search(r"^traffic: .*?\((\d+)\) total, .*?\((\d+)\) headers.*?, .*?\((\d+)\) data", out, re.M)
    lat = re.search(r"^time for request:\s+(\S+)\s+(\S+)\s+(\S+)", out, re.M)
    proto = re.search(r"^Application protocol: (\S+)", out, re.M)
    if not (fin and req and codes and traffic):
        raise BenchError(f"unexpected h2load output:\n{out[-2000:]}")
    done, ok, failed, errored, timeouts = (int(req.group(i)) for i in (3, 4, 5, 6, 7))
    res = {"seconds": parse_duration_us(fin.group(1)) / 1e6, "rps": float(fin.group(2)),
           "requests": done, "succeeded": ok, "started": int(req.group(2)),
           "status_2xx": int(codes.group(1)),
           # bench/run.py's names, so that run.judge applies.  h2load counts a
           # timed-out request as errored, and an errored one (reset, closed,
           # timed out) as failed too, beside the ones failed by their status:
           # the errored ones are the socket errors, the statuses the rest.
           "failed": failed, "errored": errored, "timed_out": timeouts,
           "socket_errors": errored,
           "socket_error_kinds": {"errored": errored, "of which timed out": timeouts},
           "non_2xx": sum(int(codes.group(i)) for i in (2, 3, 4)),
           "bytes_total": int(traffic.group(1)), "bytes_headers": int(traffic.group(2)),
           "bytes_data": int(traffic.group(3)), "protocol": proto.group(1) if proto else None}
    if lat:
        res["lat_min_us"], res["lat_max_us"], res["lat_mean_us"] = (parse_duration_us(x) for x in lat.groups())
    return res


def check_protocol(srv: Server, res: dict) -> None:
    want = "h2" if srv.tls else "h2c"
    if res["protocol"] != want:
        raise BenchError(f"{srv.name}: h2load spoke {res['protocol']!r}, not {want}")


def measure_rate(srv: Server, duration: int, conns: int, streams: int) -> dict:
    t0 = tree_cpu_ticks(srv.proc.pid)
    out = h2load(srv, [f"-c{conns}", f"-m{streams}", "-D", str(duration)], duration + 30)
    t1 = tree_cpu_ticks(srv.proc.pid)
    if srv.proc.poll() is not None:
        raise BenchError(f"{srv.name} died during the run:\n{srv.output()}")
    res = parse_h2load(out)
    check_protocol(srv, res)
    if res["requests"] == 0:
        raise BenchError(f"{srv.name}: h2load completed no request\n{out[-1500:]}")
    cpu_s = (t1 - t0) / CLK
    res["cpu_us_per_req"] = cpu_s / res["requests"] * 1e6
    res["cpu_pct"] = cpu_s / res["seconds"] * 100
    res["load_after"] = loadavg()
    return res


def measure_transfer(srv: Server, n: int, size: int) -> dict:
    """n requests of the big body, one after the other on one connection."""
    t0 = tree_cpu_ticks(srv.proc.pid)
    out = h2load(srv, ["-c1", "-m1", "-n", str(n)], 60 * n + 30)
    t1 = tree_cpu_ticks(srv.proc.pid)
    if srv.proc.poll() is not None:
        raise BenchError(f"{srv.name} died during the transfer:\n{srv.output()}")
    res = parse_h2load(out)
    check_protocol(srv, res)
    if res["succeeded"] != n or res["status_2xx"] != n or res["bytes_data"] != n * size:
        raise BenchError(f"{srv.name}: {res['succeeded']} of {n} requests succeeded, {res['status_2xx']} 2xx, "
                         f"{res['bytes_data']:,} bytes of DATA (want {n * size:,})")
    cpu_s = (t1 - t0) / CLK
    mb = res["bytes_data"] / 1e6
    res.update({"transfers": n, "mb_per_s": mb / res["seconds"], "cpu_us_per_mb": cpu_s * 1e6 / mb,
                "cpu_pct": cpu_s / res["seconds"] * 100, "load_after": loadavg()})
    return res


def stats(vals: list[float]) -> dict:
    return {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}


RATE_KEYS = ("rps", "cpu_us_per_req", "cpu_pct", "lat_mean_us", "lat_max_us")
TRANSFER_KEYS = ("mb_per_s", "cpu_us_per_mb", "cpu_pct")


def summarize(kind: str, samples: list[dict]) -> dict:
    keys = RATE_KEYS if kind == "rate" else TRANSFER_KEYS
    out = {k: stats([s[k] for s in samples]) for k in keys}
    out["errors"] = sum(s["socket_errors"] + s["non_2xx"] for s in samples)
    return out


# --------------------------------------------------------------------------
# One workload: every server started, checked, warmed up, interleaved rounds


def run_workload(env: Env, name: str, servers: list[str], tmp: str, args) -> dict:
    h2 = WORKLOADS[name]
    started: list[Server] = []
    samples: dict[str, list[dict]] = {s: [] for s in servers}
    failed: dict[str, str] = {}
    skipped: dict[str, str] = {}
    rss: dict[str, int] = {}
    tls, tls_dir = None, None

    def drop(srv: Server, err: Exception) -> None:
        if isinstance(err, NotRun):
            log(f"  {name}: {srv.name} not run: {err}")
            skipped[srv.name] = str(err)
        else:
            log(f"  {name}: {srv.name} FAILED, left out: {err}")
            failed[srv.name] = str(err).splitlines()[0][:300]
        samples.pop(srv.name, None)
        started.remove(srv)
        srv.stop()

    def one(srv: Server, seconds: int, warmup: bool = False) -> dict:
        if h2.kind == "transfer":
            return measure_transfer(srv, 1 if warmup else args.transfers, h2.size)
        return measure_rate(srv, seconds, args.connections, args.streams)

    try:
        if h2.wl.tls:
            tls, tls_dir = run.make_tls_cert(env, "p256")
        for s in servers:
            srv = Server(env, "pounce" if s in VARIANTS else s, h2.wl, SERVER_CPU, tls=tls,
                         extra_env=VARIANTS.get(s))
            srv.name = s
            started.append(srv)
        for srv in list(started):
            try:
                wait_ready_h2(srv, h2, tmp)
                if args.warmup > 0:
                    one(srv, args.warmup, warmup=True)
            except (BenchError, NotRun) as e:
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
                if h2.kind == "transfer":
                    log(f"  {name:13} r{rnd + 1} {srv.name:9} {res['mb_per_s']:>8,.0f} MB/s  "
                        f"{res['cpu_us_per_mb']:8.0f} µs CPU/MB  cpu {res['cpu_pct']:3.0f}%  "
                        f"load {res['load_after']:.2f}")
                else:
                    warn = (f"  ({res['socket_errors']} errored, {res['non_2xx']} non-2xx)"
                            if res["socket_errors"] or res["non_2xx"] else "")
                    log(f"  {name:13} r{rnd + 1} {srv.name:9} {res['rps']:>9,.0f} req/s  mean "
                        f"{res['lat_mean_us'] / 1000:6.2f} ms  {res['cpu_us_per_req']:7.1f} µs CPU/req  "
                        f"cpu {res['cpu_pct']:3.0f}%  load {res['load_after']:.2f}{warn}")
        for srv in started:
            rss[srv.name] = tree_peak_rss_kb(srv.proc.pid)
    finally:
        for srv in started:
            srv.stop()
        if tls_dir:
            shutil.rmtree(tls_dir, ignore_errors=True)
    res = {"kind": h2.kind, "size": h2.size, "note": h2.note, "samples": samples, "failed": failed,
           "skipped": skipped, "peak_rss_kb": rss}
    if h2.kind == "rate":
        # bench/run.py's failure criteria (errors over 1 %, stalls).
        for s, why in run.judge(name, {"samples": samples}).items():
            if s not in failed:
                log(f"  {name}: {s} FAILED, left out of the summary and the ratios: {why}")
                failed[s] = why
    res["summary"] = {s: summarize(h2.kind, v) for s, v in samples.items() if v and s not in failed}
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
        label = f"{wl}: pounce req/s per CPU second ≥ {goal:g}× {peer}'s"
        gone = {s: why for s in ("pounce", peer) for why in [res["failed"].get(s) or res["skipped"].get(s)] if why}
        if gone or "pounce" not in res["summary"] or peer not in res["summary"]:
            why = "; ".join(f"{s} {'failed' if s in res['failed'] else 'not run'}" for s in gone)
            why = why or f"{' and '.join(s for s in ('pounce', peer) if s not in doc['servers'])} not in --servers"
            out.append({"target": label, "met": None, "value": f"not measured: {why}"})
            continue
        me, them = res["summary"]["pounce"], res["summary"][peer]
        cpu = them["cpu_us_per_req"]["median"] / me["cpu_us_per_req"]["median"]
        rps = me["rps"]["median"] / them["rps"]["median"]
        value = (f"{cpu:.2f}× ({me['cpu_us_per_req']['median']:.1f} vs {them['cpu_us_per_req']['median']:.1f} "
                 f"µs of server CPU per request; req/s {rps:.2f}×)")
        out.append({"target": label, "met": cpu >= goal, "value": value, "ratio": cpu})
    return out


def markdown(doc: dict) -> str:
    w = doc["workloads"]
    lines = []
    rate = [(n, r) for n, r in w.items() if r["kind"] == "rate"]
    if rate:
        lines += ["| workload | server | req/s | mean ms | max ms | server CPU µs/request | server CPU % "
                  "| peak RSS MB | pounce × req/s | pounce × CPU |",
                  "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
        for name, res in rate:
            ref = res["summary"].get("pounce")
            for s, m in res["summary"].items():
                ratio = cpu = ""
                if ref and s != "pounce":
                    ratio = f"{ref['rps']['median'] / m['rps']['median']:.2f}"
                    cpu = f"{m['cpu_us_per_req']['median'] / ref['cpu_us_per_req']['median']:.2f}"
                err = f" ⚠{m['errors']} err" if m["errors"] else ""
                r, c = m["rps"], m["cpu_us_per_req"]
                lines.append(f"| {name} | {s}{err} | {r['median']:,.0f} ({r['min']:,.0f}–{r['max']:,.0f}) | "
                             f"{m['lat_mean_us']['median'] / 1000:.2f} | {m['lat_max_us']['median'] / 1000:.2f} | "
                             f"{c['median']:.1f} ({c['min']:.1f}–{c['max']:.1f}) | {m['cpu_pct']['median']:.0f} | "
                             f"{res['peak_rss_kb'].get(s, 0) / 1024:.0f} | {ratio} | {cpu} |")
            for s, why in res["failed"].items():
                lines.append(f"| {name} | {s} | **failed**: {why} | – | – | – | – | – | – | – |")
            for s, why in res["skipped"].items():
                lines.append(f"| {name} | {s} | **not run**: {why} | – | – | – | – | – | – | – |")
    big = [(n, r) for n, r in w.items() if r["kind"] == "transfer"]
    if big:
        lines += ["", "| workload | server | MB/s | server CPU µs/MB | server CPU % | peak RSS MB "
                  "| pounce × MB/s | pounce × CPU |", "|---|---|---:|---:|---:|---:|---:|---:|"]
        for name, res in big:
            ref = res["summary"].get("pounce")
            for s, m in res["summary"].items():
                ratio = cpu = ""
                if ref and s != "pounce":
                    ratio = f"{ref['mb_per_s']['median'] / m['mb_per_s']['median']:.2f}"
                    cpu = f"{m['cpu_us_per_mb']['median'] / ref['cpu_us_per_mb']['median']:.2f}"
                b, c = m["mb_per_s"], m["cpu_us_per_mb"]
                lines.append(f"| {name} | {s} | {b['median']:,.0f} ({b['min']:,.0f}–{b['max']:,.0f}) | "
                             f"{c['median']:,.0f} ({c['min']:,.0f}–{c['max']:,.0f}) | {m['cpu_pct']['median']:.0f} | "
                             f"{res['peak_rss_kb'].get(s, 0) / 1024:.0f} | {ratio} | {cpu} |")
            for s, why in res["failed"].items():
                lines.append(f"| {name} | {s} | **failed**: {why} | – | – | – | – | – |")
            for s, why in res["skipped"].items():
                lines.append(f"| {name} | {s} | **not run**: {why} | – | – | – | – | – |")
    lines = lines[1:] if lines and lines[0] == "" else lines
    lines += ["", "Median over rounds, (min–max) in brackets.  *mean ms*, *max ms*: h2load's time for a "
              "request (it gives no percentiles), the median over rounds of each round's mean and maximum.  "
              "*server CPU %*: the server's CPU time over h2load's wall time (100 = its one core busy; well "
              "under 100 means h2load or the neighbours set the pace: compare CPU per request there).  "
              "*pounce × req/s* (× MB/s) = Pounce's ÷ that server's; *pounce × CPU* = that server's CPU per "
              "request (per MB) ÷ Pounce's (both > 1 when Pounce is better).  h2load's errored requests "
              "(reset, closed or timed out) count as socket errors.  " + run.FAILURE_CRITERIA + "  A stream run fails "
              "unless every request is 2xx with every byte.  Workloads: "
              + "; ".join(f"**{n}** {r['note']}" for n, r in w.items()) + ".  Servers: "
              + "; ".join(f"**{s}** {NOTES[s]}" for s in doc["servers"]) + "."]
    tt = targets(doc)
    if tt:
        verdict = {True: "met", False: "**missed**", None: "not measured"}
        lines += ["", "| target (issue 15, per core) | this run | |", "|---|---|---|"]
        lines += [f"| {t['target']} | {t['value']} | {verdict[t['met']]} |" for t in tt]
    if doc.get("http1_callgrind"):
        lines += ["", callgrind_markdown(doc["http1_callgrind"])]
    return "\n".join(lines)


# --------------------------------------------------------------------------
# HTTP/1.1 unchanged: instructions per plaintext request over HTTP/1.1 (user
# space, callgrind, so nearly immune to the neighbours), this tree against
# another build, by bench/metrics_callgrind.py's method and code.


def run_http1_callgrind(venvs: dict[str, str], n: int, warmup: int) -> list[dict]:
    """{label: venv}: each venv's Pounce under callgrind, warm-up only and
    warm-up + n keep-alive GETs of the plaintext app; (difference) / n, the
    whole processes and the _pounce extension's own code."""
    from bench.metrics_callgrind import extension_cost
    from bench.proxy_headers_callgrind import total
    rows = []
    with tempfile.TemporaryDirectory(prefix="bench-h2-cg-") as outdir:
        for i, (label, venv) in enumerate(venvs.items()):
            base = total(venv, [], b"", warmup, outdir, f"{i}-b")
            full = total(venv, [], b"", warmup + n, outdir, f"{i}-f")
            ext = extension_cost(outdir, f"{i}-f") - extension_cost(outdir, f"{i}-b")
            rows.append({"build": label, "venv": venv, "ir_per_req": (full - base) / n, "ext_per_req": ext / n})
            log(f"  callgrind HTTP/1.1 plaintext {label:28} {rows[-1]['ir_per_req']:10,.0f} Ir/request "
                f"({rows[-1]['ext_per_req']:,.0f} in _pounce)")
    return rows


def callgrind_markdown(rows: list[dict]) -> str:
    lines = ["| HTTP/1.1 plaintext, build | instructions/request | of which in _pounce | vs the first |",
             "|---|---:|---:|---:|"]
    ref = rows[0]
    for r in rows:
        d = "" if r is ref else (f"{(r['ir_per_req'] / ref['ir_per_req'] - 1) * 100:+.2f} % "
                                 f"({(r['ext_per_req'] / ref['ext_per_req'] - 1) * 100:+.2f} % in _pounce)")
        lines.append(f"| {r['build']} | {r['ir_per_req']:,.0f} | {r['ext_per_req']:,.0f} | {d} |")
    return "\n".join(lines)


def render(path: str) -> str:
    """The tables of a stored result, as the run printed them."""
    return markdown(run.load_result(path, "h2", "h2_bench.py"))


# --------------------------------------------------------------------------


def setup(servers: list[str]) -> Env:
    pounce = os.path.join(REPO, ".venv", "bin", "pounce")
    if any(s.startswith("pounce") for s in servers) and not os.path.exists(pounce):
        raise BenchError(".venv/bin/pounce is missing: run `make build` first")
    for tool, pkg in (("h2load", "nghttp2-client"), ("curl", "curl")):
        if not shutil.which(tool):
            apt_install(pkg)
    if not shutil.which("taskset"):
        raise BenchError("taskset (util-linux) is missing")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("need at least 2 CPUs: server on CPU 1, h2load on CPU 0")
    env = Env("host")
    if any(not s.startswith("pounce") for s in servers):
        ensure_venv(env, HOST_BENCH_VENV, ["requirements-peers.txt"], "python3")
    return env


def tool_versions(env: Env, servers: list[str]) -> dict:
    vers = run.versions(env, servers)
    if "peers" in vers:
        code = "import importlib.metadata as m; print(m.version('h2'))"
        try:
            vers["peers"]["h2"] = env.run([env.bin("peers", "python"), "-c", code], "h2 version").strip()
        except BenchError as e:
            vers["peers"]["h2"] = str(e)[:100]
    p = subprocess.run(["h2load", "--version"], capture_output=True, text=True)
    vers["client"] = {"h2load": (p.stdout.strip().split("/") + ["?"])[1]}
    return vers


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--servers", default=DEFAULT_SERVERS, help=f"comma list from: {', '.join(SERVERS)}")
    ap.add_argument("--workloads", default="multiplex,stream,tls-multiplex",
                    help=f"comma list from: {', '.join(WORKLOADS)}")
    ap.add_argument("--rounds", type=int, default=3, help="interleaved rounds")
    ap.add_argument("--duration", type=int, default=4, help="seconds per multiplexed h2load run")
    ap.add_argument("--warmup", type=int, default=1,
                    help="seconds of warm-up per server and workload (stream: one request; 0: none)")
    ap.add_argument("--connections", type=int, default=16, help="h2load -c of the multiplexed workloads")
    ap.add_argument("--streams", type=int, default=16, help="h2load -m of the multiplexed workloads")
    ap.add_argument("--transfers", type=int, default=8,
                    help="stream: 64 MiB requests per round and server, one after the other on one connection")
    ap.add_argument("--http1-callgrind", metavar="VENV",
                    help="also count instructions per HTTP/1.1 plaintext request of the Pounce in VENV (e.g. "
                         "a build of main) and of this tree's .venv under callgrind (about 3 minutes)")
    ap.add_argument("--cg-requests", type=int, default=2000)
    ap.add_argument("--out", default=RESULTS)
    ap.add_argument("--render", metavar="RESULT.json",
                    help="only print the tables of a stored result (runs nothing, writes nothing)")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    servers = [s for s in args.servers.split(",") if s]
    names = [n for n in args.workloads.split(",") if n]
    for s in servers:
        if s not in SERVERS:
            ap.error(f"unknown server {s!r} (have {', '.join(SERVERS)})")
    for n in names:
        if n not in WORKLOADS:
            ap.error(f"unknown workload {n!r} (have {', '.join(WORKLOADS)})")
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    tmp = tempfile.mkdtemp(prefix="bench-h2-")
    try:
        env = setup(servers)
        loads = [loadavg()]
        doc = {"kind": "h2", "profile": "h2", "python": "host",
               "started": started.isoformat(timespec="seconds"), "machine": machine_info(),
               "command": "python bench/h2_bench.py " + " ".join(sys.argv[1:]),
               "servers": servers,
               "method": (f"1 worker per server, `taskset -c {SERVER_CPU}`; `taskset -c {CLIENT_CPU} h2load "
                          f"-t1`; multiplexed: `-c{args.connections} -m{args.streams} -D {args.duration}`, "
                          f"{args.warmup} s warm-up per server, {args.rounds} interleaved rounds (order rotated "
                          f"each round); stream: `-c1 -m1 -n {args.transfers}` per server per round"
                          f"{' after a one-request warm-up' if args.warmup else ''}; each server checked with "
                          "curl over HTTP/2 first; server CPU from /proc/PID/stat of its process tree."),
               "failure_criteria": run.FAILURE_CRITERIA, "workloads": {}}
        for name in names:
            log(f"workload {name}: {WORKLOADS[name].note}")
            doc["workloads"][name] = run_workload(env, name, servers, tmp, args)
            loads += [x["load_after"] for v in doc["workloads"][name]["samples"].values() for x in v]
        # The load of the h2load runs (callgrind's own comes after).
        doc["load"] = {"start": loads[0], "end": loadavg(), "max": max(loads)}
        if args.http1_callgrind:
            if not shutil.which("valgrind"):
                apt_install("valgrind")
            log("HTTP/1.1 unchanged? callgrind, plaintext app")
            doc["http1_callgrind"] = run_http1_callgrind(
                {f"{args.http1_callgrind} (base)": os.path.abspath(args.http1_callgrind),
                 f".venv (this tree, {doc['machine']['commit']})": os.path.join(REPO, ".venv")},
                args.cg_requests, 200)
        doc["versions"] = tool_versions(env, [s for s in servers if s not in VARIANTS])
        doc["targets"] = targets(doc)
    except BenchError as e:
        log(f"h2 bench: FAILED: {e}")
        return 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    run.save_result(doc, markdown(doc), args.out, stamp, "h2-host",
                    "HTTP/2 bench (issue 15), host CPython")
    return 0


if __name__ == "__main__":
    sys.exit(main())
