#!/usr/bin/env python3
"""How evenly workers sharing one listening socket split new connections,
and what it costs (docs/workers.md, "Accepting").

    .venv/bin/python scripts/measure_balance.py [--tree after=. --tree before=/tmp/old]
        [--counts 2,4] [--modes thread,process] [--rounds 3] [--wrk]

Each --tree is a Pounce checkout with a built .venv; the runs alternate
between trees, round by round, so that they share the machine's mood.
Per tree, mode and worker count, a round is 20 bursts of 64 connections
(tests/test_balance.py's client: connects at once, one request each,
then closes); it prints how many bursts were fair (no worker above 1.5x
the mean, the issue's criterion) and the worst split.

--wrk adds, per round, `wrk -t2 -c64 -d5s` against the hello app (req/s,
p99) and against the workers app with a Lua tally of which worker answered
(share of requests per worker: a worker without connections serves none).
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, REPO)

from tests.test_balance import burst, fair  # noqa: E402

TALLY_LUA = """
counts = {}
local threads = {}
function setup(thread) table.insert(threads, thread) end
function response(status, headers, body)
  local w = body:match('"worker": (%d+)')
  if w then counts[w] = (counts[w] or 0) + 1 end
end
function done(summary, latency, requests)
  local total = {}
  for _, t in ipairs(threads) do
    for w, n in pairs(t:get("counts")) do total[w] = (total[w] or 0) + n end
  end
  local parts = {}
  for w, n in pairs(total) do table.insert(parts, w .. "=" .. n) end
  io.write("TALLY " .. table.concat(parts, " ") .. "\\n")
end
"""


class Server:
    def __init__(self, tree: str, app: str, mode: str, workers: int) -> None:
        python = os.path.join(tree, ".venv", "bin", "python")
        self.cmd = [python, "-m", "pounce", app, "--port", "0", "--workers", str(workers),
                    "--worker-mode", mode, "--no-access-log", "--loop", "asyncio"]
        self.p = subprocess.Popen(self.cmd, cwd=tree, stderr=subprocess.PIPE, text=True)
        self.port = 0
        deadline = time.monotonic() + 30
        assert self.p.stderr is not None
        while time.monotonic() < deadline:
            line = self.p.stderr.readline()
            if not line:
                break
            m = re.search(r"Listening on http://[\d.]+:(\d+)", line)
            if m:
                self.port = int(m.group(1))
                break
        if not self.port:
            self.stop()
            raise RuntimeError(f"{' '.join(self.cmd)} did not start")
        time.sleep(0.3)

    def stop(self) -> None:
        self.p.send_signal(signal.SIGTERM)
        try:
            self.p.wait(20)
        except subprocess.TimeoutExpired:
            self.p.kill()
            self.p.wait()


def bursts(tree: str, mode: str, workers: int) -> tuple[int, list[int]]:
    srv = Server(tree, "tests.apps.workers:app", mode, workers)
    try:
        ok, worst = 0, [64] + [0] * (workers - 1)
        best_spread = None
        for _ in range(20):
            split = burst("127.0.0.1", srv.port, 64)
            ok += fair(split, workers, 64)
            row = sorted((split.get(w, 0) for w in range(workers)), reverse=True)
            if best_spread is None or row[0] > best_spread:
                best_spread, worst = row[0], row
            time.sleep(0.05)
        return ok, worst
    finally:
        srv.stop()


def wrk(port: int, lua: str | None) -> str:
    cmd = ["wrk", "-t2", "-c64", "-d5s", "--latency", f"http://127.0.0.1:{port}/"]
    if lua:
        cmd[1:1] = ["-s", lua]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=60).stdout


def wrk_round(tree: str, mode: str, workers: int, lua: str) -> str:
    srv = Server(tree, "examples.hello:app", mode, workers)
    try:
        out = wrk(srv.port, None)
    finally:
        srv.stop()
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    p99 = re.search(r"\s99%\s+(\S+)", out)
    srv = Server(tree, "tests.apps.workers:app", mode, workers)
    try:
        out = wrk(srv.port, lua)
    finally:
        srv.stop()
    tally = Counter()
    m = re.search(r"TALLY (.*)", out)
    for part in (m.group(1).split() if m else []):
        w, n = part.split("=")
        tally[int(w)] = int(n)
    total = sum(tally.values()) or 1
    shares = "/".join(f"{100 * tally.get(w, 0) / total:.0f}" for w in range(workers))
    return (f"{float(rps.group(1)) / 1000 if rps else 0:.1f}k req/s, p99 "
            f"{p99.group(1) if p99 else '?'}, requests per worker % {shares}")


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tree", action="append", help="NAME=DIR (default: this checkout)")
    ap.add_argument("--counts", default="2,4")
    ap.add_argument("--modes", default="thread,process")
    ap.add_argument("--rounds", type=int, default=1)
    ap.add_argument("--wrk", action="store_true")
    args = ap.parse_args()
    trees = [t.split("=", 1) for t in (args.tree or [f"this={REPO}"])]
    counts = [int(x) for x in args.counts.split(",")]
    modes = args.modes.split(",")
    with tempfile.NamedTemporaryFile("w", suffix=".lua") as lua:
        lua.write(TALLY_LUA)
        lua.flush()
        for r in range(args.rounds):
            for mode in modes:
                for n in counts:
                    for name, tree in trees:
                        ok, worst = bursts(tree, mode, n)
                        line = (f"round {r + 1} {name:>8} {mode:>7} x{n}: fair {ok:2d}/20, "
                                f"worst {'/'.join(map(str, worst))}")
                        if args.wrk:
                            line += "; wrk: " + wrk_round(tree, mode, n, lua.name)
                        print(line, f"(load {os.getloadavg()[0]:.2f})", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
