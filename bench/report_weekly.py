"""The weekly scenario's part of ``results.md`` (a table per window, the targets) and its plot ``weekly.png``."""

from __future__ import annotations

from pathlib import Path

from bench.weekly_targets import Target, markdown

#: a hand-written reading of the weekly figures (what meets its target, what stops the others), kept in the results
#: folder and appended to results.md; it names the run it was written for
NOTES = "weekly-notes.md"

LABELS = {
    "floor": "weekly COPY floor (new rows + narrow refresh)",
    "ours_week_only": "ours on the week alone (a one-week window, full refresh): the fixed cost",
    "ours_incremental": "ours incremental: extract + transform",
    "ours_connect": "ours incremental, clients of a long-lived Spark Connect server",
    "ours_full_refresh": "ours full refresh: extract + transform",
    "pandas": "pandas full recomputation",
    "duckdb": "DuckDB full recomputation",
}


def _when(measured_at: str) -> str:
    return measured_at[:16].replace("T", " ")


def table(weekly: dict) -> str:
    lines = [
        "| window rows | rows read | new rows | late outcomes | contender | measured (UTC) | runs | wall s "
        "| peak memory GiB | time / ours incremental |",
        "|---:|---:|---:|---:|---|---|---:|---:|---:|---:|",
    ]
    for rows, point in weekly["windows"].items():
        week = point.get("week", {})
        contenders = point.get("contenders", {})
        base = contenders.get("ours_incremental", {}).get("seconds")
        for name, entry in contenders.items():
            read = f"{entry['rows']:,}" if "rows" in entry else ""
            head = (
                f"| {int(rows):,} | {read} "
                f"| {week.get('new_records', 0):,} | {week.get('late_outcomes', 0):,} | {LABELS.get(name, name)} "
                f"| {_when(entry.get('measured_at', point['measured_at']))} | {len(entry.get('runs', []))}"
            )
            gib = f"{entry['peak_rss_bytes'] / 2**30:.2f}" if entry.get("peak_rss_bytes") else "-"
            if "seconds" not in entry:
                lines.append(f"{head} | {entry.get('error', 'failed')} | {gib} | |")
                continue
            ratio = f"{entry['seconds'] / base:.2f}x" if base else "-"
            lines.append(f"{head} | {entry['seconds']:.1f} | {gib} | {ratio} |")
    return "\n".join(lines)


def first_sundays(weekly: dict) -> str:
    parts = []
    for rows, point in weekly["windows"].items():
        first = point.get("first_sunday", {})
        if "seconds" in first:
            parts.append(f"{int(rows):,}: {first['seconds']:.1f} s")
        else:
            parts.append(f"{int(rows):,}: {first.get('error', 'not run')}")
    return "; ".join(parts) or "-"


def steps(weekly: dict) -> str:
    """Ours' per-step seconds and extract mode, so a slow step or a fallback to a full read shows."""
    parts = []
    for rows, point in weekly["windows"].items():
        for name in ("ours_incremental", "ours_connect", "ours_full_refresh", "ours_week_only"):
            for run in point.get("contenders", {}).get(name, {}).get("runs", []):
                if run.get("detail"):
                    parts.append(f"{int(rows):,} {name}: {run['detail']}")
    return "; ".join(parts) or "-"


def servers(weekly: dict) -> str:
    """The Spark Connect server's resident memory per window: held all week, outside the measured process tree."""
    parts = [
        f"{int(rows):,}: {entry['server_rss_bytes'] / 2**30:.2f} GiB"
        for rows, point in weekly["windows"].items()
        if (entry := point.get("contenders", {}).get("ours_connect", {})).get("server_rss_bytes")
    ]
    return "; ".join(parts) or "-"


def section(weekly: dict, machine: dict) -> list[str]:
    targets = [Target(**t) for t in weekly.get("targets", [])]
    load = machine.get("load_average_at_end")
    busy = (
        f" The machine is shared: its load average at the end of the run was {load[0]:.1f} on {machine['cpus']} "
        "CPUs, so absolute times carry that noise; ratios within a window less so."
        if load
        else ""
    )
    return [
        "",
        "## The weekly run: the second Sunday",
        "",
        f"A window seeded by the bench's generator, a first Sunday ({weekly['first_sunday']}, a full refresh), then "
        f"one more week: {weekly['week_rows']:,} records created during the week (the 1M-row window's weekly "
        f"volume, kept for every window) and outcomes for {weekly['late_share']:.0%} of the earlier records. The "
        f"second Sunday ({weekly['second_sunday']}) is timed: ours building on the first Sunday, ours with "
        "`--full-refresh` in an empty DATA_DIR, pandas and DuckDB recomputing the whole window, the floor (COPY "
        "of the week's new rows, every column, plus COPY of id, verified_outcome, verified_at over the window), and "
        "ours on a window of the week alone (`--vars '{\"lookback_days\": 7}'`, a full refresh): what our two steps "
        "cost whatever the window, which no incremental design removes; and ours incremental again as clients of a "
        "Spark Connect server kept running (`SPARK_REMOTE`), warmed by one unmeasured run as a week's run finds it. "
        "One "
        "bench run, one machine; ratios are within a window. Plot: [weekly.png](weekly.png). Produced by "
        f"bench/weekly.py.{busy}",
        "",
        table(weekly),
        "",
        "First Sunday (ours, full), seconds: " + first_sundays(weekly),
        "",
        "Ours, per step (seconds) and extract mode: " + steps(weekly),
        "",
        "The Spark Connect server's resident memory after the measured runs (held all week, not in the measured "
        "tree): " + servers(weekly),
        "",
        "### Targets",
        "",
        markdown(targets),
    ]


def plot(weekly: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 5))
    for name, label in LABELS.items():
        xs, ys = [], []
        for rows, point in weekly["windows"].items():
            entry = point.get("contenders", {}).get(name, {})
            if "seconds" in entry:
                xs.append(int(rows))
                ys.append(entry["seconds"])
        if xs:
            ax.plot(xs, ys, marker="o", label=label)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("window rows (seeded)")
    ax.set_ylabel("second Sunday's wall time, seconds")
    ax.set_title(f"A weekly run: {weekly['week_rows']:,} new rows, window of growing size")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
