"""The champion/challenger gate: a pure function from paired scores to a verdict with its reasons.

``decide(y_true, champion_score, challenger_score, ...)`` takes arrays and thresholds and does no I/O, so it can be
tested with hand-built scores and simulated over thousands of seeds (``bench/gate_power.py``). The rows are the
evaluation rows: held-out patients' labelled records of the newest weeks, which neither model was trained on.

The checks, in order:

1. **Evaluation size**: fewer than ``min_holdout`` rows, or ``min_positives`` positives, cannot tell models apart
   -> ``inconclusive``.
2. **Absolute floor**: the challenger's ROC AUC must reach ``min_auc`` -> otherwise ``reject``.
3. **Recall floor**: at its operating threshold, the challenger must flag at least the share of positives that
   production flags at its own, less ``recall_tolerance`` -> otherwise ``reject``: a screening model may not miss
   more patients to gain elsewhere. (With nothing in production the recall is reported against the recipe's
   target, which the threshold was chosen to reach on the validation period.)
4. With no model in production, passing 1-3 means ``deploy``.
5. **Paired comparison** on the recipe's metric, with the test that fits it (:mod:`jobs.ml.paired`): ``deploy``
   needs the one-sided p-value below ``alpha`` *and* the interval's lower end above ``min_improvement``; a
   challenger significantly worse is ``reject``; anything else is ``inconclusive`` and production stays.

``notes`` (e.g. how the evaluation rows were restricted to rows neither model saw) lead the reasons. A forced
deployment (``force=True``) turns the verdict into ``deploy`` but keeps the gate's own verdict and reasons and
marks the decision ``forced``.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jobs.errors import ConfigError
from jobs.ml.metrics import predicted_labels, recall
from jobs.ml.paired import METRICS, Comparison, delong, paired_accuracy, paired_log_loss
from jobs.ml.thresholds import GateThresholds

DEPLOY, REJECT, INCONCLUSIVE = "deploy", "reject", "inconclusive"

# Codes of the checks that decided a verdict (stable, for tests and dashboards); the reasons say them in words.
FIRST_DEPLOYMENT = "first_deployment"
HOLDOUT_TOO_SMALL = "holdout_too_small"
BELOW_FLOOR = "below_floor"
RECALL_TOO_LOW = "recall_too_low"
SIGNIFICANTLY_BETTER = "significantly_better"
SIGNIFICANTLY_WORSE = "significantly_worse"
NOT_SIGNIFICANT = "not_significant"
INTERVAL_TOO_LOW = "interval_too_low"
FORCED = "forced"


@dataclass(frozen=True)
class Decision:
    """The gate's verdict on one model, with the figures behind it."""

    verdict: str
    codes: tuple[str, ...]
    reasons: tuple[str, ...]
    metric: str
    evaluation_rows: int
    positives: int
    challenger_auc: float | None
    challenger_recall: float | None
    champion_recall: float | None = None
    comparison: Comparison | None = None
    forced: bool = False
    gate_verdict: str | None = None  # what the gate said before a forced deployment overrode it
    thresholds: GateThresholds = field(default_factory=GateThresholds)

    def to_dict(self) -> dict[str, Any]:
        c = self.comparison
        return {
            "verdict": self.verdict,
            "forced": self.forced,
            "gate_verdict": self.gate_verdict or self.verdict,
            "codes": list(self.codes),
            "reasons": list(self.reasons),
            "metric": self.metric,
            "evaluation_rows": self.evaluation_rows,
            "positives": self.positives,
            "challenger_auc": self.challenger_auc,
            "challenger_recall": self.challenger_recall,
            "champion_recall": self.champion_recall,
            "comparison": None
            if c is None
            else {
                "test": c.test,
                "challenger": c.challenger,
                "champion": c.champion,
                "difference": c.difference,
                "interval": list(c.interval),
                "confidence": self.thresholds.confidence,
                "p_value": c.p_better,
                "p_value_worse": c.p_worse,
                "discordant": None
                if c.discordant is None
                else {"challenger_only_correct": c.discordant[0], "champion_only_correct": c.discordant[1]},
            },
            "thresholds": self.thresholds.to_dict(),
        }


