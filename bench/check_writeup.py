#!/usr/bin/env python3
"""Recompute every benchmark number the write-up quotes from bench/results/.

    python3 bench/check_writeup.py        # lists each mismatch, exit status 1 if any

docs/benchmarks.md, the README's "Performance" section and the server
benchmark of docs/compression.md quote numbers from the stored results.  This
script derives each of them again from the JSON (standard library only, no
server is run) and checks that the text says exactly that:

* the full-profile table and the targets table of docs/benchmarks.md must
  equal `bench/run.py --render` of the JSON they cite, row for row, which
  also applies the harness's failure criteria (a failed run is shown as
  failed, never as a ratio);
* the README's table and the compression tables are rebuilt row by row;
* every other number is a fragment of text formatted here from the JSON
  (see the CLAIMS below, each with how it is derived); a fragment the
  document does not contain is a mismatch: either the number is wrong or the
  sentence was reworded, and then this script is updated with it.

Numbers with no stored JSON behind them (the callgrind breakdown by part, the
strace and nstat counts, the accept-fix A/B of docs/workers.md, the perf
profile of static gzip) are not checked here; the text says where they come
from.
"""

from __future__ import annotations

import json
import math
import os
import re
import statistics
import sys

BENCH = os.path.dirname(os.path.abspath(__file__))
REPO = os.path.dirname(BENCH)
RESULTS = os.path.join(BENCH, "results")
sys.path.insert(0, REPO)

from bench import run  # noqa: E402  (the path above makes bench importable)

run.log = lambda msg: None  # re-judging stored runs: no progress lines

FULL = "2026-11-26_050725-full-3.14"
CALLGRIND = "2026-11-26_050725-callgrind-3.14"
PERF = "2026-11-26_052852-perf-pounce-plaintext-3.14.txt"
HOST = "2026-11-26_062821-full-host"
LOADED_FULL = "2026-11-26_022644-full-3.14"
LOADED_QUICK = ["2026-11-26_024711-quick-3.14", "2026-11-26_025119-quick-3.14",
                "2026-11-26_025229-quick-3.14", "2026-11-26_025623-quick-3.14",
                "2026-11-26_025721-quick-3.14"]
WS_BEFORE, WS = "2026-11-26_031309-websocket", "2026-11-26_053037-websocket"
COMP_BEFORE, COMP = "2026-11-26_031126-compression", "2026-11-26_053221-compression"
TLS, TLS_FIRST = "2026-12-06_185033-tls-host", "2026-12-06_155515-tls-host"
STATIC = "2026-12-06_222405-static-host"
# Earlier, busier runs the section names, newest first.
STATIC_BEFORE = ["2026-12-06_221150-static-host", "2026-12-06_220509-static-host", "2026-12-06_215620-static-host",
                 "2026-12-06_214859-static-host", "2026-12-06_214045-static-host"]
# The two of them whose p99 spikes the section names (Pounce's, not nginx's).
STATIC_SPIKES = ["2026-12-06_214859-static-host", "2026-12-06_215620-static-host"]
H2 = "2026-12-07_010711-h2-host"
# Earlier HTTP/2 runs the section names, newest first: the same code as H2,
# then three before h2-core's stall fix (1055b99), the last two of which
# counted h2load's failed + errored + timed out as errors (fixed since).
H2_BEFORE = ["2026-12-07_010138-h2-host", "2026-12-07_005403-h2-host", "2026-12-07_004724-h2-host",
             "2026-12-07_004112-h2-host"]


def load(name: str) -> dict:
    with open(os.path.join(RESULTS, name + ".json")) as f:
        return json.load(f)


def judged(name: str) -> dict:
    """A wrk result with its failed runs marked and its summaries redone."""
    doc = load(name)
    for wl, res in doc["workloads"].items():
        run.finish_workload(wl, res)
    return doc


def read(path: str) -> str:
    with open(os.path.join(REPO, path)) as f:
        return f.read()


def section(text: str, start: str, end: str | None) -> str:
    i = text.index(start)
    j = text.index(end, i) if end else len(text)
    return text[i:j]


def n0(x: float) -> str:
    return f"{x:,.0f}"


def f2(x: float) -> str:
    return f"{x:.2f}"


def rng(lo: float, hi: float, fmt: str = ".2f", sep: str = "–") -> str:
    return f"{lo:{fmt}}{sep}{hi:{fmt}}"


problems: list[str] = []


def need(doc_name: str, text: str, fragment: str, why: str) -> None:
    """fragment must occur in text; line breaks count as spaces."""
    if " ".join(fragment.split()) not in " ".join(text.split()):
        problems.append(f"{doc_name}: expected {fragment!r}\n    ({why})")


def need_block(doc_name: str, text: str, block: str, why: str) -> None:
    """Every line of block, in order, as consecutive lines of text."""
    lines = [ln for ln in block.splitlines() if ln.startswith("|")]
    body = text.splitlines()
    for i in range(len(body)):
        if body[i:i + len(lines)] == lines:
            return
    missing = [ln for ln in lines if ln not in body]
    problems.append(f"{doc_name}: the table is not {why}; lines missing or changed:\n    "
                    + "\n    ".join(missing[:20] or ["(order differs)"]))


# --------------------------------------------------------------------------
# docs/benchmarks.md


