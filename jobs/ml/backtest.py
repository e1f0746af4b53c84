"""A backtest of the retraining policy: the weekly runs replayed over history, three policies side by side.

For each Sunday from ``start`` to ``end``, each recipe is trained exactly as ``train_models`` would have trained it
that Sunday: on the records created before it, with the outcomes verified before it (:func:`jobs.ml.dataset.split`
with that Sunday as the run's end), the same window choice and the same threshold. Then production is updated under
three policies:

- ``never``: the model of the first Sunday stays in production;
- ``always``: every week's new model goes to production;
- ``gate``: the new model goes to production when :func:`jobs.ml.gate.decide` says ``deploy`` on that Sunday's
  evaluation rows, as ``validate_models`` would.

Each policy's production model is then scored on the following week's records, with every outcome known by the
end of the data: what patients met. The result is a table, a plot and JSON. Pure computation on one feature table
per model (pyarrow and scikit-learn, no Spark).
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from jobs.errors import ConfigError
from jobs.ml.dataset import Split, split
from jobs.ml.fitting import choose_threshold, choose_window, fit, metric_value, window_label
from jobs.ml.gate import DEPLOY, decide
from jobs.ml.metrics import positive_scores
from jobs.ml.recipes import Recipe, features_frame
from jobs.run_context import RunContext
from jobs.settings import Settings

log = logging.getLogger(__name__)

POLICIES = ("never", "always", "gate")
WEEK = timedelta(weeks=1)


@dataclass(frozen=True)
class Candidate:
    """One Sunday's new model, as train_models would have stored it."""

    sunday: datetime
    estimator: Any
    threshold: float
    window: int | None


def train_as_of(recipe: Recipe, frame: pd.DataFrame, sunday: datetime) -> tuple[Candidate | None, Split]:
    """The model a run on ``sunday`` trains (None when it would skip), and that run's split."""
    parts = split(frame, recipe, sunday)
    choice = choose_window(recipe, parts)
    training = parts.training_rows(choice.weeks, before=parts.periods.evaluation_start)
    if len(training) < recipe.min_labelled_rows or training[recipe.label].nunique() < 2:
        return None, parts
    estimator = fit(recipe, training, parts.periods.evaluation_start)
    threshold, _ = choose_threshold(recipe, estimator, parts, training)
    return Candidate(sunday, estimator, threshold, choice.weeks), parts


def score_week(recipe: Recipe, model: Candidate | None, rows: pd.DataFrame) -> float | None:
    """The production model's metric on one week's outcomes (None without a model, or when undefined)."""
    if model is None or rows.empty:
        return None
    y = rows[recipe.label].to_numpy().astype(int)
    scores = positive_scores(model.estimator, features_frame(recipe, rows))
    value = metric_value(recipe.metric, y, scores, recipe.target_recall)
    return None if value is None else (-value if recipe.metric == "log_loss" else value)