def _labels(y_true: Any) -> np.ndarray:
    y = np.asarray(y_true)
    if y.ndim != 1:
        raise ConfigError(f"y_true must be a one-dimensional array of 0/1. Got shape {y.shape} instead.")
    if len(y) and not np.isin(y, (0, 1)).all():
        raise ConfigError(f"y_true must hold only 0 and 1. Got {sorted(set(np.unique(y).tolist()))[:5]}.")
    return y.astype(np.int8)


def _scores(name: str, values: Any, n: int) -> np.ndarray:
    array = np.asarray(values, dtype=float)
    if array.ndim != 1 or len(array) != n:
        raise ConfigError(f"{name} must hold one score per row of y_true ({n}); got shape {array.shape}.")
    if len(array) and not (np.isfinite(array).all() and (array >= 0).all() and (array <= 1).all()):
        raise ConfigError(f"{name} must hold probabilities in [0, 1].")
    return array


def compare(
    metric: str,
    y: np.ndarray,
    challenger: np.ndarray,
    champion: np.ndarray,
    challenger_threshold: float,
    champion_threshold: float,
    t: GateThresholds,
) -> Comparison:
    """The paired comparison on ``metric``, with the test that fits it."""
    if metric == "roc_auc":
        return delong(y, challenger, champion, t.confidence)
    if metric == "log_loss":
        return paired_log_loss(y, challenger, champion, t.confidence, t.n_bootstrap, t.bootstrap_seed)
    if metric == "accuracy":
        new, old = predicted_labels(challenger, challenger_threshold), predicted_labels(champion, champion_threshold)
        return paired_accuracy(y, new, old, t.confidence, t.n_bootstrap, t.bootstrap_seed)
    raise ConfigError(f"The gate's metric must be one of {', '.join(METRICS)}. Got {metric!r} instead.")


def _f(x: float | None) -> str:
    return "n/a" if x is None else f"{x:.4f}"