def check_benchmarks() -> None:
    name = "docs/benchmarks.md"
    text = read(name)
    full = judged(FULL)
    w = full["workloads"]

    def m(wl, s, key="rps", stat="median"):
        return w[wl]["summary"][s][key][stat]

    def samples(wl, s):
        return w[wl]["samples"][s]

    # The two tables: what bench/run.py --render prints for this JSON.
    rendered = run.render(os.path.join(RESULTS, FULL + ".json"))
    table, _, tgt = rendered.partition("\n\n| target")
    need_block(name, text, table, f"`bench/run.py --render bench/results/{FULL}.json`")
    need_block(name, text, "| target" + tgt, "the targets of `bench/run.py --render`")

    # The header: load and versions.
    load_ = full["load"]
    need(name, text, f"{load_['start']:.1f} at the start and {load_['end']:.1f} at the end",
         "load start/end of the full run")
    need(name, text, f"{load_['max']:.1f} at most", "load max of the full run")
    v = full["versions"]
    need(name, text, f"pounce-asgi {v['pounce']['pounce-asgi']}", "versions.pounce")
    need(name, text, f"pydantic {v['pounce']['pydantic']}", "versions.pounce.pydantic")

    # Which one-worker workloads were CPU-bound: every round of every server
    # that did not fail at >= 98 % (the server saturated its CPU).
    one = [wl for wl in w if run.WORKLOADS[wl].workers == 1]
    bound = [wl for wl in one if all(x["cpu_pct"] >= 98 for s in w[wl]["summary"]
                                     for x in samples(wl, s))]
    assert bound == ["plaintext", "pipelined", "body10k", "json64k", "echo10k", "stream100",
                     "starlette", "fastapi"], bound
    lo = min(x["cpu_pct"] for wl in bound for s in w[wl]["summary"] for x in samples(wl, s))
    hi = max(x["cpu_pct"] for wl in bound for s in w[wl]["summary"] for x in samples(wl, s))
    need(name, text, f"{math.floor(lo)}–{round(hi)} % in every round", "CPU % range, CPU-bound workloads")

    def cpu_rng(wl, s):
        v = [x["cpu_pct"] for x in samples(wl, s)]
        return f"{round(min(v))}–{round(max(v))} %"
    for s in ("pounce", "uvicorn", "granian", "hypercorn", "bengal"):
        need(name, text, f"{s} {cpu_rng('paced', s)}", f"paced CPU % range of {s}")
    for s in ("pounce", "uvicorn", "granian"):
        need(name, text, f"{s} {cpu_rng('sleep10ms', s)}", f"sleep10ms CPU % range of {s}")
    for s in ("hypercorn", "bengal"):
        assert all(x["cpu_pct"] >= 98 for x in samples("sleep10ms", s))
    need(name, text, "hypercorn and bengal 98–100 %", "sleep10ms: hypercorn, bengal CPU-bound")

    # bengal's pipelined run, the failed one.
    b = samples("pipelined", "bengal")
    assert "bengal" in w["pipelined"]["failed"]
    assert len({x["requests"] for x in b}) == 1
    need(name, text, f"{b[0]['requests']} responses in each "
         f"{run.WORKLOADS['pipelined'].connections}-connection round", "bengal pipelined: requests per round")
    need(name, text, f"{max(x['cpu_pct'] for x in b):.1f} % server CPU", "bengal pipelined: CPU %")

    # Plaintext against uvicorn: per-round ratios and CPU per request.
    def per_round(wl, a, c):
        ra = {x["round"]: x for x in samples(wl, a)}
        return [ra[x["round"]]["rps"] / x["rps"] for x in sorted(samples(wl, c), key=lambda y: y["round"])]
    pr = per_round("plaintext", "pounce", "uvicorn")
    need(name, text, f"the three rounds gave {pr[0]:.2f}×, {pr[1]:.2f}× and {pr[2]:.2f}×",
         "plaintext pounce/uvicorn req/s per round")
    need(name, text, f"ratio of the medians, {m('plaintext', 'pounce') / m('plaintext', 'uvicorn'):.2f}×",
         "plaintext pounce/uvicorn ratio of medians")
    us = {s: [x["cpu_s_per_10k"] * 100 for x in samples("plaintext", s)] for s in ("pounce", "uvicorn")}
    for s in us:
        need(name, text, f"{s} {min(us[s]):.1f}–{max(us[s]):.1f} µs (median {statistics.median(us[s]):.1f})",
             f"plaintext CPU µs per request of {s}: cpu_s_per_10k × 100")
    goal = statistics.median(us["uvicorn"]) / 2.5
    need(name, text, f"at {goal:.1f} µs, {statistics.median(us['pounce']) - goal:.1f} µs less",
         "uvicorn's median ÷ 2.5, and Pounce's median minus that")

    # perf (text file): self time by shared object.
    with open(os.path.join(RESULTS, PERF)) as f:
        perf = f.read()
    head = re.search(r"([\d,]+) req/s, ([\d.]+) CPU s/10k", perf)
    need(name, text, f"{head.group(1)} req/s, {head.group(2)} CPU s/10k", "perf run header")
    selfs = {}
    for ln in section(perf, "== by shared object", "== by symbol").splitlines():
        mm = re.match(r"\s+[\d.]+%\s+([\d.]+)%\s+(\S+)", ln)
        if mm:
            selfs[mm.group(2)] = float(mm.group(1))
    for dso, label in (("[kernel.kallsyms]", "kernel: the loopback TCP send and receive path"),
                       ("python3.14", "libpython"), ("_pounce.cpython-314-x86_64-linux-gnu.so", "`_pounce.so`"),
                       ("libc.so.6", "libc"), ("_asyncio.cpython-314-x86_64-linux-gnu.so", "`_asyncio`"),
                       ("[vdso]", "vdso")):
        need(name, text, f"| {label} | {selfs[dso]:.1f} % |", f"perf self share of {dso}")
    kernel_us = selfs["[kernel.kallsyms]"] / 100 * float(head.group(2)) * 100
    need(name, text, f"about {kernel_us:.1f} µs of kernel time", "perf: kernel share × CPU per request")
    need(name, text, f"{float(head.group(2)) * 100 - kernel_us:.1f} µs in user space", "perf: the rest")

    # callgrind.
    cg = {r["server"]: r["ir_per_req"] for r in load(CALLGRIND)["rows"]}
    need(name, text, f"| plaintext | pounce | {n0(cg['pounce'])} | {cg['pounce'] / cg['uvicorn']:.2f} |",
         "callgrind table, pounce")
    need(name, text, f"| plaintext | uvicorn | {n0(cg['uvicorn'])} |  |", "callgrind table, uvicorn")
    need(name, text, f"{cg['pounce'] / 1000:.1f}k instructions per request", "callgrind pounce")
    need(name, text, f"uvicorn needs {cg['uvicorn'] / 1000:.1f}k", "callgrind uvicorn")
    need(name, text, f"{cg['uvicorn'] / cg['pounce']:.1f}× fewer instructions", "callgrind ratio")

    # The earlier, loaded runs.
    loaded = [judged(LOADED_FULL)] + [judged(q) for q in LOADED_QUICK]
    lo = min(min(d["load"]["start"], d["load"]["end"]) for d in loaded)
    hi = max(d["load"]["max"] for d in loaded)
    need(name, text, f"load average at {lo:.1f}–{hi:.1f}", "load range of the loaded runs")
    summaries = [sm for d in loaded for res in d["workloads"].values() for sm in res["summary"].values()]
    p = [sm["p99_us"]["median"] / sm["p50_us"]["median"] for sm in summaries if sm["p50_us"]["median"]]
    need(name, text, f"p99 was {min(p):.1f}× to {max(p):.0f}× its p50", "p99/p50 range, loaded runs")
    q = [w[wl]["summary"][s]["p99_us"]["median"] / w[wl]["summary"][s]["p50_us"]["median"]
         for wl in bound if run.WORKLOADS[wl].latency for s in w[wl]["summary"]]
    need(name, text, f"{min(q):.2f}–{max(q):.1f}× in the quiet run's CPU-bound workloads",
         "p99/p50 range, quiet run, CPU-bound workloads")
    pc = [d["workloads"][wl]["summary"]["pounce"]["cpu_pct"]["median"] for d in loaded
          for wl in d["workloads"] if wl != "paced" and "pounce" in d["workloads"][wl]["summary"]]
    need(name, text, f"between {min(pc):.0f} and {max(pc):.0f} % (under 65 % in {sum(x < 65 for x in pc)} "
         f"of its {len(pc)} workload runs", "Pounce's median CPU % in the loaded runs, paced excluded")

    def ratio(d, wl, a, c, key="rps"):
        s = d["workloads"][wl]["summary"]
        if key == "rps":
            return s[a]["rps"]["median"] / s[c]["rps"]["median"]
        return s[c]["cpu_s_per_10k"]["median"] / s[a]["cpu_s_per_10k"]["median"]
    pt = [ratio(d, "plaintext", "pounce", "uvicorn") for d in loaded if "plaintext" in d["workloads"]]
    pc = [ratio(d, "plaintext", "pounce", "uvicorn", "cpu") for d in loaded if "plaintext" in d["workloads"]]
    need(name, text, f"swung from {min(pt):.2f}× to {max(pt):.2f}× between runs", "loaded plaintext ratios")
    need(name, text, f"CPU-per-request ratio stayed at {min(pc):.2f}–{max(pc):.2f}×", "loaded CPU ratios")
    need(name, text, f"plaintext ratio at {pt[0]:.2f}× (full, 02:26) and "
         f"{min(pt[1:]):.2f}–{max(pt[1:]):.2f}× (quick)", "loaded plaintext ratios, full and quick")
    jr = [ratio(d, "json64k", "pounce", "uvicorn") for d in loaded if "json64k" in d["workloads"]]
    need(name, text, f"({min(jr):.2f}× to {max(jr):.2f}×)", "json64k pounce/uvicorn req/s, loaded runs")

    # Before and after write coalescing: the loaded 02:26 run against the quiet one.
    lf = loaded[0]["workloads"]
    for wl in ("pipelined", "stream100"):
        a, c = lf[wl]["summary"]["pounce"], w[wl]["summary"]["pounce"]
        need(name, text, f"{n0(a['rps']['median'])} → {n0(c['rps']['median'])} req/s",
             f"{wl} req/s before/after")
        need(name, text, f"{a['cpu_s_per_10k']['median']:.3f} → {c['cpu_s_per_10k']['median']:.3f} CPU s/10k",
             f"{wl} CPU per request before/after")
    for wl in ("pipelined", "stream100"):
        a, c = lf[wl]["summary"]["pounce"], w[wl]["summary"]["pounce"]
        need(name, text, f"{a['cpu_s_per_10k']['median'] / c['cpu_s_per_10k']['median']:.1f}× less",
             f"{wl}: CPU per request before ÷ after")
    cp = [x["cpu_pct"] for wl in ("pipelined", "stream100") for x in lf[wl]["samples"]["pounce"]]
    need(name, text, f"Pounce had only {min(cp):.0f}–{max(cp):.0f} % of its CPU", "02:26 run, Pounce CPU %")
    assert "bengal" in lf["pipelined"]["failed"], "the 02:26 run's bengal pipelined run stalled too"
    top = max(x["cpu_pct"] for s in w["paced"]["summary"] for x in samples("paced", s))
    need(name, text, f"paced keeps every server below {math.ceil(top / 5) * 5} %",
         "paced: highest server CPU %, rounded up to 5")
    need(name, text, f"p99 {lf['stream100']['summary']['pounce']['p99_us']['median'] / 1000:.0f} ms → "
         f"{m('stream100', 'pounce', 'p99_us') / 1000:.2f} ms", "stream100 p99 before/after")
    wb = load(WS_BEFORE)["cases"]["echo 32 B"]["summary"]["pounce"]
    wa = load(WS)["cases"]["echo 32 B"]["summary"]["pounce"]
    need(name, text, f"{wb['msgs_per_s']['median'] / 1000:.0f}k → {wa['msgs_per_s']['median'] / 1000:.0f}k msg/s",
         "WebSocket echo 32 B before/after")
    need(name, text, f"{wb['cpu_us_per_msg']['median']:.2f} → {wa['cpu_us_per_msg']['median']:.2f} µs",
         "WebSocket echo 32 B CPU per message before/after")

    # json64k.
    need(name, text, f"Pounce spends {m('json64k', 'pounce', 'cpu_s_per_10k') * 100:.0f} µs of CPU per request "
         f"here, against {m('plaintext', 'pounce', 'cpu_s_per_10k') * 100:.0f} µs", "json64k vs plaintext CPU")
    c = {s: m("json64k", s, "cpu_s_per_10k") for s in w["json64k"]["summary"]}
    need(name, text, f"within {(max(c['uvicorn'], c['granian']) / c['pounce'] - 1) * 100:.0f} %",
         "json64k: uvicorn and granian CPU per request vs Pounce")
    x = {s: c[s] / c["pounce"] for s in c}
    need(name, text, f"hypercorn {x['hypercorn']:.2f}× and bengal {x['bengal']:.2f}×",
         "json64k: hypercorn and bengal CPU ratios")
    need(name, text, f"(uvicorn {x['uvicorn']:.2f}×, granian {x['granian']:.2f}× Pounce's)",
         "json64k: uvicorn and granian CPU ratios")

    # Two workers.
    for wl in ("plaintext-2w", "starlette-2w"):
        need(name, text, f"{wl}: " + ", ".join(f"{s} {m(wl, s, 'p99_us') / 1000:.2f} ms"
                                               for s in ("pounce", "uvicorn", "granian")), f"{wl} p99")
        assert m(wl, "pounce", "p99_us") > m(wl, "uvicorn", "p99_us"), "Pounce's p99 above uvicorn's"
        assert max(w[wl]["summary"], key=lambda s: m(wl, s)) == "pounce"
        assert min(w[wl]["summary"], key=lambda s: m(wl, s, "cpu_s_per_10k")) == "pounce"

    # Peak RSS: lowest in every workload; plaintext numbers.
    for wl, res in w.items():
        assert min(res["peak_rss_kb"], key=res["peak_rss_kb"].get) == "pounce", wl
    r = w["plaintext"]["peak_rss_kb"]
    need(name, text, f"{r['pounce'] / 1024:.0f} MB against uvicorn's {r['uvicorn'] / 1024:.0f} MB, bengal's "
         f"{r['bengal'] / 1024:.0f} MB, hypercorn's {r['hypercorn'] / 1024:.0f} MB and granian's "
         f"{r['granian'] / 1024:.0f} MB", "plaintext peak RSS")


