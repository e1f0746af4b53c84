"""The weekly report's plots (matplotlib's Agg backend: no display needed), drawn only from what the report read.

- :func:`metric_plot`: per model, the gate's metric for production and the new model on the evaluation rows, and
  the difference with its confidence interval (the interval the gate judged), so a reader sees at a glance whether
  the interval clears zero.
- :func:`drift_plot`: small multiples, one panel per feature of production, of the share of rows in each bin:
  production's training rows against this week's records, the PSI in each title, drifted features in red.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

CHAMPION_COLOUR, CHALLENGER_COLOUR, FLAGGED_COLOUR = "tab:gray", "tab:blue", "tab:red"
#: panels per row of the drift plot
DRIFT_COLUMNS = 4


def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), layout="constrained")
    FigureCanvasAgg(figure)
    return figure


def _value(side: Any) -> float | None:
    return side.get("value") if isinstance(side, dict) else None


def metric_plot(models: Mapping[str, dict[str, Any]], path: Path, ds: str) -> Path | None:
    """Each model's gate metric, production vs new model, and the difference with its interval; None when no model
    was scored."""
    rows = [(n, m) for n, m in models.items() if _value(m.get("champion")) is not None or _value(m.get("challenger"))]
    if not rows:
        return None
    compared = [(i, n, m["comparison"]) for i, (n, m) in enumerate(rows) if m.get("comparison")]
    figure = _figure(2.2 + (3.0 if compared else 1.6) * len(rows), 3.8)
    axes = figure.subplots(1, 2 if compared else 1, squeeze=False)[0]
    labels = [f"{name}\n{m.get('metric') or ''}\n{m.get('verdict') or ''}" for name, m in rows]
    values = axes[0]
    for offset, role, colour in ((-0.15, "champion", CHAMPION_COLOUR), (0.15, "challenger", CHALLENGER_COLOUR)):
        points = [(i + offset, _value(m.get(role))) for i, (_, m) in enumerate(rows)]
        points = [(x, y) for x, y in points if y is not None]
        if points:
            label = "production" if role == "champion" else "new model"
            values.plot(*zip(*points, strict=True), "o", color=colour, label=label)
            for x, y in points:
                values.annotate(f"{y:.3f}", (x, y), textcoords="offset points", xytext=(0, 6), ha="center", size=7)
    values.set_xticks(range(len(rows)), labels, size=8)
    values.set_xlim(-0.6, len(rows) - 0.4)
    values.set_ylabel("gate metric on the evaluation rows")
    values.set_title("Production vs new model", size=10)
    values.grid(axis="y", alpha=0.3)
    values.legend(loc="best", fontsize="small")
    if compared:
        difference = axes[1]
        for i, _, c in compared:
            low, high = c["interval"]
            d = c["difference"]
            difference.errorbar([i], [d], yerr=[[d - low], [high - d]], fmt="o", capsize=5, color=CHALLENGER_COLOUR)
        difference.axhline(0.0, color="black", linewidth=0.8)
        difference.set_xticks(range(len(rows)), labels, size=8)
        difference.set_xlim(-0.6, len(rows) - 0.4)
        level = next((c.get("confidence") for _, _, c in compared if c.get("confidence")), 0.95)
        difference.set_ylabel(f"improvement, {level:.0%} interval")
        difference.set_title("New model minus production (> 0: better)", size=10)
        difference.grid(axis="y", alpha=0.3)
    figure.suptitle(f"The gate's metric, ds={ds}", size=11)
    figure.savefig(path, dpi=110)
    return path


def drift_plot(model: str, drift: Mapping[str, Any], path: Path) -> Path | None:
    """One panel per feature: share of rows per bin, production's training rows vs this week's; None without
    measured features."""
    features = drift.get("features") or {}
    if not features:
        return None
    from matplotlib.patches import Patch

    flagged = set(drift.get("flagged") or [])
    columns = min(DRIFT_COLUMNS, len(features))
    rows = math.ceil(len(features) / columns)
    figure = _figure(3.2 * columns, 2.7 * rows + 0.6)
    for i, (name, f) in enumerate(features.items()):
        ax = figure.add_subplot(rows, columns, i + 1)
        xs = range(len(f["bins"]))
        colour = FLAGGED_COLOUR if name in flagged else CHALLENGER_COLOUR
        ax.bar([x - 0.2 for x in xs], f["reference"], 0.4, color=CHAMPION_COLOUR)
        ax.bar([x + 0.2 for x in xs], f["current"], 0.4, color=colour)
        ax.set_xticks(list(xs), f["bins"], rotation=90, size=6)
        ax.tick_params(axis="y", labelsize=7)
        title = f"{name}: PSI {f['psi']:.2f}" + (" (drifted)" if name in flagged else "")
        ax.set_title(title, size=9, color=FLAGGED_COLOUR if name in flagged else "black")
        if i % columns == 0:
            ax.set_ylabel("share of rows", size=8)
    figure.legend(
        handles=[
            Patch(color=CHAMPION_COLOUR, label="production's training rows"),
            Patch(color=CHALLENGER_COLOUR, label="this week"),
            Patch(color=FLAGGED_COLOUR, label="this week, drifted"),
        ],
        loc="outside lower center",
        ncols=3,
        fontsize=8,
    )
    threshold = drift.get("threshold")
    figure.suptitle(f"{model}: feature drift since production was trained (flagged above PSI {threshold})", size=10)
    figure.savefig(path, dpi=100)
    return path
