"""The weekly scenario's targets, judged from one run's figures (``latest.json``'s ``weekly`` block).

Pure: no process, no clock. A target whose figures are missing (a window not measured, a contender that failed) is
neither met nor missed: it is reported as not judged, with the reason.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

GIB = 2**30
REFERENCE_WINDOW = 5_000_000
GROWTH_WINDOWS = (1_000_000, 10_000_000)


@dataclass(frozen=True)
class Target:
    name: str
    #: the goal as written, e.g. "<= 0.5x"
    goal: str
    measured: float | None
    #: None: not judged (see ``note``)
    met: bool | None
    note: str = ""
    unit: str = "x"

    def to_dict(self) -> dict:
        return asdict(self)


def _seconds(windows: dict[str, dict], rows: int, name: str) -> float | None:
    entry = windows.get(str(rows), {}).get("contenders", {}).get(name, {})
    return entry.get("seconds")


def _why_missing(windows: dict[str, dict], rows: int, names: tuple[str, ...]) -> str:
    point = windows.get(str(rows))
    if point is None:
        return f"the {rows:,}-row window was not measured"
    for name in names:
        entry = point.get("contenders", {}).get(name)
        if entry is None:
            return f"{name} was not run at {rows:,} rows"
        if "seconds" not in entry:
            return f"{name} at {rows:,} rows: {entry.get('error', 'failed')}"
    return ""


def _ratio(
    windows: dict[str, dict],
    name: str,
    goal: str,
    top: tuple[int, str],
    bottom: tuple[int, str],
    passes,
    note: str = "",
) -> Target:
    """``top`` / ``bottom`` (each a window and a contender), judged by ``passes``."""
    a, b = _seconds(windows, *top), _seconds(windows, *bottom)
    if a is None or b is None:
        missing = _why_missing(windows, top[0], (top[1],)) or _why_missing(windows, bottom[0], (bottom[1],))
        return Target(name, goal, None, None, missing)
    ratio = round(a / b, 2)
    return Target(name, goal, ratio, bool(passes(ratio)), note)


#: other ways of running ours on the second Sunday, each shown beside the targets judged on ``ours_incremental``
ALTERNATIVES = (
    # the best any incremental design of ours could measure: it still starts both steps and runs every model
    ("ours_week_only", "ours on the week alone"),
    # the same incremental run as clients of a Spark Connect server kept running (SPARK_REMOTE)
    ("ours_connect", "with a long-lived driver"),
)


def alternatives(windows: dict[str, dict], reference: int, other: str, ours_on_top: bool) -> str:
    """The target's ratio with each of :data:`ALTERNATIVES` in place of the incremental run, where measured."""
    parts = []
    for name, label in ALTERNATIVES:
        ours, theirs = _seconds(windows, reference, name), _seconds(windows, reference, other)
        if ours is not None and theirs is not None:
            parts.append(f"{label}: {(ours / theirs if ours_on_top else theirs / ours):.2f}x")
    return "; ".join(parts)


def evaluate(windows: dict[str, dict], reference: int = REFERENCE_WINDOW) -> list[Target]:
    """Every target of the weekly scenario, at the ``reference`` window (and from 1M to 10M for the growth)."""
    at = f"{reference / 1e6:g}M window"
    targets = [
        _ratio(
            windows,
            f"weekly incremental / DuckDB full recomputation, {at}",
            "<= 0.5x",
            (reference, "ours_incremental"),
            (reference, "duckdb"),
            lambda r: r <= 0.5,
            alternatives(windows, reference, "duckdb", ours_on_top=True),
        ),
        _ratio(
            windows,
            f"pandas full recomputation / weekly incremental, {at}",
            ">= 8x",
            (reference, "pandas"),
            (reference, "ours_incremental"),
            lambda r: r >= 8,
            alternatives(windows, reference, "pandas", ours_on_top=False),
        ),
        _ratio(
            windows,
            f"weekly incremental / weekly floor (moonshot), {at}",
            "<= 3x",
            (reference, "ours_incremental"),
            (reference, "floor"),
            lambda r: r <= 3,
            alternatives(windows, reference, "floor", ours_on_top=True),
        ),
        growth(windows),
        _ratio(
            windows,
            f"pandas / ours full refresh, {at}",
            ">= 2x",
            (reference, "pandas"),
            (reference, "ours_full_refresh"),
            lambda r: r >= 2,
        ),
        _ratio(
            windows,
            f"ours full refresh / DuckDB, {at}",
            "<= 3x",
            (reference, "ours_full_refresh"),
            (reference, "duckdb"),
            lambda r: r <= 3,
        ),
        full_refresh_memory(windows, reference),
    ]
    return targets


def growth(windows: dict[str, dict]) -> Target:
    """The weekly incremental run's time at the 10M-row window over the 1M-row one; when 10M was not measured, the
    largest measured window is shown, not judged."""
    low, high = GROWTH_WINDOWS
    name = "weekly incremental run, 10M-row window / 1M-row window"
    connect = _ratio(windows, name, "", (high, "ours_connect"), (low, "ours_connect"), bool)
    note = f"with a long-lived driver: {connect.measured:.2f}x" if connect.measured is not None else ""
    target = _ratio(
        windows, name, "< 1.5x", (high, "ours_incremental"), (low, "ours_incremental"), lambda r: r < 1.5, note
    )
    if target.met is not None:
        return target
    measured = sorted(
        int(rows)
        for rows in windows
        if int(rows) != low and _seconds(windows, int(rows), "ours_incremental") is not None
    )
    base = _seconds(windows, low, "ours_incremental")
    if not measured or base is None:
        return target
    largest = measured[-1]
    ratio = round(_seconds(windows, largest, "ours_incremental") / base, 2)
    return Target(
        name,
        "< 1.5x",
        None,
        None,
        f"{target.note}; {largest / 1e6:g}M / 1M = {ratio:.2f}x (not the target's span, not judged)",
    )


def full_refresh_memory(windows: dict[str, dict], reference: int = REFERENCE_WINDOW) -> Target:
    name = f"ours full refresh peak memory, {reference / 1e6:g}M window"
    entry = windows.get(str(reference), {}).get("contenders", {}).get("ours_full_refresh", {})
    if "seconds" not in entry:
        return Target(name, "< 3 GiB", None, None, _why_missing(windows, reference, ("ours_full_refresh",)), "GiB")
    gib = round(entry["peak_rss_bytes"] / GIB, 2)
    return Target(name, "< 3 GiB", gib, gib < 3, unit="GiB")


def markdown(targets: list[Target]) -> str:
    """The targets as a table: goal, measured, met / not met / not judged."""
    lines = ["| target | goal | measured | verdict |", "|---|---|---:|---|"]
    for t in targets:
        measured = "-" if t.measured is None else f"{t.measured:.2f}{' GiB' if t.unit == 'GiB' else 'x'}"
        verdict = "not judged" if t.met is None else "met" if t.met else "not met"
        if t.note:
            verdict += f" ({t.note})"
        lines.append(f"| {t.name} | {t.goal} | {measured} | {verdict} |")
    return "\n".join(lines)