# --------------------------------------------------------------------------
# README.md, the "Performance" section


def check_readme() -> None:
    name = "README.md"
    text = section(read(name), "## Performance", "## License")
    full = judged(FULL)
    w = full["workloads"]

    def m(wl, s, key="rps"):
        return w[wl]["summary"][s][key]["median"]

    rows = [("plaintext 13 B", "plaintext"), ("pipelined plaintext (16 deep)", "pipelined"),
            ("10 KB body", "body10k"), ("POST echo 10 KB", "echo10k"), ("streamed, 100 chunks", "stream100"),
            ("64 KB JSON (`json.dumps` per request)", "json64k"), ("Starlette (routing + JSON)", "starlette"),
            ("FastAPI (routing + pydantic)", "fastapi"), ("`asyncio.sleep(0.01)`, 512 connections", "sleep10ms")]

    def x(v):  # the README rounds ratios of 10 or more to one decimal
        return f"{v:.1f}×" if v >= 10 else f"{v:.2f}×"

    def ms(v):
        return f"{v / 1000:.1f}" if v >= 10_000 else f"{v / 1000:.2f}"
    for label, wl in rows:
        s = w[wl]["summary"]
        peers = {p: s[p]["p99_us"]["median"] for p in s if p != "pounce" and s[p]["p99_us"]["median"]}
        p99 = (f"{ms(m(wl, 'pounce', 'p99_us'))} / {ms(min(peers.values()))} ms"
               if m(wl, "pounce", "p99_us") else "–")
        cpu = m(wl, "uvicorn", "cpu_s_per_10k") / m(wl, "pounce", "cpu_s_per_10k")
        need(name, text, f"| {label} | {n0(m(wl, 'pounce'))} | {x(m(wl, 'pounce') / m(wl, 'uvicorn'))} | "
             f"{x(m(wl, 'pounce') / m(wl, 'granian'))} | {x(cpu)} less | {p99} |", f"README row {wl}")
    shown = [wl for _, wl in rows[:-1]]
    cpu = [x["cpu_pct"] for wl in shown for s in w[wl]["summary"] for x in w[wl]["samples"][s]]
    need(name, text, f"held its one CPU at {math.floor(min(cpu))}–{round(max(cpu))} % in every round",
         "CPU % of every round of every non-failed server in the rows but the last")
    sl = [x["cpu_pct"] for x in w["sleep10ms"]["samples"]["pounce"]]
    need(name, text, f"Pounce ({round(min(sl))}–{round(max(sl))} % CPU)", "sleep10ms Pounce CPU %")
    assert all(x["cpu_pct"] < 90 for s in ("uvicorn", "granian") for x in w["sleep10ms"]["samples"][s])
    assert "bengal" in w["pipelined"]["failed"]
    cg = {r["server"]: r["ir_per_req"] for r in load(CALLGRIND)["rows"]}
    need(name, text, f"{n0(cg['pounce'])} against uvicorn's {n0(cg['uvicorn'])}", "callgrind")
    need(name, text, f"{cg['uvicorn'] / cg['pounce']:.1f}× fewer instructions", "callgrind ratio")
    mine, theirs = ({x["round"]: x["rps"] for x in w["plaintext"]["samples"][s]} for s in ("pounce", "uvicorn"))
    pr = [mine[k] / theirs[k] for k in sorted(mine)]
    need(name, text, f"round by round it was {pr[0]:.2f}, {pr[1]:.2f} and {pr[2]:.2f}",
         "plaintext per-round ratios")
    with open(os.path.join(RESULTS, PERF)) as f:
        kern = re.search(r"[\d.]+%\s+([\d.]+)%\s+\[kernel", f.read()).group(1)
    need(name, text, f"{float(kern):.0f} % of Pounce's", "perf kernel share")
    # Host run.
    h = judged(HOST)["workloads"]
    hp = h["plaintext"]["summary"]
    need(name, text, f"plaintext {n0(hp['pounce']['rps']['median'])} vs uvicorn's "
         f"{n0(hp['uvicorn']['rps']['median'])} req/s", "host plaintext")
    hm = {s: {k: hp[s][k]["median"] for k in ("rps", "cpu_s_per_10k", "p99_us")} for s in hp}
    need(name, text, f"**{hm['pounce']['rps'] / hm['uvicorn']['rps']:.2f}×**, CPU per request "
         f"{hm['uvicorn']['cpu_s_per_10k'] / hm['pounce']['cpu_s_per_10k']:.2f}× less, p99 "
         f"{hm['pounce']['p99_us'] / 1000:.2f} vs {hm['uvicorn']['p99_us'] / 1000:.2f} ms",
         "host plaintext ratios")
    hb = h["body10k"]["summary"]
    need(name, text, f"10 KB body {hb['pounce']['rps']['median'] / hb['uvicorn']['rps']['median']:.2f}×",
         "host body10k")
    # Compression and WebSocket lines.
    c = comp_pairs(load(COMP))
    need(name, text, f"gzip 6 against gzip 6, {c['dumps', 6][0]:.2f}× the requests with `json.dumps` per "
         f"request and {c['static', 6][0]:.2f}× on a prebuilt body", "compression like for like")
    need(name, text, f"zstd (level 3) against `GZipMiddleware`'s default level 9: {c['dumps', 'zstd'][0]:.2f}× "
         f"and {c['static', 'zstd'][0]:.1f}×", "compression zstd vs gzip 9")
    ws = load(WS)["cases"]

    def wsr(case):
        s = ws[case]["summary"]
        return s["pounce"]["msgs_per_s"]["median"] / s["uvicorn"]["msgs_per_s"]["median"]
    e = ws["echo 32 B"]["summary"]
    need(name, text, f"{e['pounce']['msgs_per_s']['median'] / 1000:.0f}k/s vs "
         f"{e['uvicorn']['msgs_per_s']['median'] / 1000:.0f}k/s ({wsr('echo 32 B'):.1f}×", "ws echo 32 B")
    need(name, text, f"64 KiB {wsr('echo 64 KiB'):.2f}×, with permessage-deflate "
         f"{wsr('echo 32 B, deflate'):.1f}× (small) and {wsr('echo 64 KiB, deflate'):.2f}×",
         "ws 64 KiB and deflate")
    need(name, text, f"broadcast to 100 clients {wsr('broadcast 32 B to 100'):.2f}×", "ws broadcast")


