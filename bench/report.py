"""Turn ``latest.json`` into ``results.md`` (a table with ratios to ours) and ``rows_vs_time.png`` (log-log); the
weekly scenario's section and plot are in ``bench/report_weekly.py``."""

from __future__ import annotations

from pathlib import Path

from bench import report_weekly

LABELS = {
    "floor": "COPY floor",
    "ours": "ours: extract + transform",
    "pandas": "pandas script",
    "duckdb": "DuckDB over ConnectorX",
    "naive_spark": "naive Spark (1 partition, no fetchsize)",
}


def _gib(value: int | None) -> str:
    return f"{value / 2**30:.2f}" if value else "-"


def _when(measured_at: str) -> str:
    """``2026-11-26T05:48:38+00:00`` as ``2026-11-26 05:48``: enough to tell a carried-over entry from a new one."""
    return measured_at[:16].replace("T", " ")


def table(report: dict) -> str:
    lines = [
        "| seeded rows | rows read | contender | measured (UTC) | runs | wall s | rows/s | peak memory GiB "
        "| time / ours | memory / ours |",
        "|---:|---:|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for rows, point in report["points"].items():
        ours = point.get("ours", {})
        for name, entry in point.items():
            runs = len(entry.get("runs", []))
            when = _when(entry.get("measured_at", report["measured_at"]))
            if "seconds" not in entry:
                failed = entry.get("error", "failed")
                lines.append(
                    f"| {int(rows):,} | | {LABELS.get(name, name)} | {when} | {runs} | {failed} | "
                    f"| {_gib(entry.get('peak_rss_bytes'))} | | |"
                )
                continue
            t = f"{entry['seconds'] / ours['seconds']:.2f}x" if ours.get("seconds") else "-"
            m = f"{entry['peak_rss_bytes'] / ours['peak_rss_bytes']:.2f}x" if ours.get("peak_rss_bytes") else "-"
            lines.append(
                f"| {int(rows):,} | {entry['rows']:,} | {LABELS.get(name, name)} | {when} | {runs} "
                f"| {entry['seconds']:.1f} | "
                f"{entry['rows_per_s']:,} | {_gib(entry['peak_rss_bytes'])} | {t} | {m} |"
            )
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
        f"Last run {report['measured_at']} on {report['machine']['cpus']} CPUs ({report['machine']['platform']}), "
        "wall time the median of a contender's runs (alternating with the others'; `--merge` re-measures some "
        "contenders later and keeps the others, so compare entries measured together); peak memory is the whole "
        "process tree's RSS (JVMs included), the maximum over the runs. A contender past "
        f"{report['cap_bytes'] / 2**30:.0f} GiB is killed. Ratios are to ours at the same row count (time / ours < 1: "
        "faster than ours).",
        "Produced by `make bench` (bench/run.py); the raw figures are in latest.json.",
        "",
        table(report),
        "",
        "Ours, per step (seconds): " + ("; ".join(steps) or "-"),
    ]
    if report.get("count_mismatches"):
        text += ["", "Row counts that differed: " + "; ".join(report["count_mismatches"])]
    if report.get("weekly"):
        text += report_weekly.section(report["weekly"], report["machine"])
        notes = out / report_weekly.NOTES
        if notes.exists():  # a reading of the figures, written by hand for the run it names
            text += ["", notes.read_text().strip()]
        report_weekly.plot(report["weekly"], out / "weekly.png")
    (out / "results.md").write_text("\n".join(text) + "\n")
    if report["points"]:
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
