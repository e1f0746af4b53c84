"""How production has aged since it was trained: its metric then and now, and how far its inputs have moved.

``validate`` calls :func:`production_drift` with the run's feature table and the production version's stored
metadata and metrics, and writes the result under ``drift`` in ``decision.json`` (``notify`` only reads it):

- **The metric**: production's metric on this run's evaluation rows (the newest labelled weeks, rows it never
  saw) against the one recorded in its ``metrics.json`` when it was trained (the evaluation period of its own run).
- **Feature drift** (:mod:`jobs.ml.drift`): PSI of each of production's features between the rows it was trained on
  and this week's rows. Its training rows are the table's rows of training patients (under the holdout settings it
  was trained with), created in its training window (``training_window.from`` up to ``trained_until``) with an
  outcome verified before its run's end: the rows it was fitted on, as far as this run's table still holds them.
  This week's rows are every record created in the 7 days before the run's end, labelled or not.

Features above the recipe's ``drift_psi`` threshold become notes in the gate's reasons. They inform: the verdict
is the gate's alone. Pure: frames and dicts in, a dict and notes out.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

import pandas as pd

from jobs.ml.dataset import in_holdout, labels_as_of
from jobs.ml.drift import MIN_ROWS, feature_drift
from jobs.ml.recipes import Recipe

#: this week's rows: records created in these last days before the run's end
CURRENT_DAYS = 7
#: metrics for which a lower value is better
LOWER_IS_BETTER = frozenset({"log_loss"})


def _utc(value: Any) -> pd.Timestamp:
    stamp = pd.Timestamp(value)
    return stamp.tz_localize("UTC") if stamp.tzinfo is None else stamp.tz_convert("UTC")


def training_rows(frame: pd.DataFrame, recipe: Recipe, metadata: Mapping[str, Any]) -> pd.DataFrame | None:
    """The rows of ``frame`` that the version described by ``metadata`` was trained on (None when its metadata
    records no training period). A version stored before patients were held out has no patient filter."""
    window = metadata.get("training_window") or {}
    start, until, until_included = window.get("from"), metadata.get("trained_until"), False
    if start is None or until is None:  # a version stored before training windows: its first and last record
        start, until = (metadata.get("data_range") or [None, None])[:2]
        until_included = True
    if start is None or until is None:
        return None
    rows = frame[frame["user_id"].notna()] if "user_id" in frame else frame
    holdout = metadata.get("holdout") or {}
    if holdout.get("by") == "user_id":
        rows = rows[~in_holdout(rows, holdout["fraction"], holdout["salt"])]
    created = rows["created_at"]
    inside = (created >= _utc(start)) & ((created <= _utc(until)) if until_included else (created < _utc(until)))
    rows = rows[inside]
    run_end = (metadata.get("data_interval") or [None, None])[1]
    known = labels_as_of(rows, recipe, _utc(run_end)) if run_end else rows[recipe.label]
    return rows[known.notna()].reset_index(drop=True)


def this_weeks_rows(frame: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """Every record created in the ``CURRENT_DAYS`` days before ``end``."""
    created = frame["created_at"]
    return frame[(created >= _utc(end - timedelta(days=CURRENT_DAYS))) & (created < _utc(end))].reset_index(drop=True)


def metric_change(metric: str, at_training: Any, now: Any) -> dict[str, Any]:
    """The metric then and now; ``lost`` is how much worse it got (negative when it improved)."""
    if not isinstance(at_training, int | float) or not isinstance(now, int | float):
        return {"metric": metric, "at_training": at_training, "now": now, "lost": None}
    lost = now - at_training if metric in LOWER_IS_BETTER else at_training - now
    return {"metric": metric, "at_training": at_training, "now": now, "lost": round(lost, 6)}


def production_drift(
    frame: pd.DataFrame,
    recipe: Recipe,
    metadata: Mapping[str, Any],
    metrics_at_training: Mapping[str, Any],
    metrics_now: Mapping[str, Any] | None,
    *,
    version: str,
    end: datetime,
    threshold: float,
) -> tuple[dict[str, Any], list[str]]:
    """The ``drift`` record of ``decision.json`` for production version ``version`` and the notes for the reasons.

    ``recipe`` is the recipe as that version was trained (its features); ``frame`` the run's feature table with
    those columns; ``metrics_now`` production's metrics on this run's evaluation rows.
    """
    metric = metadata.get("metric") or recipe.metric
    record: dict[str, Any] = {
        "production_version": version,
        "metric": metric_change(metric, metrics_at_training.get(metric), (metrics_now or {}).get(metric)),
        "metric_rows": (metrics_now or {}).get("rows"),
        "threshold": threshold,
        "reference": None,
        "current": None,
        "features": {},
        "flagged": [],
        "note": None,
    }
    reference = training_rows(frame, recipe, metadata)
    current = this_weeks_rows(frame, end)
    record["current"] = {
        "rows": len(current),
        "period": [(end - timedelta(days=CURRENT_DAYS)).isoformat(), end.isoformat()],
    }
    if reference is None:
        record["note"] = f"Production {version} records no training window, so its training rows are unknown."
        return record, []
    record["reference"] = {
        "rows": len(reference),
        "period": [(metadata.get("training_window") or {}).get("from"), metadata.get("trained_until")],
    }
    if len(reference) < MIN_ROWS or len(current) < MIN_ROWS:
        record["note"] = (
            f"Feature drift is not measured: {len(reference)} of production's training rows are still in this run's "
            f"table and {len(current)} records were created in the last {CURRENT_DAYS} days; both need at least "
            f"{MIN_ROWS}."
        )
        return record, []
    report = feature_drift(reference, current, recipe.numeric_features, recipe.categorical_features, threshold)
    record.update(features=report.to_dict()["features"], flagged=[f.feature for f in report.flagged])
    notes = []
    for f in report.flagged:
        new = f" (new this week: {', '.join(f.unseen)})" if f.unseen else ""
        notes.append(
            f"Drift: {f.feature} has shifted since production was trained: PSI {f.psi:.2f} > {threshold} between "
            f"its {len(reference):,} training rows and this week's {len(current):,} records{new}. This informs; "
            "it does not change the verdict."
        )
    return record, notes