# --------------------------------------------------------------------------
# docs/compression.md, "Measured: the server"


def comp_pairs(doc: dict) -> dict:
    by = {(c["server"], c["label"]): c["summary"] for c in doc["cases"]}
    out = {}
    for body in ("dumps", "static"):
        pairs = {"identity": (f"{body}, identity", f"{body}, identity"),
                 6: (f"{body}, gzip (level 6)", f"{body}, GZipMiddleware (level 6)"),
                 "zstd": (f"{body}, zstd (level 3)", f"{body}, GZipMiddleware (level 9)"),
                 "br": (f"{body}, br (quality 4)", f"{body}, GZipMiddleware (level 9)"),
                 "gzip6-9": (f"{body}, gzip (level 6)", f"{body}, GZipMiddleware (level 9)")}
        for k, (a, b) in pairs.items():
            pa, pb = by["pounce", a], by["uvicorn", b]
            out[body, k] = (pa["rps"]["median"] / pb["rps"]["median"],
                            pb["cpu_us_per_req"]["median"] / pa["cpu_us_per_req"]["median"], a, b)
    return out


def check_compression() -> None:
    name = "docs/compression.md"
    text = section(read(name), "## Measured: the server", None)
    sys.path.insert(0, BENCH)
    import compression_bench  # noqa: E402  (standard library and bench.run only)
    doc = load(COMP)
    main_table = compression_bench.markdown(doc).split("\n\n")[0]
    need_block(name, text, main_table, f"compression_bench.py's table of bench/results/{COMP}.json")
    pairs = comp_pairs(doc)
    order = [(b, k) for k in (6, "identity") for b in ("dumps", "static")]
    order += [(b, k) for k in ("zstd", "br", "gzip6-9") for b in ("dumps", "static")]
    for key in order:
        rps, cpu, a, b = pairs[key]
        need(name, text, f"| {a} | {b} | {rps:.2f} | {cpu:.2f} |", f"ratio row {key}")
    by = {(c["server"], c["label"]): c for c in doc["cases"]}

    def cpu(s, label):
        return by[s, label]["summary"]["cpu_us_per_req"]["median"]
    d6, s6 = pairs["dumps", 6], pairs["static", 6]
    need(name, text, f"{d6[0]:.2f}× the requests with `json.dumps` per request and {s6[0]:.2f}× on the static "
         f"body ({d6[1]:.2f}× and {s6[1]:.2f}× less CPU per request)", "gzip 6 vs 6")
    need(name, text, f"same size, {by['pounce', 'dumps, gzip (level 6)']['wire_bytes']:,} bytes", "gzip 6 size")
    assert (by["pounce", "dumps, gzip (level 6)"]["wire_bytes"]
            == by["uvicorn", "dumps, GZipMiddleware (level 6)"]["wire_bytes"])
    zstd = cpu("pounce", "dumps, zstd (level 3)") - cpu("pounce", "dumps, identity")
    gz9 = cpu("uvicorn", "dumps, GZipMiddleware (level 9)") - cpu("uvicorn", "dumps, identity")
    need(name, text, f"zstd at level 3 costs {zstd:.0f} µs more than identity, and `GZipMiddleware` at its "
         f"default level 9 costs {gz9:.0f} µs more", "codec cost over identity, dumps")
    need(name, text, f"{pairs['dumps', 'zstd'][0]:.2f}× the req/s", "zstd vs gzip 9, dumps")
    need(name, text, f"{by['pounce', 'dumps, zstd (level 3)']['wire_bytes'] / 1000:.1f} KB instead of "
         f"{by['uvicorn', 'dumps, GZipMiddleware (level 9)']['wire_bytes'] / 1000:.1f} KB", "sizes")
    need(name, text, f"zstd is {pairs['static', 'zstd'][1]:.1f}× cheaper per request",
         "zstd vs gzip 9, static CPU")
    need(name, text, f"gzip 6 against level 9 is already {pairs['dumps', 'gzip6-9'][1]:.2f}× (dumps) and "
         f"{pairs['static', 'gzip6-9'][1]:.2f}× (static) less CPU", "Pounce gzip 6 vs GZip 9, CPU")
    si = pairs["static", "identity"]
    need(name, text, f"compare the CPU per request there ({si[1]:.2f}×), not the req/s ({si[0]:.2f}×)",
         "static identity ratios")
    br = cpu("pounce", "static, br (quality 4)") - cpu("pounce", "static, identity")
    zs = cpu("pounce", "static, zstd (level 3)") - cpu("pounce", "static, identity")
    need(name, text, f"for about {br:.0f} µs per 64 KB over identity, {br / zs:.1f}× zstd's", "br cost")
    need(name, text, f"Pounce spends {cpu('pounce', 'static, identity'):.0f} µs per 64 KB response against "
         f"uvicorn's {cpu('uvicorn', 'static, identity'):.0f} µs", "static identity")
    need(name, text, f"busy {by['pounce', 'static, identity']['summary']['cpu_pct']['median']:.1f} % of the time",
         "static identity CPU %")
    app = cpu("pounce", "dumps, identity") - cpu("pounce", "static, identity")
    need(name, text, f"about {app / 1000:.2f} ms of app time", "dumps minus static, Pounce identity")
    p99 = {label: by["uvicorn", label]["summary"]["p99_us"]["median"] / 1e6
           for (s, label) in by if s == "uvicorn" and "GZip" in label}
    slow = sorted(v for v in p99.values() if v > 0.1)
    need(name, text, f"{slow[0]:.2f} to {slow[-1]:.1f} s in three of its four cases", "uvicorn GZip p99")
    need(name, text, f"static at level 9: {p99['static, GZipMiddleware (level 9)'] * 1000:.0f} ms",
         "uvicorn GZip static 9 p99")
    worst = max((c["summary"]["p99_us"]["median"] / c["summary"]["p50_us"]["median"], c["label"])
                for c in doc["cases"] if c["server"] == "pounce")
    need(name, text, f"at most {worst[0]:.1f}× its p50", "Pounce p99/p50")
    before = comp_pairs(load(COMP_BEFORE))
    dev = max(abs(before[k][1] / pairs[k][1] - 1) for k in pairs) * 100
    need(name, text, f"CPU-per-request ratios within {math.ceil(dev)} % of these", "earlier run, CPU ratios")
    need(name, text, f"gzip 6 against gzip 6 {before['dumps', 6][0]:.2f}× and {before['static', 6][0]:.2f}×",
         "earlier run, gzip 6 vs 6")
    load_ = doc["load"]
    need(name, text, f"load average {load_['start']:.1f} at the start, {load_['end']:.1f} at the end", "load")
    need(name, text, f"commit {doc['machine']['commit']}", "commit")


