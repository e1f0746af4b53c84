"""The champion/challenger gate: a pure function from paired predictions to a verdict with its reasons.

``decide(y_true, champion_pred, challenger_pred, thresholds)`` takes arrays and does no I/O, so it can be tested
with hand-built predictions and simulated over thousands of seeds (``bench/gate_power.py``).

The checks, in order:

1. **Holdout size**: fewer labelled holdout rows than ``min_holdout`` cannot tell models apart -> ``inconclusive``.
2. **Absolute floor**: the challenger's accuracy must beat always predicting the holdout's majority class by
   ``floor_margin`` -> otherwise ``reject``. With no model in production, passing 1 and 2 means ``deploy``.
3. **Paired comparison** with a champion, on the same rows: ``b`` rows only the challenger gets right, ``c`` rows only
   the champion gets right. McNemar's exact test is the binomial test of ``b`` out of ``b + c`` discordant pairs at
   1/2; the accuracy difference is ``(b - c) / n``, with a paired bootstrap interval. ``deploy`` needs the one-sided
   p-value below ``alpha`` *and* the interval's lower end above ``min_improvement``; a challenger significantly worse
   (p-value of the other side below ``alpha`` and the interval below 0) is ``reject``; anything else is
   ``inconclusive`` and production stays.

A forced deployment (``force=True``) turns the verdict into ``deploy`` but keeps the gate's own verdict and reasons
and marks the decision ``forced``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from jobs.errors import ConfigError
from jobs.ml.thresholds import GateThresholds

DEPLOY, REJECT, INCONCLUSIVE = "deploy", "reject", "inconclusive"

# Codes of the checks that decided a verdict (stable, for tests and dashboards); the reasons say them in words.
FIRST_DEPLOYMENT = "first_deployment"
HOLDOUT_TOO_SMALL = "holdout_too_small"
BELOW_FLOOR = "below_floor"
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
    holdout_rows: int
    majority_accuracy: float | None
    challenger_accuracy: float | None
    champion_accuracy: float | None = None
    difference: float | None = None
    interval: tuple[float, float] | None = None
    p_value: float | None = None
    p_value_worse: float | None = None
    challenger_only_correct: int | None = None
    champion_only_correct: int | None = None
    forced: bool = False
    gate_verdict: str | None = None  # what the gate said before a forced deployment overrode it
    thresholds: GateThresholds = field(default_factory=GateThresholds)

    def to_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "forced": self.forced,
            "gate_verdict": self.gate_verdict or self.verdict,
            "codes": list(self.codes),
            "reasons": list(self.reasons),
            "holdout_rows": self.holdout_rows,
            "majority_accuracy": self.majority_accuracy,
            "challenger_accuracy": self.challenger_accuracy,
            "champion_accuracy": self.champion_accuracy,
            "difference": self.difference,
            "interval": list(self.interval) if self.interval else None,
            "confidence": self.thresholds.confidence,
            "p_value": self.p_value,
            "p_value_worse": self.p_value_worse,
            "discordant": None
            if self.challenger_only_correct is None
            else {
                "challenger_only_correct": self.challenger_only_correct,
                "champion_only_correct": self.champion_only_correct,
            },
            "thresholds": self.thresholds.to_dict(),
        }


def _binary(name: str, values: Any, n: int | None) -> np.ndarray:
    array = np.asarray(values)
    if array.ndim != 1:
        raise ConfigError(f"{name} must be a one-dimensional array of 0/1. Got shape {array.shape} instead.")
    if n is not None and len(array) != n:
        raise ConfigError(f"{name} has {len(array)} values but y_true has {n}: the predictions must be paired.")
    if len(array) and not np.isin(array, (0, 1)).all():
        raise ConfigError(f"{name} must hold only 0 and 1. Got {sorted(set(np.unique(array).tolist()))[:5]}.")
    return array.astype(np.int8)


def mcnemar_exact(b: int, c: int) -> tuple[float, float]:
    """One-sided exact McNemar p-values: (challenger better, challenger worse); 1.0 each with no discordant pair."""
    from scipy.stats import binom

    n = b + c
    if n == 0:
        return 1.0, 1.0
    return float(binom.sf(b - 1, n, 0.5)), float(binom.cdf(b, n, 0.5))


def paired_bootstrap_interval(
    b: int, c: int, n: int, confidence: float, resamples: int, seed: int
) -> tuple[float, float]:
    """Percentile interval of the accuracy difference over ``resamples`` paired bootstrap resamples of the rows.

    Resampling ``n`` rows with replacement only matters through how many of each kind it draws (challenger-only
    correct, champion-only correct, the rest), so each resample is one multinomial draw: exactly the paired
    bootstrap, in microseconds instead of an (resamples x n) index matrix.
    """
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [b / n, c / n, (n - b - c) / n], size=resamples)
    differences = (draws[:, 0] - draws[:, 1]) / n
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(differences, [tail, 1.0 - tail])
    return float(low), float(high)


def _pct(x: float) -> str:
    return f"{x:.4f}"


def decide(
    y_true: Any,
    champion_pred: Any | None,
    challenger_pred: Any,
    thresholds: GateThresholds | None = None,
    *,
    force: bool = False,
) -> Decision:
    """The verdict on replacing ``champion_pred``'s model (None: nothing in production) by ``challenger_pred``'s.

    All arrays are 0/1 over the same holdout rows, in the same order. Pure: same inputs, same decision.
    """
    t = thresholds or GateThresholds()
    y = _binary("y_true", y_true, None)
    n = len(y)
    new = _binary("challenger_pred", challenger_pred, n)
    old = None if champion_pred is None else _binary("champion_pred", champion_pred, n)

    majority = float(max(y.mean(), 1 - y.mean())) if n else None
    acc_new = float((new == y).mean()) if n else None
    acc_old = float((old == y).mean()) if n and old is not None else None
    reasons: list[str] = []
    codes: list[str] = []
    figures: dict[str, Any] = {}

    if old is not None and n:
        b = int(((new == y) & (old != y)).sum())
        c = int(((old == y) & (new != y)).sum())
        p_better, p_worse = mcnemar_exact(b, c)
        low, high = paired_bootstrap_interval(b, c, n, t.confidence, t.n_bootstrap, t.bootstrap_seed)
        figures = {
            "difference": (b - c) / n,
            "interval": (low, high),
            "p_value": p_better,
            "p_value_worse": p_worse,
            "challenger_only_correct": b,
            "champion_only_correct": c,
        }

    if n < t.min_holdout:
        result = INCONCLUSIVE
        codes.append(HOLDOUT_TOO_SMALL)
        reasons.append(
            f"The holdout has {n} labelled rows, fewer than the minimum of {t.min_holdout}: too few to judge a model; "
            "production stays as it is."
        )
    elif acc_new - majority < t.floor_margin:
        result = REJECT
        codes.append(BELOW_FLOOR)
        reasons.append(
            f"The new model's accuracy {_pct(acc_new)} does not beat always predicting the majority class "
            f"({_pct(majority)}) by the required margin of {t.floor_margin}."
        )
    elif old is None:
        result = DEPLOY
        codes.append(FIRST_DEPLOYMENT)
        reasons.append(
            f"No model is in production, so only the absolute checks apply: {n} holdout rows (minimum "
            f"{t.min_holdout}), accuracy {_pct(acc_new)} beats the majority class ({_pct(majority)}) by at least "
            f"{t.floor_margin}."
        )
    else:
        b, c = figures["challenger_only_correct"], figures["champion_only_correct"]
        low, high = figures["interval"]
        level = f"{t.confidence:.0%}"
        pair_text = (
            f"on {n} paired holdout rows the new model alone is right on {b}, production alone on {c}; "
            f"accuracy {_pct(acc_new)} vs {_pct(acc_old)}, difference {figures['difference']:+.4f} "
            f"({level} bootstrap interval {low:+.4f} to {high:+.4f})"
        )
        if figures["p_value"] < t.alpha and low > t.min_improvement:
            result = DEPLOY
            codes.append(SIGNIFICANTLY_BETTER)
            reasons.append(
                f"The new model is better: {pair_text}; McNemar's exact test gives p = {figures['p_value']:.2g} "
                f"< {t.alpha} and the interval lies above {t.min_improvement}."
            )
        elif figures["p_value_worse"] < t.alpha and high < 0:
            result = REJECT
            codes.append(SIGNIFICANTLY_WORSE)
            reasons.append(
                f"The new model is worse than production: {pair_text}; McNemar's exact test gives "
                f"p = {figures['p_value_worse']:.2g} < {t.alpha} for it being worse."
            )
        else:
            result = INCONCLUSIVE
            if figures["p_value"] >= t.alpha:
                codes.append(NOT_SIGNIFICANT)
                reasons.append(
                    f"No evidence that the new model is better: {pair_text}; McNemar's exact test gives "
                    f"p = {figures['p_value']:.2g}, not below {t.alpha}. Production stays."
                )
            if low <= t.min_improvement:
                codes.append(INTERVAL_TOO_LOW)
                reasons.append(
                    f"The {level} interval of the accuracy difference starts at {low:+.4f}, not above the required "
                    f"improvement of {t.min_improvement}. Production stays."
                )

    gate_verdict = None
    if force:
        gate_verdict, result = result, DEPLOY
        codes.insert(0, FORCED)
        reasons.insert(0, f"Deployment FORCED by an operator; the gate's own verdict was '{gate_verdict}'.")

    return Decision(
        verdict=result,
        codes=tuple(codes),
        reasons=tuple(reasons),
        holdout_rows=n,
        majority_accuracy=majority,
        challenger_accuracy=acc_new,
        champion_accuracy=acc_old,
        forced=force,
        gate_verdict=gate_verdict,
        thresholds=t,
        **figures,
    )
