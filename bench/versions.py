#!/usr/bin/env python3
"""Plaintext on every CPython: Pounce against uvicorn (and granian) on 3.11,
3.12, 3.13 and 3.14, one combined table (issue 17: "Plaintext >= 2.5x uvicorn
on CPython 3.14 as well as on 3.11-3.13").

    make bench-versions                                   # all four, ~8 min (~14 with --callgrind)
    python3 bench/versions.py --versions 3.12,3.13 --rounds 5
    python3 bench/versions.py --callgrind                 # + instructions/request per version
    python3 bench/versions.py --render bench/results/<stamp>-versions.json

Each version is one `bench/run.py --python <version> --profile versions`
run: the plaintext workload with the quick profile's method (one worker
pinned to CPU 1, wrk on CPU 0, warm-up, interleaved rounds, server CPU per
request from /proc/PID/stat), on the pyenv CPython of that minor (3.11 is
the host's python3 when that is 3.11) or the sid chroot's 3.14.  Each run
stores its own <stamp>-versions-<python>.json; this script then writes
<stamp>-versions.{json,md} with every version's plaintext samples copied in
(so --render needs nothing else), and latest-versions.md.  With
--callgrind, `bench/run.py --callgrind` runs too, per version, and its
instructions per request join the table.

Judged as bench/run.py judges the quick profile: failed runs (run.py's
criteria) are shown as failed, never as a ratio; the target is judged on the
median req/s ratio, and the ratio of CPU per request is shown beside it with
the ratio of each round, since the machine may be shared.
"""

from __future__ import annotations

import argparse
import datetime
import glob
import json
import os
import subprocess
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.run import (  # noqa: E402  (the path above makes bench importable)
    REPO, RESULTS, cpu_us, finish_workload, loadavg, log, machine_info, save_result)

RUN = os.path.join(REPO, "bench", "run.py")
VERSIONS = "3.11,3.12,3.13,3.14"
GOAL = 2.5  # issue 17: plaintext, pounce >= 2.5x uvicorn req/s, on every CPython
PACKAGES = ("pounce-asgi", "uvicorn", "httptools", "uvloop", "granian")


def newest(out: str, pattern: str, since: float) -> str | None:
    """The newest result file matching pattern written since `since`."""
    paths = [p for p in glob.glob(os.path.join(out, pattern)) if os.path.getmtime(p) >= since]
    return max(paths, key=os.path.getmtime) if paths else None


def run_one(cmd: list[str], out: str, pattern: str) -> tuple[dict | None, str | None, str]:
    """Run bench/run.py; (its result document, its file, why it failed)."""
    log("versions: " + " ".join(cmd))
    t0 = time.time() - 1
    p = subprocess.run(cmd, stdout=subprocess.DEVNULL)
    path = newest(out, pattern, t0)
    if p.returncode != 0 or path is None:
        return None, None, f"bench/run.py exited with status {p.returncode}" + (
            "" if path else " and wrote no result")
    with open(path) as f:
        return json.load(f), os.path.relpath(path, REPO), ""


def interpreter(doc: dict) -> str:
    """The CPython version the servers ran on, as their venvs reported it."""
    for venv in ("pounce", "peers"):
        v = doc.get("versions", {}).get(venv, {}).get("python")
        if v:
            return v
    return "?"


def fmt_rps(m: dict) -> str:
    return f"{m['rps']['median']:,.0f} ({m['rps']['min']:,.0f}–{m['rps']['max']:,.0f})"


def fmt_cpu(m: dict) -> str:
    c = m["cpu_s_per_10k"]
    return f"{cpu_us(m):.1f} ({c['min'] * 100:.1f}–{c['max'] * 100:.1f})"


def per_round(res: dict, a: str, b: str) -> list[float]:
    """a's req/s ÷ b's in each round (they ran seconds apart)."""
    mine = {x.get("round"): x["rps"] for x in res["samples"].get(a, [])}
    theirs = {x.get("round"): x["rps"] for x in res["samples"].get(b, [])}
    return [mine[k] / theirs[k] for k in sorted(mine) if k in theirs]