def check_tls() -> None:
    """The TLS section of docs/benchmarks.md (issue 14)."""
    name = "docs/benchmarks.md"
    text = section(read(name), "### TLS (`make bench-tls`)", "### Earlier runs")
    doc = judged(TLS)
    # Both tables, each as --render prints them.
    for block in run.tls_markdown(doc).split("\n\n"):
        if block.startswith("|"):
            need_block(name, text, block, f"`bench/run.py --render bench/results/{TLS}.json`")
    load_ = doc["load"]
    need(name, text, f"load average {load_['start']:.2f} at the start, {load_['end']:.2f} at the end",
         "load of the TLS run")
    hs = doc["workloads"]["tls-handshake"]["summary"]
    need(name, text, f"at {hs['pounce']['cpu_pct']['median']:.0f} % (pounce),\n"
         f"{hs['granian']['cpu_pct']['median']:.0f} % (granian) and "
         f"{hs['uvicorn']['cpu_pct']['median']:.0f} % (uvicorn) of CPU 1", "server CPU % in tls-handshake")
    # The met/missed paragraph: Pounce's ratios and its keep-alive figure.
    us = {wl: {s: run.cpu_us(m) for s, m in doc["workloads"][wl]["summary"].items()}
          for wl in ("tls-plaintext", "tls-resume", "tls-handshake")}
    ka = us["tls-plaintext"]
    need(name, text, f"keep-alive against granian ({ka['granian'] / ka['pounce']:.2f}×)", "ratio vs granian")
    need(name, text, f"uvicorn ({ka['uvicorn'] / ka['pounce']:.2f}×, 4× asked", "ratio vs uvicorn")
    need(name, text, f"request over TLS costs {ka['pounce']:.1f} µs,\nand {ka['uvicorn'] / 4:.1f} µs would do",
         "keep-alive µs and the 4× bound")
    need(name, text, f"({us['tls-handshake']['granian'] / us['tls-handshake']['pounce']:.2f}× full, "
         f"{us['tls-resume']['granian'] / us['tls-resume']['pounce']:.2f}× resumed",
         "handshake ratios")
    need(name, text, f"Pounce's figures here are {ka['pounce']:.1f} / {us['tls-resume']['pounce']:.0f} / "
         f"{us['tls-handshake']['pounce']:.0f} µs", "Pounce's three figures")
    need(name, text, f"uvicorn (httptools, uvloop,\nwhose TLS runs OpenSSL through `ssl.MemoryBIO`) spends {ka['uvicorn']:.1f} µs",
         "uvicorn's keep-alive figure")
    first_doc = judged(TLS_FIRST)
    need(name, text, f"between {first_doc['load']['start']:.1f} and {first_doc['load']['max']:.1f}",
         "load of the first TLS run")
    first = first_doc["workloads"]["tls-plaintext"]["summary"]
    need(name, text, f"measured {run.cpu_us(first['uvicorn']):.1f} µs for uvicorn and "
         f"{run.cpu_us(first['granian']):.1f} µs for granian", "the first TLS run")
    w = doc["workloads"]
    full = {s: run.cpu_us(m) for s, m in w["tls-handshake"]["summary"].items()}
    resumed = {s: run.cpu_us(m) for s, m in w["tls-resume"]["summary"].items()}
    assert full["granian"] < full["uvicorn"] / 2, "'less than half' no longer holds"
    saved = 1 - resumed["granian"] / full["granian"]
    need(name, text, f"saves granian only about {round(saved * 10) * 10:.0f} %", "resumed vs full, granian")


