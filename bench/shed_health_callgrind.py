"""Instructions per plaintext request with --health-path and
--limit-concurrency unset and set (issue 13, items 4 and 6: "what is off
costs nothing, what is on costs little").

    python3 bench/shed_health_callgrind.py [--venv .venv] [--venv /tmp/base/.venv] [-n 2000]

Same method as bench/proxy_headers_callgrind.py (whose runner it reuses):
each server runs bench.apps.plaintext under callgrind, once with the
warm-up requests only and once with warm-up + n; the difference divided by
n is the cost of one request.  The requests are the app's (GET /), so the
health path never matches: this is what the settings cost everybody else.
Several --venv options compare builds (before / after a change).

The whole-process totals move by about 1 % from run to run (Python's side),
far more than these settings cost.  To see the C side alone, keep the
profiles (--outdir DIR) and compare the functions of the extension:
    callgrind_annotate DIR/cg.<run>-f.<pid> | grep _pounce
(one file per process; the worker's is the one naming _pounce's functions;
subtract the -b run and divide by n).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, total  # noqa: E402

SETTINGS = {
    "(unset)": [],
    "--health-path /healthz": ["--health-path", "/healthz"],
    "--limit-concurrency 100": ["--limit-concurrency", "100"],
    "both": ["--health-path", "/healthz", "--limit-concurrency", "100"],
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("--unset-only", action="append", default=[],
                    help="a venv (e.g. before the change) measured with the settings unset only")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--outdir", help="keep the callgrind profiles here (default: a temporary directory)")
    a = ap.parse_args()
    runs = [(v, False) for v in a.unset_only] + [(v, True) for v in a.venv or [os.path.join(REPO, ".venv")]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-shed-") as tmp:
        outdir = a.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        for vi, (venv, all_settings) in enumerate(runs):
            for si, (name, opts) in enumerate(SETTINGS.items()):
                if si and not all_settings:
                    break
                tag = f"{vi}-{si}"
                base = total(venv, opts, b"", a.warmup, outdir, tag + "-b")
                full = total(venv, opts, b"", a.warmup + a.n, outdir, tag + "-f")
                per = (full - base) / a.n
                rows.append((venv, name, per))
                print(f"{venv:40} {name:26} {per:10,.0f} Ir/request", flush=True)
    print()
    print("| build | settings | Ir/request |")
    print("|---|---|---:|")
    for venv, name, per in rows:
        print(f"| {venv} | {name} | {per:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
