"""Draw the charts of one bench/run.py result: charts.py RESULT.json OUT.png

Four panels, one group of bars per workload and one bar per server: req/s,
p99 latency, server CPU seconds per 10k requests, peak RSS.  Bars are the
medians over rounds; the whiskers span min..max.  Log scales, because the
workloads differ by orders of magnitude.  A server that failed a workload
(bench/run.py's rules) gets the word "failed" instead of a bar.  Runs in .venv-bench (matplotlib).
"""

import json
import sys

import matplotlib

matplotlib.use("Agg")  # files only, no display
import matplotlib.pyplot as plt  # noqa: E402

PANELS = [
    ("rps", "req/s (higher is better)", 1.0),
    ("p99_us", "p99 latency, ms (lower is better)", 1e-3),
    ("cpu_s_per_10k", "server CPU s per 10k requests (lower is better)", 1.0),
    ("rss", "peak RSS, MB (lower is better)", 1 / 1024),
]
COLORS = {"pounce": "#d62728", "uvicorn": "#1f77b4", "granian": "#2ca02c", "hypercorn": "#9467bd",
          "bengal": "#ff7f0e"}


def main(src: str, out: str) -> None:
    with open(src) as f:
        doc = json.load(f)
    workloads = list(doc["workloads"])
    servers = doc["servers"]
    fig, axes = plt.subplots(len(PANELS), 1, figsize=(max(8, 1.3 * len(workloads) + 3), 15))
    width = 0.8 / len(servers)
    for ax, (key, title, scale) in zip(axes, PANELS):
        for i, srv in enumerate(servers):
            xs, med, lo, hi = [], [], [], []
            for j, wl in enumerate(workloads):
                res = doc["workloads"][wl]
                x = j + (i - (len(servers) - 1) / 2) * width
                if srv in res.get("failed", {}):
                    # A failed run has no bar: say so where the bar would be.
                    ax.text(x, 0.02, "failed", transform=ax.get_xaxis_transform(),
                            rotation=90, ha="center", va="bottom", fontsize=6,
                            color=COLORS.get(srv, "black"))
                    continue
                if key == "rss":
                    if srv not in res["peak_rss_kb"]:
                        continue
                    v = res["peak_rss_kb"][srv] * scale
                    m = {"median": v, "min": v, "max": v}
                else:
                    if srv not in res["summary"]:
                        continue
                    s = res["summary"][srv][key]
                    if s["median"] is None:  # no latency for pipelined runs
                        continue
                    m = {k: s[k] * scale for k in ("median", "min", "max")}
                xs.append(x)
                med.append(m["median"])
                lo.append(m["median"] - m["min"])
                hi.append(m["max"] - m["median"])
            ax.bar(xs, med, width, yerr=[lo, hi], capsize=2, label=srv,
                   color=COLORS.get(srv, None), edgecolor="black", linewidth=0.3)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xticks(range(len(workloads)))
        ax.set_xticklabels(workloads, fontsize=8)
        ax.grid(axis="y", which="both", alpha=0.3)
    fig.legend(*axes[0].get_legend_handles_labels(), ncol=len(servers), fontsize=9,
               loc="upper center", bbox_to_anchor=(0.5, 0.955))
    m = doc["machine"]
    py = doc.get("versions", {}).get("pounce", {}).get("python", doc["python"])
    fig.suptitle(f"Pounce vs peers, CPython {py}, {doc['started'][:16]}, commit {m['commit']}\n"
                 f"{m['cpu']}, {m['cpus']} CPUs; 1 worker on CPU 1, wrk on CPU 0 (-2w: both share "
                 f"CPUs 0-1); load avg {doc['load']['start']:.1f}–{doc['load']['max']:.1f}",
                 fontsize=9)
    fig.tight_layout(rect=(0, 0, 1, 0.94))
    fig.savefig(out, dpi=90)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