def check_static() -> None:
    """The static-file section of docs/benchmarks.md (issue 16)."""
    from bench import static_bench
    name = "docs/benchmarks.md"
    text = section(read(name), "### Static files (`make bench-static`)", "### Earlier runs")
    doc = load(STATIC)
    # Every table, as `bench/static_bench.py --render` prints it.
    for block in static_bench.markdown(doc).split("\n\n"):
        if block.startswith("|"):
            need_block(name, text, block, f"`bench/static_bench.py --render bench/results/{STATIC}.json`")
    load_ = doc["load"]
    need(name, text, f"load average {load_['start']:.2f} at the start, {load_['end']:.2f} at the end "
         f"(at most {load_['max']:.2f} between samples)", "load of the static run")
    need(name, text, f"commit {doc['machine']['commit']}", "commit of the static run")
    need(name, text, f"run with\n`.venv/bin/{doc['command'].replace('python ', 'python ', 1)}`", "command of the static run")
    w = doc["workloads"]
    pct = [m["cpu_pct"]["median"] for res in w.values() if res["kind"] == "wrk" for m in res["summary"].values()]
    one_pct = [m["cpu_pct"]["median"] for m in w["1k"]["summary"].values()]
    need(name, text, f"On 1 KiB the servers ran at {min(one_pct):.0f}–{max(one_pct):.0f} % of CPU 1", "1k server CPU %")
    assert min(one_pct) == w["1k"]["summary"]["pounce"]["cpu_pct"]["median"], "1k: Pounce is no longer the least busy"
    one = w["1k"]["summary"]
    us = {s: m["cpu_us_per_req"]["median"] for s, m in one.items()}
    rps1 = {s: m["rps"]["median"] for s, m in one.items()}
    need(name, text, f"Pounce serves {rps1['pounce'] / rps1['nginx']:.2f}× nginx's req/s and spends {us['pounce']:.1f} µs "
         f"of CPU per request against nginx's {us['nginx']:.1f} (less in every round), granian's {us['granian']:.1f} "
         f"and Starlette's {us['starlette']:.0f}", "1k req/s ratio and CPU per request")
    rounds = {x["round"]: x["cpu_us_per_req"] for x in w["1k"]["samples"]["nginx"]}
    assert all(x["cpu_us_per_req"] < rounds[x["round"]] for x in w["1k"]["samples"]["pounce"]), \
        "1k: Pounce's CPU per request is no longer below nginx's in every round"
    big = w["1g"]["summary"]
    r1g = big["pounce"]["mb_per_s"]["median"] / big["nginx"]["mb_per_s"]["median"]
    need(name, text, f"The 1 GiB transfer ({r1g:.2f}×, 0.9× asked)", "1g ratio")
    big = w["1g"]["summary"]
    need(name, text, f"{big['pounce']['cpu_ms_per_gib']['median']:.0f} ms of CPU per GiB against nginx's "
         f"{big['nginx']['cpu_ms_per_gib']['median']:.0f}", "1g CPU per GiB")
    spread = max(max(x["rps"] for x in v) / min(x["rps"] for x in v)
                 for res in w.values() if res["kind"] == "wrk" for v in res["samples"].values() if v)
    need(name, text, f"differ from the next by up to {spread:.1f}×", "spread of req/s between rounds")
    per = [a["rps"] / b["rps"] for a in w["1k"]["samples"]["pounce"] for b in w["1k"]["samples"]["nginx"]
           if a["round"] == b["round"]]
    need(name, text, f"ranged from {min(per):.2f} to\n{max(per):.2f} between rounds", "1k ratio to nginx per round")
    need(name, text, f"Starlette is {us['starlette'] / us['pounce']:.0f}× Pounce's CPU per request",
         "Starlette CPU ratio")
    need(name, text, f"at {us['granian'] / us['pounce']:.2f}× Pounce's CPU", "granian CPU ratio")
    h = {s: m["cpu_us_per_req"]["median"] for s, m in w["100k"]["summary"].items()}
    hs = w["100k"]["summary"]
    hr = {s: m["rps"]["median"] for s, m in hs.items()}
    assert hr["pounce"] < hr["nginx"], "100k: Pounce is no longer behind nginx in req/s"
    assert h["pounce"] > h["nginx"], "100k: Pounce no longer spends more CPU per request than nginx"
    nr = {x["round"]: x["rps"] for x in w["100k"]["samples"]["nginx"]}
    behind = sum(x["rps"] < nr[x["round"]] for x in w["100k"]["samples"]["pounce"])
    need(name, text, f"Here Pounce is behind nginx: {hr['pounce'] / hr['nginx']:.2f}× its req/s "
         f"({hr['pounce']:,.0f} against {hr['nginx']:,.0f}, behind in {behind} of the "
         f"{len(w['100k']['samples']['pounce'])} rounds), at {hs['pounce']['cpu_pct']['median']:.0f} % of its core "
         f"against nginx's {hs['nginx']['cpu_pct']['median']:.0f} %, and {h['pounce']:.1f} µs of CPU per request "
         f"against {h['nginx']:.1f}.", "100k req/s, CPU % and CPU per request")
    # Every server spent more CPU per request than in the run before (22:11).
    prev = load(STATIC_BEFORE[0])["workloads"]
    for wl in ("1k", "100k"):
        for s, m in w[wl]["summary"].items():
            assert m["cpu_us_per_req"]["median"] > prev[wl]["summary"][s]["cpu_us_per_req"]["median"], \
                f"{wl} {s}: no longer more CPU per request than in {STATIC_BEFORE[0]}"
    need(name, text, f"(nginx {us['nginx']:.1f} µs on 1 KiB, against\n"
         f"{prev['1k']['summary']['nginx']['cpu_us_per_req']['median']:.1f} there)", "CPU per request vs the 22:11 run")
    ph = prev["100k"]["summary"]
    need(name, text, f"with Pounce at {ph['pounce']['rps']['median'] / ph['nginx']['rps']['median']:.2f}× nginx's "
         f"req/s on 100 KiB", "the 22:11 run's 100k ratio")
    need(name, text, f"It serves {rps1['pounce'] / rps1['starlette']:.2f}× Starlette's req/s (10× asked) and\n"
         f"{rps1['pounce'] / rps1['granian']:.2f}× granian's (1.5× asked)", "1k ratios to Starlette and granian")
    need(name, text, f"The rest of its {us['pounce']:.1f} µs", "1k CPU per request, callgrind bullet")
    need(name, text, f"(the client on CPU 0, or the neighbours)", "100k/1g pacing")
    assert all(big[s]["cpu_pct"]["median"] >= 99 for s in ("granian", "starlette")), "1g: granian/Starlette no longer fill their core"
    assert all(hs[s]["cpu_pct"]["median"] >= 99 for s in ("granian", "starlette")), "100k: granian/Starlette no longer fill their core"
    need(name, text, f"not by either server ({big['pounce']['cpu_pct']['median']:.0f} and "
         f"{big['nginx']['cpu_pct']['median']:.0f} % of their\ncores)", "1g CPU % of Pounce and nginx")
    alog = next(b for b in static_bench.markdown(doc).split("\n\n") if b.startswith("Access log on vs off"))
    need(name, text, alog, "the access-log line of --render")
    need(name, text, f"granian ({big['granian']['cpu_ms_per_gib']['median']:.0f} ms per GiB) and Starlette "
         f"({big['starlette']['cpu_ms_per_gib']['median']:,.0f} ms", "1g CPU per GiB, granian and Starlette")
    need(name, text, f"runs at {big['granian']['cpu_pct']['median']:.0f} % of its core", "granian 1g CPU %")
    wrk = [(s, x) for res in w.values() if res["kind"] == "wrk" for s, v in res["samples"].items() for x in v]
    mine = [x for s, x in wrk if s in ("pounce", "pounce-log")]
    nmax = max(x["p99_us"] for s, x in wrk if s == "nginx") / 1000
    spikes = sum(x["p99_us"] > 50000 for x in mine)
    if spikes:
        need(name, text, f"over 50 ms in {spikes} of its {len(mine)} wrk rounds", "Pounce's p99 spikes")
        need(name, text, f"nginx's never (at most {nmax:.1f} ms)", "nginx's worst p99")
        assert nmax < 50, "nginx's p99 went over 50 ms: the 'never' no longer holds"
    else:
        need(name, text, f"No p99 went over 50 ms for Pounce in its {len(mine)} wrk rounds (nginx: at most "
             f"{nmax:.1f} ms); its worst was\n{max(x['p99_us'] for x in mine) / 1000:.1f} ms", "p99 under 50 ms")
    counts, hhmm = [], []
    for n in STATIC_SPIKES:
        ew = load(n)["workloads"]
        ewrk = [(s, x) for res in ew.values() if res["kind"] == "wrk" for s, v in res["samples"].items() for x in v]
        emine = [x for s, x in ewrk if s in ("pounce", "pounce-log")]
        assert not any(x["p99_us"] > 50000 for s, x in ewrk if s == "nginx"), f"{n}: nginx's p99 went over 50 ms"
        counts.append((sum(x["p99_us"] > 50000 for x in emine), len(emine)))
        hhmm.append(f"{n[11:13]}:{n[13:15]}")
    assert len({c[1] for c in counts}) == 1
    need(name, text, f"In the {hhmm[0]} and {hhmm[1]} runs Pounce's p99 went over 50 ms in {counts[0][0]} and "
         f"{counts[1][0]}\nof its {counts[0][1]} rounds and nginx's in none", "the earlier p99 spikes")
    since = [STATIC] + STATIC_BEFORE[:STATIC_BEFORE.index(STATIC_SPIKES[1])]
    for n in since:
        ew = load(n)["workloads"]
        assert not any(x["p99_us"] > 50000 for res in ew.values() if res["kind"] == "wrk"
                       for s, v in res["samples"].items() if s in ("pounce", "pounce-log", "nginx")
                       for x in v), f"{n}: a p99 of Pounce or nginx over 50 ms"
    need(name, text, f"neither did in the {['', 'one', 'two', 'three', 'four'][len(since)]} runs since\n"
         f"(load at most {max(load(n)['load']['max'] for n in since):.2f})", "no p99 spikes since")
    for n in STATIC_BEFORE:
        e = load(n)
        miss = [t for t in e["targets"] if t["met"] is False]
        verdict = ("met every target" if not miss else "missed " + ", ".join(
            f"{t['target'].split(':')[0]} ({t['ratio']:.2f}×)" for t in miss))
        need(name, text, f"`bench/results/{n}.md` (load {e['load']['start']:.2f}–{e['load']['max']:.2f}) {verdict}",
             f"the earlier run {n}")
    verdict = "every one is met" if all(t["met"] for t in doc["targets"]) else "not all are met"
    need(name, text, f"**Targets**: {verdict} in this run", "targets verdict")
    cg = {(r["request"], r["setting"] == "--no-access-log"): r["ir_per_req"] for r in doc["callgrind"]}
    a = cg["plaintext app", False] - cg["plaintext app", True]
    need(name, text, f"(+{a:,.0f} on the plaintext app's {cg['plaintext app', True]:,.0f}, "
         f"{a / cg['plaintext app', True] * 100:.0f} %)", "callgrind, app request")
    need(name, text, f"is {cg['static 1k', True]:,.0f} instructions in user space", "callgrind, static request")
    d = cg["static 1k", False] - cg["static 1k", True]
    need(name, text, f"{cg['static 1k', True]:,.0f} instructions per 1 KiB request, and the access log adds "
         f"{d:,.0f} ({d / cg['static 1k', True] * 100:.0f} %)", "callgrind, access log")


