"""Paired comparisons of two models scored on the same rows: one test per metric, each fitting its metric.

Every function returns a :class:`Comparison` oriented so that a positive ``difference`` means the challenger is
better, whatever the metric (for log loss, lower is better, so the difference is champion minus challenger):

- ``roc_auc``: DeLong's test for two correlated ROC curves (DeLong, DeLong & Clarke-Pearson 1988), with the fast
  midrank algorithm of Sun & Xu (2014); the interval is the normal one from DeLong's variance.
- ``log_loss``: the paired bootstrap of the mean per-row loss difference; the p-value is the normal one from the
  bootstrap's standard error (a percentile p-value cannot resolve the small significance levels the gate uses).
- ``accuracy``: McNemar's exact test on the rows only one model classifies right, each at its own operating
  threshold; the interval is the paired bootstrap of the accuracy difference.

All are pure functions of arrays: no I/O, deterministic for a given seed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

METRICS = ("roc_auc", "log_loss", "accuracy")
TESTS = {"roc_auc": "DeLong's test", "log_loss": "a paired bootstrap", "accuracy": "McNemar's exact test"}
EPSILON = 1e-15  # probabilities are clipped to [EPSILON, 1 - EPSILON] before a logarithm


@dataclass(frozen=True)
class Comparison:
    """Challenger against champion on one metric: the difference (positive = challenger better), its two-sided
    interval at the requested confidence, and the one-sided p-values of "better" and "worse"."""

    metric: str
    challenger: float
    champion: float
    difference: float
    interval: tuple[float, float]
    p_better: float
    p_worse: float
    test: str
    discordant: tuple[int, int] | None = None  # (challenger only right, champion only right), for accuracy


def _normal_sf(z: float) -> float:
    from scipy.stats import norm

    return float(norm.sf(z))


def _normal_quantile(q: float) -> float:
    from scipy.stats import norm

    return float(norm.ppf(q))


def _one_sided(difference: float, se: float) -> tuple[float, float]:
    """Normal one-sided p-values of "better" and "worse"; with no spread, only a strict difference counts."""
    if se == 0.0:
        return (0.0 if difference > 0 else 1.0), (0.0 if difference < 0 else 1.0)
    return _normal_sf(difference / se), _normal_sf(-difference / se)


def _midranks(x: np.ndarray) -> np.ndarray:
    """Ranks from 1, ties sharing their mean rank."""
    from scipy.stats import rankdata

    return rankdata(x, method="average")


def delong(y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, confidence: float) -> Comparison:
    """DeLong's paired test of two ROC AUCs on the same rows (both classes must be present)."""
    positives, negatives = y == 1, y == 0
    m, n = int(positives.sum()), int(negatives.sum())
    aucs, v10, v01 = [], [], []
    for scores in (challenger, champion):
        x, z = scores[positives], scores[negatives]
        tx, tz, txz = _midranks(x), _midranks(z), _midranks(np.concatenate([x, z]))
        aucs.append(float((txz[:m].sum() - m * (m + 1) / 2) / (m * n)))
        v10.append((txz[:m] - tx) / n)  # each positive's share of negatives ranked below it
        v01.append(1.0 - (txz[m:] - tz) / m)  # each negative's share of positives ranked above it
    s10, s01 = np.cov(np.vstack(v10)), np.cov(np.vstack(v01))
    variance = float((s10[0, 0] + s10[1, 1] - 2 * s10[0, 1]) / m + (s01[0, 0] + s01[1, 1] - 2 * s01[0, 1]) / n)
    difference = aucs[0] - aucs[1]
    se = max(variance, 0.0) ** 0.5
    half = _normal_quantile(0.5 + confidence / 2) * se
    p_better, p_worse = _one_sided(difference, se)
    return Comparison(
        "roc_auc",
        aucs[0],
        aucs[1],
        difference,
        (difference - half, difference + half),
        p_better,
        p_worse,
        TESTS["roc_auc"],
    )


def row_log_loss(y: np.ndarray, score: np.ndarray) -> np.ndarray:
    p = np.clip(score.astype(float), EPSILON, 1 - EPSILON)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def paired_log_loss(
    y: np.ndarray, challenger: np.ndarray, champion: np.ndarray, confidence: float, resamples: int, seed: int
) -> Comparison:
    """The mean log-loss difference (champion minus challenger) with a paired bootstrap over the rows."""
    gain = row_log_loss(y, champion) - row_log_loss(y, challenger)
    n = len(y)
    rng = np.random.default_rng(seed)
    means = np.array([gain[rng.integers(0, n, n)].mean() for _ in range(resamples)])
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile(means, [tail, 1.0 - tail])
    difference, se = float(gain.mean()), float(means.std(ddof=1))
    p_better, p_worse = _one_sided(difference, se)
    return Comparison(
        "log_loss",
        float(row_log_loss(y, challenger).mean()),
        float(row_log_loss(y, champion).mean()),
        difference,
        (float(low), float(high)),
        p_better,
        p_worse,
        TESTS["log_loss"],
    )


def mcnemar_exact(b: int, c: int) -> tuple[float, float]:
    """One-sided exact McNemar p-values: (challenger better, challenger worse); 1.0 each with no discordant pair."""
    from scipy.stats import binom

    n = b + c
    if n == 0:
        return 1.0, 1.0
    return float(binom.sf(b - 1, n, 0.5)), float(binom.cdf(b, n, 0.5))


def paired_accuracy(
    y: np.ndarray, challenger_pred: np.ndarray, champion_pred: np.ndarray, confidence: float, resamples: int, seed: int
) -> Comparison:
    """Accuracy at each model's threshold: McNemar's exact test, and the paired bootstrap interval.

    Resampling ``n`` rows with replacement only matters through how many of each kind it draws (challenger-only
    right, champion-only right, the rest), so each resample is one multinomial draw: exactly the paired bootstrap.
    """
    n = len(y)
    new_right, old_right = challenger_pred == y, champion_pred == y
    b, c = int((new_right & ~old_right).sum()), int((old_right & ~new_right).sum())
    p_better, p_worse = mcnemar_exact(b, c)
    rng = np.random.default_rng(seed)
    draws = rng.multinomial(n, [b / n, c / n, (n - b - c) / n], size=resamples)
    tail = (1.0 - confidence) / 2.0
    low, high = np.quantile((draws[:, 0] - draws[:, 1]) / n, [tail, 1.0 - tail])
    return Comparison(
        "accuracy",
        float(new_right.mean()),
        float(old_right.mean()),
        (b - c) / n,
        (float(low), float(high)),
        p_better,
        p_worse,
        TESTS["accuracy"],
        discordant=(b, c),
    )
