"""bench/versions.py's table (make bench-versions) and bench/run.py's
--python for pyenv interpreters, on synthetic results: no server is run."""

from __future__ import annotations

import os
import sys

import pytest

from bench import run, versions


def sample(rnd: int, rps: float, cpu_s_per_10k: float, cpu_pct: float = 99.0,
           client_cpu_pct: float | None = None) -> dict:
    out = {"round": rnd, "rps": rps, "requests": int(rps * 3), "p50_us": 1000.0, "p99_us": 3000.0,
           "socket_errors": 0, "non_2xx": 0, "socket_error_kinds": {},
           "cpu_s_per_10k": cpu_s_per_10k, "cpu_pct": cpu_pct}
    if client_cpu_pct is not None:
        out["client_cpu_pct"] = client_cpu_pct
    return out


def doc(pounce: list[float], uvicorn: list[float], cpu=(0.1, 0.3), errors_uvicorn: int = 0) -> dict:
    res = {"samples": {"pounce": [sample(i + 1, r, cpu[0]) for i, r in enumerate(pounce)],
                       "uvicorn": [sample(i + 1, r, cpu[1]) for i, r in enumerate(uvicorn)]},
           "peak_rss_kb": {}, "failed": {}}
    for x in res["samples"]["uvicorn"]:
        x["socket_errors"] = errors_uvicorn
    return {"kind": "versions", "runs": {
        "3.12": {"interpreter": "3.12.1", "plaintext": res,
                 "callgrind": [{"server": "pounce", "ir_per_req": 20000.0},
                               {"server": "uvicorn", "ir_per_req": 90000.0}]},
        "3.14": {"error": "bench/run.py exited with status 1"}}}


def ratio_row(md: str, label: str) -> str:
    rows = [ln for ln in md.splitlines() if ln.startswith(f"| {label} |") and "×" in ln]
    assert len(rows) == 1, md
    return rows[0]


def test_ratio_per_round_and_verdicts():
    md = versions.markdown(doc([30000, 33000, 27000], [10000, 11000, 12000]))
    row = ratio_row(md, "3.12 (3.12.1)")
    # Median 30,000 / 11,000; rounds 3.00, 3.00, 2.25; CPU 0.3 / 0.1.
    assert "| 2.73× (3.00, 3.00, 2.25) | 3.00× |" in row
    assert "20,000 / 90,000 (4.50×)" in row
    assert row.endswith("| met | met |")
    assert "| 3.12 (3.12.1) | pounce | 30,000 (27,000–33,000) | 10.0 (10.0–10.0) | 99 |" in md
    # A version that did not run is said to, never left out.
    assert "| 3.14 | – | **not run**: bench/run.py exited with status 1 |" in md


def test_missed_below_goal():
    # Judged on req/s as the issue says; the CPU verdict is its own column.
    row = ratio_row(versions.markdown(doc([20000] * 3, [10000] * 3, cpu=(0.1, 0.3))), "3.12 (3.12.1)")
    assert "| 2.00× (2.00, 2.00, 2.00) | 3.00× |" in row
    assert row.endswith("| **missed** | met |")
    row = ratio_row(versions.markdown(doc([30000] * 3, [10000] * 3, cpu=(0.1, 0.2))), "3.12 (3.12.1)")
    assert row.endswith("| met | **missed** |")


def test_failed_peer_gives_no_ratio():
    # 5 % socket errors: run.py's criteria mark uvicorn failed.
    md = versions.markdown(doc([30000] * 3, [10000] * 3, errors_uvicorn=1500))
    assert "| 3.12 (3.12.1) | uvicorn | **failed**: errors:" in md
    assert "| 3.12 (3.12.1) | failed: uvicorn |" in md
    assert "met" not in md.split("failed: uvicorn")[1].splitlines()[0]


def test_pyenv_env(monkeypatch, tmp_path):
    root = tmp_path / "pyenv"
    for v in ("3.12.1", "3.12.10", "3.12.3", "3.12.2t", "3.13.0", "3.13.2", "3.13-dev"):
        b = root / "versions" / v / "bin"
        b.mkdir(parents=True)
        (b / "python3").write_text("#!/bin/sh\n")
        (b / "python3").chmod(0o755)
    monkeypatch.setenv("PYENV_ROOT", str(root))
    monkeypatch.setattr(run.shutil, "which", lambda name: None)
    # The newest patch of the minor (3.12.10 > 3.12.3), never a free-threaded or -dev build.
    other = "3.12" if sys.version_info[:2] != (3, 12) else "3.13"
    env = run.Env(other)
    assert env.interpreter == str(root / "versions" / ("3.12.10" if other == "3.12" else "3.13.2")
                                  / "bin" / "python3")
    assert env.venvs == {"pounce": os.path.join(run.REPO, f".venv-{other}"),
                         "peers": os.path.join(run.REPO, f".venv-bench-{other}")}
    # The host's own minor is an alias of --python host.
    own = run.Env("%d.%d" % sys.version_info[:2])
    assert own.venvs == run.Env("host").venvs and own.interpreter == sys.executable
    with pytest.raises(run.BenchError, match="pyenv has no CPython 3.11"):
        run.pyenv_python("3.11")


def test_wrk_cpu_column():
    d = doc([30000] * 3, [10000] * 3)
    for i, x in enumerate(d["runs"]["3.12"]["plaintext"]["samples"]["pounce"]):
        x["client_cpu_pct"] = (96.0, 90.0, 99.0)[i]
    md = versions.markdown(d)
    # The median of the rounds; a result from before the column says "–".
    assert "| 3.12 (3.12.1) | pounce | 30,000 (30,000–30,000) | 10.0 (10.0–10.0) | 99 | 96 |" in md
    assert "| 3.12 (3.12.1) | uvicorn | 10,000 (10,000–10,000) | 30.0 (30.0–30.0) | 99 | – |" in md


def test_load_measures_the_generators_cpu(monkeypatch):
    """client_cpu_pct is the load generator's own CPU time over the run:
    here a child that spins for ~0.5 s of a 1 s run, then one that sleeps."""
    import subprocess

    def fake(spin):
        def gen(port, wl, duration):
            code = ("import time\nt = time.process_time()\nwhile time.process_time() - t < 0.5: pass"
                    if spin else "import time; time.sleep(0.5)")
            subprocess.run([sys.executable, "-c", code], check=True)
            return ""
        return gen

    monkeypatch.setattr(run, "parse_wrk", lambda out: {"requests": 1})
    monkeypatch.setattr(run, "wrk", fake(True))
    busy = run.load(0, run.WORKLOADS["plaintext"], 1.0)["client_cpu_pct"]
    monkeypatch.setattr(run, "wrk", fake(False))
    idle = run.load(0, run.WORKLOADS["plaintext"], 1.0)["client_cpu_pct"]
    assert 45 <= busy <= 90, busy  # the spin plus the interpreter's start
    assert idle < 30, idle