def sundays(start: datetime, end: datetime) -> list[datetime]:
    if start.weekday() != 6 or end.weekday() != 6:
        raise ConfigError(
            f"A backtest replays the weekly runs: --from and --to must be Sundays. Got {start.date()} "
            f"({start:%A}) and {end.date()} ({end:%A})."
        )
    if end < start:
        raise ConfigError(f"--to ({end.date()}) is before --from ({start.date()}).")
    return [start + i * WEEK for i in range((end - start) // WEEK + 1)]


def backtest_model(recipe: Recipe, frame: pd.DataFrame, weeks: list[datetime]) -> dict[str, Any]:
    """Replay ``weeks`` for one recipe; every week's production metric on the next week's outcomes, per policy."""
    outcomes = frame[frame[recipe.label].notna()]
    production: dict[str, Candidate | None] = dict.fromkeys(POLICIES)
    rows = []
    for sunday in weeks:
        candidate, parts = train_as_of(recipe, frame, sunday)
        verdict = None
        if candidate is not None:
            if production["never"] is None:
                production["never"] = candidate
            production["always"] = candidate
            champion = production["gate"]
            evaluation = parts.evaluation
            y = evaluation[recipe.label].to_numpy()
            decision = decide(
                y,
                None if champion is None else positive_scores(champion.estimator, features_frame(recipe, evaluation)),
                positive_scores(candidate.estimator, features_frame(recipe, evaluation)),
                challenger_threshold=candidate.threshold,
                champion_threshold=None if champion is None else champion.threshold,
                metric=recipe.metric,
                target_recall=recipe.target_recall,
                thresholds=recipe.thresholds,
            )
            verdict = decision.verdict
            if verdict == DEPLOY:
                production["gate"] = candidate
        created = outcomes["created_at"]
        next_week = outcomes[(created >= pd.Timestamp(sunday)) & (created < pd.Timestamp(sunday + WEEK))]
        rows.append(
            {
                "sunday": sunday.date().isoformat(),
                "trained": candidate is not None,
                "window": None if candidate is None else window_label(candidate.window),
                "gate_verdict": verdict,
                "next_week_rows": len(next_week),
                "production": {
                    policy: None if production[policy] is None else production[policy].sunday.date().isoformat()
                    for policy in POLICIES
                },
                "metric": {policy: score_week(recipe, production[policy], next_week) for policy in POLICIES},
            }
        )
        log.info("%s %s: %s", recipe.name, sunday.date(), rows[-1]["metric"])
    better = "lower" if recipe.metric == "log_loss" else "higher"
    return {"metric": recipe.metric, "better": better, "weeks": rows, "mean": _means(rows)}


def _means(rows: list[dict[str, Any]]) -> dict[str, float | None]:
    """Each policy's mean over the weeks every policy was scored (so the means compare like with like)."""
    scored = [r for r in rows if all(r["metric"][p] is not None for p in POLICIES)]
    return {p: (float(np.mean([r["metric"][p] for r in scored])) if scored else None) for p in POLICIES}


def backtest(
    recipes: dict[str, Recipe], frames: dict[str, pd.DataFrame], start: datetime, end: datetime
) -> dict[str, Any]:
    weeks = sundays(start, end)
    models = {name: backtest_model(recipes[name], frame, weeks) for name, frame in sorted(frames.items())}
    return {"from": weeks[0].date().isoformat(), "to": weeks[-1].date().isoformat(), "models": models}


def run_backtest(
    settings: Settings, ds: str, start: date, end: date, models: Sequence[str] | None = None
) -> dict[str, Any]:
    """The backtest over the feature tables of the run ``ds`` (the Sundays' interval ends as a run's would be)."""
    from jobs.ml.dataset import read_feature_table
    from jobs.ml.recipes import load_recipes

    recipes = load_recipes(settings.models_dir)
    unknown = sorted(set(models or ()) - set(recipes))
    if unknown:
        raise ConfigError(f"No recipe for model(s) {', '.join(unknown)}. Recipes: {', '.join(sorted(recipes))}.")
    folder = settings.run_folder(ds)
    if not folder.features.is_dir():
        raise ConfigError(
            f"No feature tables for {ds} at {folder.features}: run the pipeline for {ds} first "
            f"(`retrain extract --ds {ds}` and `retrain transform --ds {ds}`), or name another run with --ds."
        )
    chosen = {name: recipes[name] for name in (models or sorted(recipes))}
    frames = {name: read_feature_table(folder.feature_table(r.feature_table), r) for name, r in chosen.items()}
    if not all("verified_at" in frame for frame in frames.values()):
        log.warning(
            "The feature tables of %s have no verified_at column: every outcome counts as known on every Sunday, "
            "so the replayed runs train on outcomes that arrived later than they could have.",
            ds,
        )
    as_run = [RunContext.for_ds(day).data_interval_end for day in (start, end)]
    return backtest(chosen, frames, as_run[0], as_run[1])


def table(result: dict[str, Any]) -> str:
    """A plain-text table: per model and week, each policy's metric on the next week (and the gate's verdict)."""
    lines = []
    for name, model in result["models"].items():
        lines.append(f"{name} ({model['metric']} on the next week's outcomes; {model['better']} is better)")
        lines.append(f"  {'sunday':<11} {'never':>8} {'always':>8} {'gate':>8}  gate verdict")
        for row in model["weeks"]:
            cells = " ".join(f"{'-' if v is None else f'{v:.4f}':>8}" for v in row["metric"].values())
            lines.append(f"  {row['sunday']:<11} {cells}  {row['gate_verdict'] or '-'}")
        means = " ".join(f"{'-' if v is None else f'{v:.4f}':>8}" for v in model["mean"].values())
        lines.append(f"  {'mean':<11} {means}")
    lines.append(
        "(-: not scored, because that policy had no model in production yet, or the next week has no verified "
        "outcomes or only one kind; a mean covers the weeks every policy was scored, - when there are none; a gate "
        "verdict -: nothing was trained that Sunday)"
    )
    return "\n".join(lines)


def plot(result: dict[str, Any], path: Path) -> Path:
    """One panel per model: each policy's metric week by week."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    models = result["models"]
    figure = Figure(figsize=(4.2 * max(1, len(models)), 3.4), layout="constrained")
    FigureCanvasAgg(figure)
    for i, (name, model) in enumerate(models.items(), start=1):
        ax = figure.add_subplot(1, len(models), i)
        for policy, style in zip(POLICIES, ("--", ":", "-"), strict=True):
            points = [(r["sunday"], r["metric"][policy]) for r in model["weeks"] if r["metric"][policy] is not None]
            if points:
                ax.plot([pd.Timestamp(d) for d, _ in points], [v for _, v in points], style, marker="o", label=policy)
        ax.set_title(name)
        ax.set_ylabel(f"{model['metric']}, next week")
        ax.tick_params(axis="x", labelrotation=45, labelsize="small")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small")
    figure.savefig(path, dpi=110)
    return path


def write(result: dict[str, Any], folder: Path) -> dict[str, Path]:
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"json": folder / "backtest.json", "table": folder / "backtest.txt", "plot": folder / "backtest.png"}
    paths["json"].write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    paths["table"].write_text(table(result) + "\n", encoding="utf-8")
    plot(result, paths["plot"])
    return paths
