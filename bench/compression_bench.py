#!/usr/bin/env python3
"""Server-level compression benchmark (issue 6): Pounce compressing a 64 KB
JSON response with zstd, br and gzip, versus the same app behind Starlette's
GZipMiddleware under uvicorn (httptools + uvloop), in the same run.

    make bench-compression                                  # quick, ~1.5 min
    .venv/bin/python bench/compression_bench.py --profile full

Servers run on the host's CPython: Pounce from .venv (`make build`), uvicorn
from .venv-bench (bench/requirements-peers.txt, installed here when missing,
as bench/run.py does).  One worker each.

Both servers run bench/apps/json64k_gzip.py: Pounce on its /raw paths (the
server compresses), uvicorn on the GZipMiddleware paths.  Two bodies: "dumps"
(json.dumps per request, as bench/apps/json64k.py) and "static" (serialised
once), where no app cost hides the server's and the codec's.

Method: the server is pinned to CPU 1 (`taskset -c 1`), wrk to CPU 0
(`wrk -t1 -c64 --latency -H 'Accept-Encoding: <codec>'`).  Every case (server
x encoding) is checked first: status 200, the expected Content-Encoding, and
a body that an independent decoder (zlib, zstandard, brotli) turns back into
the identity JSON; its wire size is the "bytes per response".  Each server is
warmed up per case, then the rounds are interleaved (every case once per
round, the order rotated each round) and we report medians (min-max) of
req/s, p50/p99, and server CPU per request: utime+stime of the server's
process tree from /proc/PID/stat over the wrk run, divided by the requests
wrk completed.  Loopback softirq time is not in it.

Results: bench/results/<date>_<time>-compression.{json,md} and
latest-compression.md; the table goes into docs/compression.md.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import re
import socket
import statistics
import subprocess
import sys
import zlib

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.run import (  # noqa: E402  (the path above makes bench importable)
    CLIENT_CPU, HOST_BENCH_VENV, REPO, RESULTS, SERVER_CPU, BenchError, Env, Server,
    Workload, apt_install, dechunk, ensure_venv, loadavg, log, machine_info, parse_wrk,
    tree_cpu_ticks, versions, write_results)

JSON_LEN = 65533  # bench/apps/json64k.py
# Both servers run bench/apps/json64k_gzip.py; its path picks the variant.
WORKLOAD = Workload("json64k_gzip", path="/raw", expect_len=JSON_LEN)

# (server, label, path, Accept-Encoding or None).  Pounce's levels are its
# defaults (zstd 3, brotli 4, gzip 6); GZipMiddleware's default is level 9.
# "dumps": json.dumps per request (bench/apps/json64k.py, ~0.3 ms of app
# time on this machine class); "static": the body made once, so the
# server's own cost (and the compression) is what remains.
CASES = []
for _body, _raw, _mw in (("dumps", "/raw", ""), ("static", "/raw/static", "/static")):
    CASES += [
        ("pounce", f"{_body}, identity", _raw, None),
        ("pounce", f"{_body}, zstd (level 3)", _raw, "zstd"),
        ("pounce", f"{_body}, br (quality 4)", _raw, "br"),
        ("pounce", f"{_body}, gzip (level 6)", _raw, "gzip"),
        ("uvicorn", f"{_body}, identity", _mw or "/", None),
        ("uvicorn", f"{_body}, GZipMiddleware (level 9)", _mw or "/", "gzip"),
        ("uvicorn", f"{_body}, GZipMiddleware (level 6)", f"{_mw}/level6", "gzip"),
    ]

PROFILES = {
    "quick": {"rounds": 3, "duration": 2, "warmup": 1},
    "full": {"rounds": 5, "duration": 5, "warmup": 2},
}


def case_id(c) -> str:
    return f"{c[0]}/{c[1]}"


def decode(encoding: str | None, body: bytes) -> bytes:
    """The identity body, decoded by a library that is not Pounce's."""
    if encoding is None:
        return body
    if encoding == "gzip":
        return zlib.decompress(body, 31)
    if encoding == "zstd":
        try:
            import zstandard
        except ImportError as e:
            raise BenchError("the zstandard package is missing: run with .venv/bin/python "
                             "(make build installs it)") from e
        return zstandard.ZstdDecompressor().decompressobj().decompress(body)
    if encoding == "br":
        try:
            import brotli
        except ImportError as e:
            raise BenchError("the brotli package is missing: run with .venv/bin/python") from e
        return brotli.decompress(body)
    raise BenchError(f"unknown encoding {encoding!r}")


def fetch(port: int, path: str, accept: str | None) -> tuple[int, dict, bytes]:
    """One GET on a fresh connection: (status, lower-cased headers, wire body de-chunked)."""
    hdr = f"Accept-Encoding: {accept}\r\n" if accept else ""
    req = f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\n{hdr}Connection: close\r\n\r\n".encode()
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(req)
        data = b""
        while chunk := s.recv(1 << 16):
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    m = re.match(r"HTTP/1\.[01] (\d{3})", lines[0])
    if not m:
        raise BenchError(f"not an HTTP response: {data[:80]!r}")
    headers = {}
    for ln in lines[1:]:
        k, _, v = ln.partition(":")
        headers[k.strip().lower()] = v.strip()
    if headers.get("transfer-encoding", "").lower() == "chunked":
        body = dechunk(body)
    return int(m.group(1)), headers, body


