"""Instructions per plaintext request, whole process and the _pounce
extension's self cost, for one or more builds (issue 17, item 4).

    python3 bench/plaintext_callgrind.py --venv /tmp/base/.venv --venv .venv [-n 2000]
        [--repeat 2] [--top 25] [--outdir DIR]

Same method as bench/proxy_headers_callgrind.py and bench/metrics_callgrind.py:
each build serves bench.apps.plaintext under callgrind (default settings,
access log off), once with the warm-up requests only and once with warm-up +
n, over one keep-alive connection; the difference divided by n is the cost
of one request, summed over every process of the server.  Whole-process
totals move by about 1 % from run to run on pyenv's CPythons and by up to
5 % on Debian's 3.14 (start-up work that differs between the two runs);
the serving-thread column (the worker's event-loop thread, inclusive) leaves
start-up out and is stable to about 0.1 %, and the _pounce column (the
extension's own code, self cost) to a few instructions.
--repeat measures each build that many times (interleaved), --top lists the
functions whose self cost per request grew or shrank most between the two
profiles of each build's last run (from callgrind_annotate), --outdir keeps
the profiles.

--chroot ROOT measures venvs inside a chroot (paths given as the chroot sees
them), for CPython 3.14 from the sid chroot: run it under
`scripts/chroot-314.sh hold` so that the chroot is mounted, e.g.

    POUNCE_CHROOT=.chroot/sid-bench scripts/chroot-314.sh hold \
        python3 bench/plaintext_callgrind.py --chroot .chroot/sid-bench \
        --venv /opt/venv-3.14-base --venv /opt/venv-3.14

(the chroot needs valgrind: bench/run.py --python 3.14 --callgrind installs it).
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
from bench.proxy_headers_callgrind import REPO, self_cost_by_object, total  # noqa: E402


def extension_cost(outdir: str, tag: str) -> int:
    """Self cost (Ir) of the _pounce extension's object in one run's profiles."""
    return sum(ir for ob, ir in self_cost_by_object(outdir, tag).items() if "_pounce" in ob)


def functions(outdir: str, tag: str) -> dict[str, int]:
    """Self cost (Ir) per function over one run's profiles (callgrind_annotate)."""
    out: dict[str, int] = {}
    for path in glob.glob(f"{outdir}/cg.{tag}.*"):
        text = subprocess.run(["callgrind_annotate", "--threshold=100", path],
                              capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(.*)$", line)
            if m and ":" in m.group(2):
                fn = m.group(2).split(" [")[0].strip()
                out[fn] = out.get(fn, 0) + int(m.group(1).replace(",", ""))
    return out


def thread_cost(outdir: str, tag: str) -> int:
    """Inclusive cost (Ir) of the threads the processes of one run started
    (glibc's start_thread): the worker's event loop runs in one, so this is
    the serving work without the process's start-up and exit, whose cost
    moves between runs by up to about 800 instructions per request on
    Debian's CPython 3.14 (a start-up that does more work now and then)."""
    out = 0
    for path in glob.glob(f"{outdir}/cg.{tag}.*"):
        text = subprocess.run(["callgrind_annotate", "--inclusive=yes", "--threshold=100", path],
                              capture_output=True, text=True, check=True).stdout
        for line in text.splitlines():
            m = re.match(r"\s*([\d,]+)\s+\([^)]*\)\s+(\S+)", line)
            if m and m.group(2).endswith(":start_thread"):
                out += int(m.group(1).replace(",", ""))
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--venv", action="append", help="venv with pounce installed (repeatable)")
    ap.add_argument("-n", type=int, default=2000)
    ap.add_argument("--warmup", type=int, default=200)
    ap.add_argument("--repeat", type=int, default=1)
    ap.add_argument("--top", type=int, default=0)
    ap.add_argument("--outdir", help="keep the callgrind profiles here")
    ap.add_argument("--chroot", help="run the servers in this chroot (venvs are paths inside it; "
                                     "the repository is its /work/src: scripts/chroot-314.sh)")
    a = ap.parse_args()
    venvs = a.venv or [os.path.join(REPO, ".venv")]
    rows = []
    wrap: tuple[str, ...] = ()
    root = os.path.abspath(a.chroot) if a.chroot else None
    if root:
        # env -i: the chroot's own PATH, and the fixed hash seed that keeps
        # counts repeatable.
        wrap = ("chroot", root, "/usr/bin/env", "-i", "-C", "/work/src", "PATH=/usr/bin:/bin",
                "PYTHONHASHSEED=0")
    with tempfile.TemporaryDirectory(prefix="cg-plain-", dir=root + "/tmp" if root else None) as tmp:
        outdir = a.outdir or tmp
        os.makedirs(outdir, exist_ok=True)
        guest = None
        if root:
            outdir = os.path.abspath(outdir)
            if not outdir.startswith(root + "/"):
                ap.error("--outdir must be inside the --chroot")
            guest = outdir[len(root):]
        for rep in range(a.repeat):
            for vi, venv in enumerate(venvs):
                tag = f"{vi}-{rep}"
                base = total(venv, [], b"", a.warmup, outdir, tag + "-b", wrap=wrap, guest_outdir=guest)
                full = total(venv, [], b"", a.warmup + a.n, outdir, tag + "-f", wrap=wrap,
                             guest_outdir=guest)
                per = (full - base) / a.n
                ext = (extension_cost(outdir, tag + "-f") - extension_cost(outdir, tag + "-b")) / a.n
                thr = (thread_cost(outdir, tag + "-f") - thread_cost(outdir, tag + "-b")) / a.n
                rows.append((venv, per, thr, ext))
                print(f"{venv:40} {per:10,.0f} Ir/request ({thr:,.0f} in the serving thread, "
                      f"{ext:,.0f} in _pounce)", flush=True)
        if a.top:
            for vi, venv in enumerate(venvs):
                tag = f"{vi}-{a.repeat - 1}"
                b, f = functions(outdir, tag + "-b"), functions(outdir, tag + "-f")
                diff = {fn: (f.get(fn, 0) - b.get(fn, 0)) / a.n for fn in set(b) | set(f)}
                print(f"\n{venv}: self Ir per request, top {a.top}")
                for fn, ir in sorted(diff.items(), key=lambda kv: -abs(kv[1]))[:a.top]:
                    print(f"{ir:10,.1f}  {fn}")
    print()
    print("| build | Ir/request | in the serving thread | of which in _pounce |")
    print("|---|---:|---:|---:|")
    for venv, per, thr, ext in rows:
        print(f"| {venv} | {per:,.0f} | {thr:,.0f} | {ext:,.0f} |")


if __name__ == "__main__":
    sys.exit(main())