def markdown(doc: dict) -> str:
    """The per-server table and the per-version ratios, judged again."""
    rows = ["| CPython | server | req/s | server CPU µs/request | server CPU % | wrk CPU % |",
            "|---|---|---:|---:|---:|---:|"]
    ratios = ["| CPython | pounce ÷ uvicorn req/s (per round) | uvicorn ÷ pounce CPU/request "
              "| pounce ÷ granian req/s | instructions/request pounce / uvicorn (ratio) "
              f"| ≥ {GOAL:g}× uvicorn req/s | ≥ {GOAL:g}× on CPU/request |",
              "|---|---:|---:|---:|---:|---|---|"]
    verdict = {True: "met", False: "**missed**", None: "not measured"}
    for ver, run in doc["runs"].items():
        label = f"{ver} ({run['interpreter']})" if run.get("interpreter") else ver
        res = run.get("plaintext")
        if res is None:
            rows.append(f"| {label} | – | **not run**: {run.get('error', '?')} | – | – | – |")
            ratios.append(f"| {label} | – | – | – | – | not measured | not measured |")
            continue
        finish_workload("plaintext", res)
        summ = res["summary"]
        for s, m in summ.items():
            client = (m.get("client_cpu_pct") or {}).get("median")
            rows.append(f"| {label} | {s} | {fmt_rps(m)} | {fmt_cpu(m)} | {m['cpu_pct']['median']:.0f} "
                        f"| {'–' if client is None else f'{client:.0f}'} |")
        for s, why in res.get("failed", {}).items():
            rows.append(f"| {label} | {s} | **failed**: {why} | – | – | – |")
        cg = {r["server"]: r["ir_per_req"] for r in run.get("callgrind") or []}
        instr = "–"
        if "pounce" in cg and "uvicorn" in cg:
            instr = f"{cg['pounce']:,.0f} / {cg['uvicorn']:,.0f} ({cg['uvicorn'] / cg['pounce']:.2f}×)"
        elif run.get("callgrind_error"):
            instr = f"not measured: {run['callgrind_error']}"
        if "pounce" in summ and "uvicorn" in summ:
            p, u = summ["pounce"], summ["uvicorn"]
            r = p["rps"]["median"] / u["rps"]["median"]
            c = cpu_us(u) / cpu_us(p)
            rounds = ", ".join(f"{x:.2f}" for x in per_round(res, "pounce", "uvicorn"))
            g = (f"{p['rps']['median'] / summ['granian']['rps']['median']:.2f}×"
                 if "granian" in summ else "–")
            ratios.append(f"| {label} | {r:.2f}× ({rounds}) | {c:.2f}× | {g} | {instr} "
                          f"| {verdict[r >= GOAL]} | {verdict[c >= GOAL]} |")
        else:
            gone = ", ".join(sorted(res.get("failed", {}))) or "pounce or uvicorn missing"
            ratios.append(f"| {label} | failed: {gone} | – | – | {instr} | not measured | not measured |")
    notes = ("Median over rounds, (min–max) in brackets; one worker pinned to CPU 1, wrk on CPU 0.  "
             "*server CPU µs/request*: utime+stime of the server's process tree over the requests wrk "
             "completed.  *per round*: the req/s ratio of each round, the two servers measured seconds "
             "apart; its spread shows how much other load on the machine moved the ratio of medians.  "
             "*uvicorn ÷ pounce CPU/request* is the ratio that holds when neighbours take CPU time, "
             "and when wrk is the limit: *wrk CPU %* is the load generator's own CPU time over the "
             "run (one CPU); near 100 it, not the server, set the pace, and the server's req/s is "
             "a floor.  "
             "Instructions per request: `bench/run.py --callgrind` (valgrind), where run.")
    return "\n".join(rows) + "\n\n" + "\n".join(ratios) + "\n\n" + notes