def decide(
    y_true: Any,
    champion_score: Any | None,
    challenger_score: Any,
    *,
    challenger_threshold: float,
    champion_threshold: float | None = None,
    metric: str = "roc_auc",
    target_recall: float = 0.8,
    thresholds: GateThresholds | None = None,
    notes: Sequence[str] = (),
    force: bool = False,
    force_reason: str = "",
) -> Decision:
    """The verdict on replacing ``champion_score``'s model (None: nothing in production) by ``challenger_score``'s.

    Scores are each model's probability of the positive class on the same rows, in the same order; each model is
    cut at its own stored operating threshold. Pure: same inputs, same decision.
    """
    from sklearn.metrics import roc_auc_score

    t = thresholds or GateThresholds()
    if metric not in METRICS:
        raise ConfigError(f"The gate's metric must be one of {', '.join(METRICS)}. Got {metric!r} instead.")
    y = _labels(y_true)
    n, positives = len(y), int(y.sum())
    new = _scores("challenger_score", challenger_score, n)
    old = None if champion_score is None else _scores("champion_score", champion_score, n)
    both_classes = 0 < positives < n
    auc_new = float(roc_auc_score(y, new)) if both_classes else None
    recall_new = recall(y, predicted_labels(new, challenger_threshold))
    recall_old = None
    if old is not None and champion_threshold is not None:
        recall_old = recall(y, predicted_labels(old, champion_threshold))
    codes: list[str] = []
    reasons: list[str] = list(notes)
    comparison = None

    if n < t.min_holdout or positives < t.min_positives or not both_classes:
        result = INCONCLUSIVE
        codes.append(HOLDOUT_TOO_SMALL)
        reasons.append(
            f"The evaluation has {n} labelled rows with {positives} positives; the gate needs at least "
            f"{t.min_holdout} rows and {t.min_positives} positives (and both outcomes) to judge a model. "
            "Production stays as it is."
        )
    elif auc_new < t.min_auc:
        result = REJECT
        codes.append(BELOW_FLOOR)
        reasons.append(
            f"The new model's ROC AUC {_f(auc_new)} is below the floor of {t.min_auc}: it does not rank patients "
            "well enough to screen them."
        )
    elif recall_new is not None and recall_old is not None and recall_new < recall_old - t.recall_tolerance:
        result = REJECT
        codes.append(RECALL_TOO_LOW)
        reasons.append(
            f"At its operating threshold {challenger_threshold:.4f} the new model flags {_f(recall_new)} of the "
            f"positives, below production's {_f(recall_old)} at its own threshold less the tolerance of "
            f"{t.recall_tolerance}: it would miss more patients."
        )
    elif old is None:
        result = DEPLOY
        codes.append(FIRST_DEPLOYMENT)
        reasons.append(
            f"No model is in production, so only the absolute checks apply: {n} evaluation rows ({positives} "
            f"positive), ROC AUC {_f(auc_new)} (floor {t.min_auc}), recall {_f(recall_new)} at its threshold "
            f"{challenger_threshold:.4f} (target {target_recall})."
        )
    else:
        comparison = compare(metric, y, new, old, challenger_threshold, champion_threshold or 0.0, t)
        low, high = comparison.interval
        level = f"{t.confidence:.0%}"
        said = (
            f"on {n} evaluation rows ({positives} positive), {metric} {_f(comparison.challenger)} against "
            f"production's {_f(comparison.champion)}, improvement {comparison.difference:+.4f} ({level} interval "
            f"{low:+.4f} to {high:+.4f})"
        )
        if comparison.discordant:
            only_new, only_old = comparison.discordant
            said += f"; the new model alone is right on {only_new}, production alone on {only_old}"
        if comparison.p_better < t.alpha and low > t.min_improvement:
            result = DEPLOY
            codes.append(SIGNIFICANTLY_BETTER)
            reasons.append(
                f"The new model is better: {said}; {comparison.test} gives p = {comparison.p_better:.2g} "
                f"< {t.alpha:.2g} and the interval lies above {t.min_improvement}."
            )
        elif comparison.p_worse < t.alpha and high < 0:
            result = REJECT
            codes.append(SIGNIFICANTLY_WORSE)
            reasons.append(
                f"The new model is worse than production: {said}; {comparison.test} gives "
                f"p = {comparison.p_worse:.2g} < {t.alpha:.2g} for it being worse."
            )
        else:
            result = INCONCLUSIVE
            if comparison.p_better >= t.alpha:
                codes.append(NOT_SIGNIFICANT)
                reasons.append(
                    f"No evidence that the new model is better: {said}; {comparison.test} gives "
                    f"p = {comparison.p_better:.2g}, not below {t.alpha:.2g}. Production stays."
                )
            if low <= t.min_improvement:
                codes.append(INTERVAL_TOO_LOW)
                reasons.append(
                    f"The {level} interval of the improvement starts at {low:+.4f}, not above the required "
                    f"improvement of {t.min_improvement}. Production stays."
                )

    gate_verdict = None
    if force:
        gate_verdict, result = result, DEPLOY
        codes.insert(0, FORCED)
        why = f" (why: {force_reason})" if force_reason else ""
        if gate_verdict == DEPLOY:
            reasons.insert(0, f"Deployment forced by an operator{why}; the gate would have deployed it anyway.")
        else:
            overridden = f"overriding the gate's verdict '{gate_verdict}' (its reasons follow)"
            reasons.insert(0, f"Deployment FORCED by an operator{why}, {overridden}.")

    return Decision(
        verdict=result,
        codes=tuple(codes),
        reasons=tuple(reasons),
        metric=metric,
        evaluation_rows=n,
        positives=positives,
        challenger_auc=auc_new,
        challenger_recall=recall_new,
        champion_recall=recall_old,
        comparison=comparison,
        forced=force,
        gate_verdict=gate_verdict,
        thresholds=t,
    )
