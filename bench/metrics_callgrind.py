"""Instructions per plaintext request with --metrics-port unset and set
(issue 13, item 5: "what is off costs nothing; enabled, < 3 % on
plaintext").

    python3 bench/metrics_callgrind.py [--venv .venv] [--unset-only /tmp/base/.venv] [-n 2000]

Same method as bench/shed_health_callgrind.py (the runner of
bench/proxy_headers_callgrind.py): each server runs bench.apps.plaintext
under callgrind, once with the warm-up requests only and once with warm-up
+ n, one keep-alive connection; the difference divided by n is the cost of
one request, summed over every process of the server.  Nobody scrapes
/metrics meanwhile: this is the workers' cost of counting.  --unset-only
adds a build measured with metrics unset only (the code before the change),
for "off costs nothing".  Whole-process totals move by about 1 % from run to
run (Python's side), so the last column gives the self cost of the _pounce
extension's code alone (stable to a few instructions); --outdir keeps the
profiles for callgrind_annotate.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, free_port, self_cost_by_object, total  # noqa: E402


def extension_cost(outdir: str, tag: str) -> int:
    """Self cost (Ir) of the _pounce extension's object in the profiles of one run."""
    return sum(ir for ob, ir in self_cost_by_object(outdir, tag).items() if "_pounce" in ob)


def settings(name: str) -> list[str]:
    return [] if name == "(unset)" else ["--metrics-port", str(free_port())]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("--unset-only", action="append", default=[],
                    help="a venv (e.g. before the change) measured with metrics unset only")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--outdir", help="keep the callgrind profiles here")
    a = ap.parse_args()
    runs = [(v, ["(unset)"]) for v in a.unset_only]
    runs += [(v, ["(unset)", "--metrics-port"]) for v in a.venv or [os.path.join(REPO, ".venv")]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-metrics-") as tmp:
        outdir = a.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        for vi, (venv, names) in enumerate(runs):
            for si, name in enumerate(names):
                tag = f"{vi}-{si}"
                base = total(venv, settings(name), b"", a.warmup, outdir, tag + "-b")
                full = total(venv, settings(name), b"", a.warmup + a.n, outdir, tag + "-f")
                per = (full - base) / a.n
                ext = (extension_cost(outdir, tag + "-f") - extension_cost(outdir, tag + "-b")) / a.n
                rows.append((venv, name, per, ext))
                print(f"{venv:40} {name:16} {per:10,.0f} Ir/request ({ext:,.0f} in _pounce)",
                      flush=True)
    print()
    print("| build | metrics | Ir/request | of which in _pounce |")
    print("|---|---|---:|---:|")
    for venv, name, per, ext in rows:
        print(f"| {venv} | {name} | {per:,.0f} | {ext:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
