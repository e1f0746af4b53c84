"""Turn ``latest.json`` into ``results.md`` (a table with ratios to ours) and ``rows_vs_time.png`` (log-log)."""

from __future__ import annotations

from pathlib import Path

LABELS = {
    "floor": "COPY floor",
    "ours": "ours: extract + transform",
    "pandas": "pandas script",
    "duckdb": "DuckDB over ConnectorX",
    "naive_spark": "naive Spark (1 partition, no fetchsize)",
}


def _gib(value: int | None) -> str:
    return f"{value / 2**30:.2f}" if value else "-"


def table(report: dict) -> str:
    lines = [
        "| seeded rows | rows read | contender | runs | wall s | rows/s | peak memory GiB | time / ours "
        "| memory / ours |",
        "|---:|---:|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, point in report["points"].items():
        ours = point.get("ours", {})
        for name, entry in point.items():
            runs = len(entry.get("runs", []))
            if "seconds" not in entry:
                lines.append(f"| {int(rows):,} | | {LABELS.get(name, name)} | {runs} | {entry.get('error', 'failed')} "
                             "| | "
                             f"{_gib(entry.get('peak_rss_bytes'))} | | |")  # fmt: skip
                continue
            t = f"{entry['seconds'] / ours['seconds']:.2f}x" if ours.get("seconds") else "-"
            m = f"{entry['peak_rss_bytes'] / ours['peak_rss_bytes']:.2f}x" if ours.get("peak_rss_bytes") else "-"
            lines.append(f"| {int(rows):,} | {entry['rows']:,} | {LABELS.get(name, name)} | {runs} "
                         f"| {entry['seconds']:.1f} | "
                         f"{entry['rows_per_s']:,} | {_gib(entry['peak_rss_bytes'])} | {t} | {m} |")  # fmt: skip
    return "\n".join(lines)


def write_reports(report: dict, out: Path) -> None:
    steps = []
    for rows, point in report["points"].items():
        for run in point.get("ours", {}).get("runs", []):
            if run.get("detail"):
                steps.append(f"{int(rows):,}: {run['detail']}")
    text = [
        "# Benchmark: the pipeline against the alternatives",
        "",
        f"Measured {report['measured_at']} on {report['machine']['cpus']} CPUs ({report['machine']['platform']}), "
        "wall time the median of a contender's runs (alternating with the others'; `--merge` re-measures some "
        "points later); peak memory is the whole process tree's RSS "
        f"(JVMs included), the maximum over the runs. A contender past {report['cap_bytes'] / 2**30:.0f} GiB is "
        "killed. Ratios are to ours in the same run (time / ours < 1: faster than ours).",
        "Produced by `make bench` (bench/run.py); the raw figures are in latest.json.",
        "",
        table(report),
        "",
        "Ours, per step (seconds): " + ("; ".join(steps) or "-"),
    ]
    if report.get("count_mismatches"):
        text += ["", "Row counts that differed: " + "; ".join(report["count_mismatches"])]
    (out / "results.md").write_text("\n".join(text) + "\n")
    plot(report, out / "rows_vs_time.png")


def plot(report: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    names = list(dict.fromkeys(n for point in report["points"].values() for n in point))
    for name in names:
        xs, ys = [], []
        for point in report["points"].values():
            entry = point.get(name, {})
            if "seconds" in entry:
                xs.append(entry["rows"])
                ys.append(entry["seconds"])
        if xs:
            ax.plot(xs, ys, marker="o", label=LABELS.get(name, name))
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("rows read (consented, in the window)")
    ax.set_ylabel("wall time, seconds")
    ax.set_title(f"Rows vs time ({report['machine']['cpus']} CPUs)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