def check_case(port: int, case, reference: bytes) -> dict:
    """Verify one case's answer; returns its sizes."""
    server, label, path, accept = case
    status, headers, body = fetch(port, path, accept)
    if status != 200:
        raise BenchError(f"{case_id(case)}: status {status}")
    got = headers.get("content-encoding")
    if got != accept:
        raise BenchError(f"{case_id(case)}: Content-Encoding {got!r}, want {accept!r}")
    plain = decode(accept, body)
    if json.loads(plain) != json.loads(reference):
        raise BenchError(f"{case_id(case)}: decoded body differs from the identity JSON")
    return {"wire_bytes": len(body), "ratio": len(plain) / len(body),
            "chunked": headers.get("transfer-encoding", "") == "chunked",
            "vary": headers.get("vary", "")}


def run_wrk(port: int, path: str, accept: str | None, duration: int, connections: int) -> str:
    cmd = ["taskset", "-c", CLIENT_CPU, "wrk", "-t1", f"-c{connections}", f"-d{duration}s",
           "--latency", "--timeout", "5s"]
    if accept:
        cmd += ["-H", f"Accept-Encoding: {accept}"]
    cmd.append(f"http://127.0.0.1:{port}{path}")
    p = subprocess.run(cmd, capture_output=True, text=True, timeout=duration + 30)
    if p.returncode != 0:
        raise BenchError(f"wrk failed ({p.returncode}): {p.stderr or p.stdout}")
    return p.stdout


def measure(srv: Server, case, duration: int, connections: int) -> dict:
    t0 = tree_cpu_ticks(srv.proc.pid)
    out = run_wrk(srv.port, case[2], case[3], duration, connections)
    t1 = tree_cpu_ticks(srv.proc.pid)
    if srv.proc.poll() is not None:
        raise BenchError(f"{srv.name} died during {case_id(case)}:\n{srv.output()}")
    res = parse_wrk(out)
    if res["requests"] == 0:
        raise BenchError(f"{case_id(case)}: wrk completed no request\n{out}")
    cpu_s = (t1 - t0) / os.sysconf("SC_CLK_TCK")
    res["cpu_us_per_req"] = cpu_s / res["requests"] * 1e6
    res["cpu_pct"] = cpu_s / duration * 100
    res["load_after"] = loadavg()
    return res


def summarize(samples: list[dict]) -> dict:
    out = {}
    for key in ("rps", "p50_us", "p99_us", "cpu_us_per_req", "cpu_pct"):
        vals = [s[key] for s in samples]
        out[key] = {"median": statistics.median(vals), "min": min(vals), "max": max(vals)}
    out["errors"] = sum(s["socket_errors"] + s["non_2xx"] for s in samples)
    return out


