#!/usr/bin/env python3
"""Latency of a well-behaved client while Pounce is under attack (issue 5).

    .venv/bin/python bench/hostile_latency.py               # 3 rounds of each
    .venv/bin/python bench/hostile_latency.py --rounds 10

tests/test_hostile.py checks the behaviour (the trickled heads are cut at
the header deadline, the flood is deferred and not dropped, the served
connections are served) with bounds that hold on a loaded machine.  This
script runs the same two scenarios, the functions of that module, and
prints the latency figures it no longer asserts:

  * slowloris: 60 connections trickle a head (one byte each per 50 ms)
    against --header-timeout 1 while one keep-alive client sends GET /
    every 50 ms for 2.5 s; its latencies, and when the 60 were cut;
  * flood: 4 keep-alive connections, then 300 silent ones past
    --max-connections 8 (--backlog 1024), then GET / round-robin on the 4
    for 1.5 s; their latencies.

The server is started the way the tests start it (tests/server.py: the
`pounce` of this venv, 127.0.0.1, a free port, tests.apps.hardening:app),
a fresh one per round.  Nothing is asserted and nothing is written: the
numbers are printed, one line per round, then the worst round.  They mean
something only on an idle machine; neither `make test` nor CI runs this.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import test_hostile as hostile  # noqa: E402  (the path above)
from tests.server import start_server  # noqa: E402


def ms(seconds: float) -> str:
    return f"{seconds * 1000:.2f}"


def quantile(sorted_values: list[float], q: float) -> float:
    return sorted_values[min(len(sorted_values) - 1, int(len(sorted_values) * q))]


def figures(latencies: list[float]) -> dict:
    lat = sorted(latencies)
    return {"n": len(lat), "p50": statistics.median(lat), "p99": quantile(lat, 0.99),
            "max": lat[-1]}


def slowloris_round() -> dict:
    deadline = hostile.SLOWLORIS_HEADER_TIMEOUT
    with start_server(hostile.APP, "--header-timeout", str(deadline), "--no-access-log") as srv:
        closed_at, got, good = hostile.slowloris(srv, 60, wait=deadline + 6)
    out = figures([lat for _, lat in good])
    times = sorted(closed_at.values())
    out["cut"] = (f"{len(times)}/60 cut at {times[0]:.2f}..{times[-1]:.2f} s" if times
                  else "none cut")
    return out


def flood_round() -> dict:
    with start_server(hostile.APP, "--max-connections", str(hostile.FLOOD_MAX_CONNECTIONS),
                      "--header-timeout", "60", "--backlog", "1024", "--no-access-log") as srv:
        served, flood, latencies = hostile.connection_flood(srv)
        for s in flood:
            s.close()
        for c in served:
            c.close()
    return figures(latencies)


def line(name: str, r: dict) -> str:
    extra = f"  ({r['cut']})" if "cut" in r else ""
    return (f"{name:15s} {r['n']:7d} requests  p50 {ms(r['p50']):>8s} ms  p99 {ms(r['p99']):>8s} ms"
            f"  max {ms(r['max']):>8s} ms{extra}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=3, help="rounds of each scenario (default 3)")
    ap.add_argument("--scenarios", default="slowloris,flood",
                    help="comma-separated subset of slowloris,flood")
    args = ap.parse_args()
    runs = {"slowloris": slowloris_round, "flood": flood_round}
    names = [n.strip() for n in args.scenarios.split(",") if n.strip()]
    for n in names:
        if n not in runs:
            ap.error(f"unknown scenario {n!r}")
    print(f"Pounce under attack: latency of the served client, {os.cpu_count()} CPUs, "
          f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    for n in names:
        rounds = []
        for i in range(args.rounds):
            r = runs[n]()
            rounds.append(r)
            print(line(f"{n} #{i + 1}", r), flush=True)
        worst = max(rounds, key=lambda r: r["p99"])
        print(line(f"{n} worst", worst) + "  (the round with the highest p99)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