def check_h2() -> None:
    """The HTTP/2 section of docs/benchmarks.md (issue 15)."""
    from bench import h2_bench
    name = "docs/benchmarks.md"
    text = section(read(name), "### HTTP/2 (`make bench-h2`)", "### Earlier runs")
    doc = load(H2)
    for block in h2_bench.markdown(doc).split("\n\n"):
        if block.startswith("|"):
            need_block(name, text, block, f"`bench/h2_bench.py --render bench/results/{H2}.json`")
    load_ = doc["load"]
    need(name, text, f"load average {load_['start']:.2f} at the start, {load_['end']:.2f} at the end "
         f"(at most {load_['max']:.2f} between samples)", "load of the HTTP/2 run")
    need(name, text, f"commit {doc['machine']['commit']}", "commit of the HTTP/2 run")
    need(name, text, f"`.venv/bin/{doc['command']}`", "command of the HTTP/2 run")
    w = doc["workloads"]
    mx = w["multiplex"]["summary"]
    us = {s: m["cpu_us_per_req"]["median"] for s, m in mx.items()}
    rps = {s: m["rps"]["median"] for s, m in mx.items()}
    pct = [m["cpu_pct"]["median"] for m in mx.values()]
    need(name, text, f"ran at {min(pct):.0f}–{max(pct):.0f} % of CPU 1", "multiplex server CPU %")
    need(name, text, f"Pounce spends {us['pounce']:.1f} µs of server CPU per request against granian's "
         f"{us['granian']:.1f} and hypercorn's {us['hypercorn']:.0f}", "multiplex CPU per request")
    need(name, text, f"{us['granian'] / us['pounce']:.2f}× granian per core (1.5× asked)", "the target's ratio")
    need(name, text, f"{rps['pounce'] / rps['granian']:.2f}× granian's req/s", "multiplex req/s ratio")
    per = [a["cpu_us_per_req"] / b["cpu_us_per_req"] for a in w["multiplex"]["samples"]["granian"]
           for b in w["multiplex"]["samples"]["pounce"] if a["round"] == b["round"]]
    need(name, text, f"from {min(per):.2f}× to {max(per):.2f}× between rounds", "per-round CPU ratio to granian")
    need(name, text, f"{us['hypercorn'] / us['pounce']:.0f}× less than hypercorn", "multiplex ratio to hypercorn")
    tl = w["tls-multiplex"]["summary"]
    tu = {s: m["cpu_us_per_req"]["median"] for s, m in tl.items()}
    need(name, text, f"Over TLS Pounce spends {tu['pounce']:.1f} µs per request against granian's "
         f"{tu['granian']:.1f} ({tu['granian'] / tu['pounce']:.2f}×)", "tls-multiplex")
    sm = w["stream"]["summary"]
    mb = {s: m["mb_per_s"]["median"] for s, m in sm.items()}
    cm = {s: m["cpu_us_per_mb"]["median"] for s, m in sm.items()}
    need(name, text, f"Pounce streams {mb['pounce']:,.0f} MB/s at {cm['pounce']:,.0f} µs of CPU per MB against "
         f"granian's {mb['granian']:,.0f} MB/s at {cm['granian']:,.0f} µs ({mb['pounce'] / mb['granian']:.2f}× its "
         f"throughput, {cm['granian'] / cm['pounce']:.2f}× less CPU per MB) and hypercorn's {mb['hypercorn']:,.0f} "
         f"MB/s at {cm['hypercorn']:,.0f} µs", "stream figures")
    cg = doc["http1_callgrind"]
    a, b = cg[0], cg[1]
    need(name, text, f"{a['ir_per_req']:,.0f} → {b['ir_per_req']:,.0f} instructions per HTTP/1.1 plaintext "
         f"request ({(b['ir_per_req'] / a['ir_per_req'] - 1) * 100:+.2f} %), and {a['ext_per_req']:,.0f} → "
         f"{b['ext_per_req']:,.0f} in the `_pounce` extension", "HTTP/1.1 callgrind")
    for n in H2_BEFORE:
        e = load(n)
        t = e["targets"][0]
        assert (n == H2_BEFORE[0]) != ("pounce" in e["workloads"]["stream"]["failed"]), \
            f"{n}: Pounce's stream failed, or did not, against what the section says"
        need(name, text, f"`bench/results/{n}.md` (load {e['load']['start']:.2f}–{e['load']['max']:.2f}): "
             f"{t['ratio']:.2f}×", f"the earlier HTTP/2 run {n}")
    e = load(H2_BEFORE[1])["workloads"]["stream"]["summary"]
    wb = e["pounce-wb1m"]["cpu_us_per_mb"]["median"]
    need(name, text, f"pounce-wb1m spent {wb:,.0f} µs per MB there against granian's "
         f"{e['granian']['cpu_us_per_mb']['median']:,.0f}, {wb / cm['pounce']:.1f} times as much as Pounce spends now",
         "pounce-wb1m before the fix")
    pcts = []
    for n in H2_BEFORE:
        r = load(n)["http1_callgrind"]
        pcts.append(f"{(r[1]['ir_per_req'] / r[0]['ir_per_req'] - 1) * 100:+.2f} %")
    need(name, text, f"The earlier runs measured {pcts[0]}, {pcts[1]}, {pcts[2]} and {pcts[3]}",
         "earlier HTTP/1.1 callgrind")
    # The same code, busier: the 01:01 run's figures.
    e = load(H2_BEFORE[0])["workloads"]
    eu = {s: m["cpu_us_per_req"]["median"] for s, m in e["multiplex"]["summary"].items()}
    ep = [m["cpu_pct"]["median"] for m in e["multiplex"]["summary"].values()]
    es = e["stream"]["summary"]
    need(name, text, f"busier ({min(ep):.0f}–{max(ep):.0f} % of CPU 1 for the servers): Pounce {eu['pounce']:.1f} µs "
         f"per request, granian {eu['granian']:.1f}, hypercorn {eu['hypercorn']:.0f}; its stream run gave Pounce "
         f"{es['pounce']['mb_per_s']['median']:,.0f} MB/s at {es['pounce']['cpu_us_per_mb']['median']:,.0f} µs per MB "
         f"against granian's {es['granian']['mb_per_s']['median']:,.0f} MB/s at "
         f"{es['granian']['cpu_us_per_mb']['median']:,.0f}", "the 01:01 run")
    # This run's rounds: the one under 1.5x, the CPU % of Pounce, hypercorn's errors.
    ms = w["multiplex"]["samples"]
    g = {x["round"]: x for x in ms["granian"]}
    low = min(ms["pounce"], key=lambda x: g[x["round"]]["cpu_us_per_req"] / x["cpu_us_per_req"])
    lg = g[low["round"]]
    need(name, text, f"in the {['', 'first', 'second', 'third', 'fourth', 'fifth'][low['round']]} round granian filled "
         f"its core ({lg['cpu_pct']:.0f} %, {lg['cpu_us_per_req']:.1f} µs per request) and the ratio was "
         f"{lg['cpu_us_per_req'] / low['cpu_us_per_req']:.2f}×", "the round under 1.5x")
    pp = [x["cpu_pct"] for x in ms["pounce"]]
    need(name, text, f"({min(pp):.0f}–{max(pp):.0f} % in every round)", "Pounce's CPU % per round")
    errs = [x for x in ms["hypercorn"] if x["socket_errors"]]
    assert {x["socket_errors"] for x in errs} == {16} and not any(x["non_2xx"] for x in ms["hypercorn"])
    share = [x["socket_errors"] / x["requests"] * 100 for x in errs]
    lo, hi = f"{min(share):.1f}", f"{max(share):.1f}"
    need(name, text, f"16 errored requests in each of {['no', 'one', 'two', 'three', 'four', 'five'][len(errs)]} "
         f"rounds (one per connection, {lo if lo == hi else lo + '–' + hi} % of the requests", "hypercorn's errors")
    assert all(x["socket_errors"] + x["non_2xx"] <= 0.01 * x["requests"] for x in ms["hypercorn"])
    gr = [x["rps"] for x in ms["granian"]]
    need(name, text, f"up to {max(gr) / min(gr):.1f}× between rounds (granian: {min(gr):,.0f} to {max(gr):,.0f})",
         "granian's req/s spread")
    pc = [x["cpu_us_per_req"] for x in ms["pounce"]]
    need(name, text, f"(Pounce {min(pc):.1f}–{max(pc):.1f} µs)", "Pounce's CPU per request spread")
    moved = [r[1]["ext_per_req"] - r[0]["ext_per_req"] for n in [H2] + H2_BEFORE for r in [load(n)["http1_callgrind"]]]
    assert max(abs(x) for x in moved) <= 5, "the extension's HTTP/1.1 code moved by more than 5 instructions"


def main() -> int:
    for check in (check_benchmarks, check_readme, check_compression, check_tls, check_static, check_h2):
        try:
            check()
        except (KeyError, ValueError, AssertionError) as e:
            problems.append(f"{check.__name__}: {type(e).__name__}: {e}")
    for p in problems:
        print(p)
    print(f"{len(problems)} mismatches" if problems else "every checked number matches bench/results/")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