def markdown(doc: dict) -> str:
    rows = doc["cases"]
    lines = ["| server | encoding | req/s | p50 ms | p99 ms | server CPU µs/req | server CPU % "
             "| bytes/response | ratio |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        m = r["summary"]
        err = f" ⚠{m['errors']} err" if m["errors"] else ""
        # Under 90% busy, wrk (or neighbours on CPU 0) set the pace.
        mark = " †" if m["cpu_pct"]["median"] < 90 else ""
        lines.append(
            f"| {r['server']}{err} | {r['label']} | {m['rps']['median']:,.0f}{mark} "
            f"({m['rps']['min']:,.0f}–{m['rps']['max']:,.0f}) | {m['p50_us']['median'] / 1000:.2f} | "
            f"{m['p99_us']['median'] / 1000:.2f} | {m['cpu_us_per_req']['median']:.0f} "
            f"({m['cpu_us_per_req']['min']:.0f}–{m['cpu_us_per_req']['max']:.0f}) | "
            f"{m['cpu_pct']['median']:.0f} | {r['wire_bytes']:,} | {r['ratio']:.2f} |")
    by = {(r["server"], r["label"]): r["summary"] for r in rows}
    pairs = []
    for body in ("dumps", "static"):
        pairs.append(((f"{body}, identity"), f"{body}, identity"))
        for label in ("zstd (level 3)", "br (quality 4)", "gzip (level 6)"):
            pairs.append((f"{body}, {label}", f"{body}, GZipMiddleware (level 9)"))
        pairs.append((f"{body}, gzip (level 6)", f"{body}, GZipMiddleware (level 6)"))
    lines += ["", "| Pounce | uvicorn | req/s × | CPU per request ÷ |", "|---|---|---:|---:|"]
    for a, b in pairs:
        a, b = ("pounce", a), ("uvicorn", b)
        if a in by and b in by:
            lines.append(f"| {a[1]} | {b[1]} | {by[a]['rps']['median'] / by[b]['rps']['median']:.2f} | "
                         f"{by[b]['cpu_us_per_req']['median'] / by[a]['cpu_us_per_req']['median']:.2f} |")
    lines += ["", "Median over rounds, (min–max) in brackets.  *server CPU %*: the server's CPU time "
              "over the wrk run's wall time (100 = its one CPU busy; † marks a median under 90%: wrk or other "
              "processes on CPU 0 set the pace, so compare CPU per request there).  *bytes/response*: the body on "
              "the wire (de-chunked); *ratio*: 65,533 ÷ that.  *req/s ×*: Pounce ÷ uvicorn; *CPU per "
              "request ÷*: uvicorn's ÷ Pounce's (both > 1 when Pounce is better)."]
    return "\n".join(lines)


def setup() -> Env:
    if not os.path.exists(os.path.join(REPO, ".venv", "bin", "pounce")):
        raise BenchError(".venv/bin/pounce is missing: run `make build` first")
    if not subprocess.run(["sh", "-c", "command -v wrk"], capture_output=True).returncode == 0:
        apt_install("wrk")
    if (os.cpu_count() or 1) < 2:
        raise BenchError("need at least 2 CPUs: server on CPU 1, wrk on CPU 0")
    env = Env("host")
    # The same venv bench/run.py makes for --python host (uvicorn, starlette).
    ensure_venv(env, HOST_BENCH_VENV, ["requirements-peers.txt"], "python3")
    return env


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--profile", choices=sorted(PROFILES), default="quick")
    ap.add_argument("--rounds", type=int)
    ap.add_argument("--duration", type=int, help="seconds per wrk run")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per case")
    ap.add_argument("--connections", type=int, default=64)
    ap.add_argument("--servers", default="pounce,uvicorn")
    ap.add_argument("--out", default=RESULTS)
    args = ap.parse_args()
    for k, v in PROFILES[args.profile].items():
        if getattr(args, k) is None:
            setattr(args, k, v)
    servers = [s for s in args.servers.split(",") if s]
    cases = [c for c in CASES if c[0] in servers]
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    running: dict[str, Server] = {}
    samples: dict[str, list[dict]] = {case_id(c): [] for c in cases}
    try:
        env = setup()
        load0 = loadavg()
        for name in servers:
            srv = Server(env, name, WORKLOAD, SERVER_CPU)
            running[name] = srv
            srv.wait_ready(60.0)  # raises with the server's output if it never answers
        reference = fetch(running[servers[0]].port, "/raw", None)[2]
        if len(reference) != JSON_LEN:
            raise BenchError(f"identity body is {len(reference)} bytes, want {JSON_LEN}")
        sizes = {}
        for c in cases:
            sizes[case_id(c)] = check_case(running[c[0]].port, c, reference)
            log(f"checked {case_id(c)}: {sizes[case_id(c)]['wire_bytes']:,} bytes on the wire")
            if args.warmup:
                run_wrk(running[c[0]].port, c[2], c[3], args.warmup, args.connections)
        for rnd in range(args.rounds):
            order = cases[rnd % len(cases):] + cases[:rnd % len(cases)]
            for c in order:
                res = measure(running[c[0]], c, args.duration, args.connections)
                res["round"] = rnd + 1
                samples[case_id(c)].append(res)
                log(f"  r{rnd + 1} {case_id(c):42} {res['rps']:>9,.0f} req/s  p99 "
                    f"{res['p99_us'] / 1000:6.2f} ms  {res['cpu_us_per_req']:6.0f} µs CPU/req  "
                    f"cpu {res['cpu_pct']:3.0f}%  load {res['load_after']:.2f}")
        vers = versions(env, servers)
    except BenchError as e:
        log(f"compression bench: FAILED: {e}")
        return 1
    finally:
        for srv in running.values():
            srv.stop()
    doc = {"kind": "compression", "started": started.isoformat(timespec="seconds"),
           "machine": machine_info(), "versions": vers,
           "command": "python bench/compression_bench.py " + " ".join(sys.argv[1:]),
           "method": (f"1 worker per server, `taskset -c {SERVER_CPU}`; `taskset -c {CLIENT_CPU} wrk -t1 "
                      f"-c{args.connections} --latency -H 'Accept-Encoding: <codec>'`; {args.warmup} s "
                      f"warm-up per case, {args.rounds} interleaved rounds of {args.duration} s "
                      "(order rotated each round); server CPU from /proc/PID/stat of its process tree."),
           "load": {"start": load0, "end": loadavg()},
           "cases": [{"server": c[0], "label": c[1], "path": c[2], "accept_encoding": c[3],
                      **sizes[case_id(c)], "samples": samples[case_id(c)],
                      "summary": summarize(samples[case_id(c)])} for c in cases]}
    table = markdown(doc)
    os.makedirs(args.out, exist_ok=True)
    base = os.path.join(args.out, f"{stamp}-compression")
    write_results(doc, table, base, os.path.join(args.out, "latest-compression"),
                  title="Compression bench")
    print(f"results: {os.path.relpath(base, REPO)}.json, .md")
    return 0


if __name__ == "__main__":
    sys.exit(main())