def render(path: str) -> str:
    with open(path) as f:
        doc = json.load(f)
    if doc.get("kind") != "versions":
        raise SystemExit(f"{path}: not a bench/versions.py result")
    return markdown(doc)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--versions", default=VERSIONS, help=f"comma list (default {VERSIONS})")
    ap.add_argument("--servers", default="pounce,uvicorn,granian")
    ap.add_argument("--rounds", type=int, help="interleaved rounds (default: the versions profile's 7)")
    ap.add_argument("--duration", type=int, help="seconds per wrk run (default 3)")
    ap.add_argument("--warmup", type=int, help="seconds of warm-up per server (default 1)")
    ap.add_argument("--nice", type=int, help="as bench/run.py --nice")
    ap.add_argument("--callgrind", action="store_true",
                    help="also instructions/request of pounce and uvicorn per version (valgrind)")
    ap.add_argument("--cg-requests", type=int, default=2000)
    ap.add_argument("--out", default=RESULTS, help="directory for results")
    ap.add_argument("--render", metavar="RESULT.json",
                    help="only print the tables of a stored bench/versions.py result (runs nothing)")
    args = ap.parse_args()
    if args.render:
        print(render(args.render))
        return 0
    started = datetime.datetime.now()
    stamp = started.strftime("%Y-%m-%d_%H%M%S")
    os.makedirs(args.out, exist_ok=True)
    extra = []
    for key in ("rounds", "duration", "warmup", "nice"):
        if getattr(args, key) is not None:
            extra += [f"--{key}", str(getattr(args, key))]
    loads = [loadavg()]
    runs: dict[str, dict] = {}
    method = ""
    vers: dict[str, dict] = {}
    for ver in [v for v in args.versions.split(",") if v]:
        run: dict = {}
        doc, path, err = run_one([sys.executable, RUN, "--python", ver, "--profile", "versions",
                                  "--servers", args.servers, "--out", args.out, *extra],
                                 args.out, f"*-versions-{ver}.json")
        if doc is None:
            run["error"] = err
        else:
            run.update(result=path, interpreter=interpreter(doc), plaintext=doc["workloads"]["plaintext"],
                       commit=doc["machine"]["commit"])
            method = doc["method"]
            loads += [doc["load"]["start"], doc["load"]["end"], doc["load"].get("max", 0.0)]
            flat = {"python": run["interpreter"]}
            for d in doc.get("versions", {}).values():
                flat.update({k: v for k, v in d.items() if k in PACKAGES})
            vers[f"CPython {ver}"] = flat
        if args.callgrind:
            cg, cg_path, cg_err = run_one([sys.executable, RUN, "--python", ver, "--callgrind",
                                           "--cg-servers", "pounce,uvicorn", "--cg-requests",
                                           str(args.cg_requests), "--out", args.out],
                                          args.out, f"*-callgrind-{ver}.json")
            if cg is None:
                run["callgrind_error"] = cg_err
            else:
                run.update(callgrind=cg["rows"], callgrind_result=cg_path)
        runs[ver] = run
    doc = {"kind": "versions", "profile": "versions", "started": started.isoformat(timespec="seconds"),
           "machine": machine_info(), "command": "python3 bench/versions.py " + " ".join(sys.argv[1:]),
           "method": (method or "bench/run.py --profile versions") + (
               f"  Callgrind: bench/run.py --callgrind, {args.cg_requests} requests."
               if args.callgrind else ""),
           "servers": args.servers.split(","), "versions": vers,
           "load": {"start": loads[0], "end": loadavg(), "max": max(loads + [loadavg()])},
           "runs": runs}
    table = markdown(json.loads(json.dumps(doc)))
    save_result(doc, table, args.out, stamp, "versions", "Pounce bench, plaintext on every CPython")
    failed = [v for v, r in runs.items() if "error" in r]
    if failed:
        log(f"versions: no result for {', '.join(failed)}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
