"""Instructions per plaintext request for each access-log path (issue 13,
item 2: "when the user routes the pounce.access logger to handlers of
their own, lines go through logging instead (document the cost)").

    python3 bench/access_log_callgrind.py [--venv .venv] [-n 1000] [--outdir DIR]

Same method as bench/shed_health_callgrind.py: each server runs under
callgrind once with the warm-up requests only and once with warm-up + n;
the difference divided by n is the cost of one request, whole process
(C and Python).  Lines go to stderr (/dev/null here) or to
--access-log-file /dev/null; the logging path uses
bench.apps.plaintext_access_logging, whose handler writes to /dev/null.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, total  # noqa: E402

PLAIN = "bench.apps.plaintext:app"
ROUTED = "bench.apps.plaintext_access_logging:app"

# name: (app, access log on, options)
SETTINGS = {
    "--no-access-log": (PLAIN, False, []),
    "default (stderr)": (PLAIN, True, []),
    "common (file)": (PLAIN, True, ["--access-log-format", "common", "--access-log-file", "/dev/null"]),
    "combined (file)": (PLAIN, True, ["--access-log-format", "combined", "--access-log-file", "/dev/null"]),
    "json (file)": (PLAIN, True, ["--access-log-format", "json", "--access-log-file", "/dev/null"]),
    "default via logging": (ROUTED, True, []),
    "json via logging": (ROUTED, True, ["--access-log-format", "json"]),
}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", default=os.path.join(REPO, ".venv"))
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--only", action="append", help="measure only these settings (names above)")
    ap.add_argument("--outdir", help="keep the callgrind profiles here (default: a temporary directory)")
    a = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-alog-") as tmp:
        outdir = a.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        for si, (name, (app, on, opts)) in enumerate(SETTINGS.items()):
            if a.only and name not in a.only:
                continue
            base = total(a.venv, opts, b"", a.warmup, outdir, f"{si}-b", app=app, access_log=on)
            full = total(a.venv, opts, b"", a.warmup + a.n, outdir, f"{si}-f", app=app, access_log=on)
            per = (full - base) / a.n
            rows.append((name, per))
            print(f"{name:24} {per:10,.0f} Ir/request", flush=True)
    print()
    print("| access log | Ir/request | vs --no-access-log |")
    print("|---|---:|---:|")
    off = rows[0][1] if rows and rows[0][0] == "--no-access-log" else None
    for name, per in rows:
        delta = f"{per - off:+,.0f}" if off is not None else ""
        print(f"| {name} | {per:,.0f} | {delta} |")


if __name__ == "__main__":
    sys.exit(main())
