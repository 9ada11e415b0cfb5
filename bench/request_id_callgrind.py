"""Instructions per plaintext request with --request-id off and on (issue 13,
item 7: "what is off costs nothing, what is on costs little").

    python3 bench/request_id_callgrind.py [--venv .venv] [--unset-only /tmp/base/.venv] [-n 2000]

Same method as bench/proxy_headers_callgrind.py (whose runner it reuses):
each server runs bench.apps.plaintext under callgrind, once with the
warm-up requests only and once with warm-up + n, over one keep-alive
connection; the difference divided by n is the cost of one request.  Four
cases: off (the default), on with no ID in the request (one is generated),
and a request with a valid X-Request-ID, off and on (it is kept).
--unset-only measures a build (before the change) with the defaults only.

Two columns: the whole process, which moves by about 1 % from run to run
(Python's side), and the C extension's own instructions (the functions in
_pounce*.so, self cost, from callgrind_annotate), which is where the
feature's cost shows.
"""

from __future__ import annotations

import argparse
import glob
import os
import re
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from bench.proxy_headers_callgrind import REPO, total  # noqa: E402

INCOMING = b"X-Request-ID: 0f8fad5b-d9cb-469f-a165-70867728950e\r\n"
CASES = {
    "off": ([], b""),
    "on, generated": (["--request-id"], b""),
    # A request with one more header costs more whatever the setting (the
    # parser, the scope's headers): compare these two with each other.
    "off, with an ID": ([], INCOMING),
    "on, incoming kept": (["--request-id"], INCOMING),
}


def extension_ir(outdir: str, tag: str) -> int:
    """Self instructions in the extension's functions, summed over the
    profiles of one run (one file per process)."""
    out = 0
    for path in glob.glob(f"{outdir}/cg.{tag}.*"):
        text = subprocess.run(["callgrind_annotate", "--inclusive=no", "--threshold=100", path],
                              capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+)\s.*_pounce", line)
            if m:
                out += int(m.group(1).replace(",", ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("--unset-only", action="append", default=[],
                    help="a venv (e.g. before the change) measured with the defaults only")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--outdir", help="keep the callgrind profiles here (default: a temporary directory)")
    a = ap.parse_args()
    runs = [(v, False) for v in a.unset_only] + [(v, True) for v in a.venv or [os.path.join(REPO, ".venv")]]
    rows = []
    with tempfile.TemporaryDirectory(prefix="cg-rid-") as tmp:
        outdir = a.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        for vi, (venv, all_cases) in enumerate(runs):
            for ci, (name, (opts, extra)) in enumerate(CASES.items()):
                if ci and not all_cases:
                    break
                tag = f"{vi}-{ci}"
                base = total(venv, opts, extra, a.warmup, outdir, tag + "-b")
                full = total(venv, opts, extra, a.warmup + a.n, outdir, tag + "-f")
                ext = (extension_ir(outdir, tag + "-f") - extension_ir(outdir, tag + "-b")) / a.n
                per = (full - base) / a.n
                rows.append((venv, name, ext, per))
                print(f"{venv:40} {name:20} {ext:8,.0f} ext {per:10,.0f} Ir/request", flush=True)
    print()
    print("| build | --request-id | extension Ir/request | whole process Ir/request |")
    print("|---|---|---:|---:|")
    for venv, name, ext, per in rows:
        print(f"| {venv} | {name} | {ext:,.0f} | {per:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
