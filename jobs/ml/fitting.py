"""Fitting a recipe's estimator on a training window, and choosing that window on the validation period.

Under drift, recent records describe the patients of next week best, but fewer records make a noisier model. A
recipe offers candidate windows (``training_weeks``, e.g. 8, 26 and 52 weeks) and, optionally, weights that decay
with a record's age (``recency_half_life_weeks``). Each candidate is fitted on the weeks before the validation
period and scored there, on held-out patients, by the recipe's metric; the best one is then refitted on the weeks
before the evaluation period, so the model the gate judges has seen the newest records it may see. The evaluation
period plays no part in the choice.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import pandas as pd

from jobs.errors import TrainError
from jobs.ml.dataset import Split
from jobs.ml.metrics import operating_threshold, positive_scores, predicted_labels
from jobs.ml.paired import row_log_loss
from jobs.ml.recipes import Recipe, features_frame

log = logging.getLogger(__name__)
SECONDS_PER_WEEK = 7 * 24 * 3600


def sample_weights(recipe: Recipe, created: pd.Series, as_of: datetime) -> np.ndarray | None:
    """Weights halving every ``recency_half_life_weeks`` of age at ``as_of``; None when the recipe weighs rows
    equally."""
    if recipe.recency_half_life_weeks is None:
        return None
    age_weeks = (pd.Timestamp(as_of) - created).dt.total_seconds().to_numpy() / SECONDS_PER_WEEK
    return np.power(0.5, np.clip(age_weeks, 0, None) / recipe.recency_half_life_weeks)


def fit(recipe: Recipe, rows: pd.DataFrame, as_of: datetime) -> Any:
    """A freshly built estimator fitted on ``rows`` (weighted by age at ``as_of`` when the recipe says so)."""
    estimator = recipe.build_estimator()
    weights = sample_weights(recipe, rows["created_at"], as_of)
    extra = {}
    if weights is not None:
        last_step = estimator.steps[-1][0] if hasattr(estimator, "steps") else None
        extra = {f"{last_step}__sample_weight" if last_step else "sample_weight": weights}
    estimator.fit(features_frame(recipe, rows), rows[recipe.label].to_numpy(), **extra)
    return estimator


def metric_value(metric: str, y: np.ndarray, scores: np.ndarray, target_recall: float) -> float | None:
    """The metric on these rows, oriented so that higher is better (log loss is negated); None when undefined.
    Accuracy is taken at the threshold that reaches ``target_recall`` on the same rows."""
    from sklearn.metrics import roc_auc_score

    if len(y) == 0:
        return None
    if metric == "roc_auc":
        return float(roc_auc_score(y, scores)) if 0 < y.sum() < len(y) else None
    if metric == "log_loss":
        return -float(row_log_loss(y, scores).mean())
    threshold = operating_threshold(y, scores, target_recall)
    return None if threshold is None else float((predicted_labels(scores, threshold) == y).mean())


def has_both_classes(rows: pd.DataFrame, recipe: Recipe) -> bool:
    return rows[recipe.label].nunique() == 2


@dataclass(frozen=True)
class WindowChoice:
    """The chosen training window (weeks; None = all history) and every candidate's validation score."""

    weeks: int | None
    scores: dict[str, float | None]
    validated: bool  # False when the validation period could not rank the candidates (too few rows, one class)

    def to_dict(self) -> dict[str, Any]:
        return {"weeks": self.weeks, "validation_scores": self.scores, "validated": self.validated}


def window_label(weeks: int | None) -> str:
    return "all" if weeks is None else f"{weeks}w"


def choose_window(recipe: Recipe, parts: Split) -> WindowChoice:
    """Fit each candidate window on the weeks before the validation period, score it there, keep the best.

    With one candidate, or a validation period that cannot rank them, the first candidate is kept and the result
    says so.
    """
    candidates = recipe.training_weeks
    validation = parts.validation
    y = validation[recipe.label].to_numpy()
    if len(candidates) == 1 or len(validation) == 0 or not has_both_classes(validation, recipe):
        return WindowChoice(candidates[0], {}, validated=False)
    start = parts.periods.validation_start
    scores: dict[str, float | None] = {}
    for weeks in candidates:
        rows = parts.training_rows(weeks, before=start)
        if len(rows) < recipe.min_labelled_rows or not has_both_classes(rows, recipe):
            scores[window_label(weeks)] = None
            continue
        estimator = fit(recipe, rows, start)
        scored = positive_scores(estimator, features_frame(recipe, validation))
        scores[window_label(weeks)] = metric_value(recipe.metric, y, scored, recipe.target_recall)
    ranked = [(score, -i) for i, score in enumerate(scores.values()) if score is not None]
    if not ranked:
        return WindowChoice(candidates[0], scores, validated=False)
    best = -max(ranked)[1]  # the best score; among equals, the candidate listed first
    log.info("%s: training window %s chosen on validation (%s).", recipe.name, window_label(candidates[best]), scores)
    return WindowChoice(candidates[best], scores, validated=True)


def choose_threshold(recipe: Recipe, estimator: Any, parts: Split, training: pd.DataFrame) -> tuple[float, str]:
    """The operating threshold that flags ``target_recall`` of the positives: on the validation period's held-out
    patients (never trained on), or on the training rows when that period has no positive."""
    for name, rows in (("validation", parts.validation), ("training", training)):
        y = rows[recipe.label].to_numpy()
        if y.sum() > 0:
            scores = positive_scores(estimator, features_frame(recipe, rows))
            threshold = operating_threshold(y, scores, recipe.target_recall)
            if threshold is not None:
                return threshold, name
    raise TrainError(f"{recipe.name}: no positive row to choose an operating threshold on.")
