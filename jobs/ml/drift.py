"""Feature drift: how far this week's inputs have moved from the rows a model was trained on.

The population stability index compares the share of rows in each bin of a feature:
``PSI = sum((current - reference) * ln(current / reference))``. It is 0 for identical shares and grows with the
shift; the usual reading is below 0.1 no meaningful shift, 0.1 to 0.2 moderate, above 0.2 significant.

- **Numeric features** are cut at the deciles of the reference (the training rows; observed values, so the bins of a
  count read ``[1, 2)``), so each bin holds about a tenth of them; a feature with few distinct values gets fewer
  bins, and a bin empty on both sides is dropped.
- **Categorical features** are binned by category; a category the training rows never had is a bin of its own
  (its reference share is 0, so a visible share of it this week weighs heavily, as it should: the model learnt
  nothing about it).
- **Missing values** are a bin of their own for both kinds: a feature that stops arriving is drift too.

Shares are floored at ``EPSILON`` so that an empty bin gives a finite index. Pure functions of arrays and frames:
no I/O, deterministic, so they can be tested with hand-made distributions.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

#: the floor of a bin's share, so that an empty bin gives a finite index
EPSILON = 1e-4
#: the bin of missing values (both kinds) in the figures
MISSING = "(missing)"
#: numeric features are cut at the reference's deciles
DEFAULT_BINS = 10
#: below this many rows on either side the index mostly measures sampling noise (about (bins - 1) / rows even
#: with no shift at all), so drift is not measured
MIN_ROWS = 100
NUMERIC, CATEGORICAL = "numeric", "categorical"


def psi(reference: Sequence[float], current: Sequence[float]) -> float:
    """The population stability index of two share vectors over the same bins (each summing to 1)."""
    r = np.clip(np.asarray(reference, dtype=float), EPSILON, None)
    c = np.clip(np.asarray(current, dtype=float), EPSILON, None)
    return float(np.sum((c - r) * np.log(c / r)))


@dataclass(frozen=True)
class FeatureDrift:
    """One feature's drift: its PSI and the share of reference and current rows in each bin (for the plot)."""

    feature: str
    kind: str
    psi: float
    bins: tuple[str, ...]
    reference: tuple[float, ...]
    current: tuple[float, ...]
    #: categories (or the missing bin) present now but absent from the reference rows
    unseen: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "psi": round(self.psi, 6),
            "bins": list(self.bins),
            "reference": [round(s, 6) for s in self.reference],
            "current": [round(s, 6) for s in self.current],
            "unseen": list(self.unseen),
        }


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    return counts / total if total else np.zeros(len(counts))


def _numbers(values: Any) -> np.ndarray:
    return pd.to_numeric(pd.Series(values), errors="coerce").to_numpy(dtype=float, na_value=np.nan)


def _edge(value: float) -> str:
    return f"{value:.4g}"


def numeric_drift(feature: str, reference: Any, current: Any, bins: int = DEFAULT_BINS) -> FeatureDrift:
    """PSI of a numeric feature over the reference's quantile bins (deciles by default), plus a missing bin."""
    ref, cur = _numbers(reference), _numbers(current)
    ref_known, cur_known = ref[~np.isnan(ref)], cur[~np.isnan(cur)]
    edges = (
        np.unique(np.quantile(ref_known, np.arange(1, bins) / bins, method="inverted_cdf"))
        if len(ref_known)
        else np.array([])
    )
    if len(edges):
        labels = [f"< {_edge(edges[0])}"]
        labels += [f"[{_edge(low)}, {_edge(high)})" for low, high in zip(edges[:-1], edges[1:], strict=True)]
        labels.append(f">= {_edge(edges[-1])}")
    else:
        labels = ["all values"]
    ref_counts = np.bincount(np.searchsorted(edges, ref_known, side="right"), minlength=len(labels))
    cur_counts = np.bincount(np.searchsorted(edges, cur_known, side="right"), minlength=len(labels))
    ref_missing, cur_missing = int(np.isnan(ref).sum()), int(np.isnan(cur).sum())
    used = (ref_counts + cur_counts) > 0  # a bin empty on both sides (below a minimum that is a decile) says nothing
    labels = [label for label, keep in zip(labels, used, strict=True) if keep]
    ref_counts, cur_counts = ref_counts[used], cur_counts[used]
    unseen: tuple[str, ...] = ()
    if ref_missing or cur_missing:
        labels.append(MISSING)
        ref_counts = np.append(ref_counts, ref_missing)
        cur_counts = np.append(cur_counts, cur_missing)
        unseen = (MISSING,) if cur_missing and not ref_missing else ()
    r, c = _shares(ref_counts), _shares(cur_counts)
    return FeatureDrift(feature, NUMERIC, psi(r, c), tuple(labels), tuple(r.tolist()), tuple(c.tolist()), unseen)


def _categories(values: Any) -> pd.Series:
    series = pd.Series(values, dtype=object)
    return series.where(series.notna(), MISSING).astype(str)


def categorical_drift(feature: str, reference: Any, current: Any) -> FeatureDrift:
    """PSI of a categorical feature over its categories: the reference's, most common first, then unseen ones."""
    ref_counts = _categories(reference).value_counts()
    cur_counts = _categories(current).value_counts()
    known = sorted(ref_counts.index, key=lambda k: (-ref_counts[k], k))
    unseen = sorted(set(cur_counts.index) - set(ref_counts.index))
    labels = known + unseen
    r = _shares(ref_counts.reindex(labels, fill_value=0).to_numpy(dtype=float))
    c = _shares(cur_counts.reindex(labels, fill_value=0).to_numpy(dtype=float))
    return FeatureDrift(
        feature, CATEGORICAL, psi(r, c), tuple(labels), tuple(r.tolist()), tuple(c.tolist()), tuple(unseen)
    )


@dataclass(frozen=True)
class DriftReport:
    """Every feature's drift between two sets of rows, and which ones pass ``threshold``."""

    threshold: float
    reference_rows: int
    current_rows: int
    features: tuple[FeatureDrift, ...]

    @property
    def flagged(self) -> tuple[FeatureDrift, ...]:
        """The features whose PSI exceeds the threshold, largest shift first."""
        return tuple(sorted((f for f in self.features if f.psi > self.threshold), key=lambda f: -f.psi))

    def to_dict(self) -> dict[str, Any]:
        return {
            "threshold": self.threshold,
            "reference_rows": self.reference_rows,
            "current_rows": self.current_rows,
            "features": {f.feature: f.to_dict() for f in self.features},
            "flagged": [f.feature for f in self.flagged],
        }


def feature_drift(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    numeric: Sequence[str],
    categorical: Sequence[str],
    threshold: float,
    bins: int = DEFAULT_BINS,
) -> DriftReport:
    """Each feature's PSI from ``reference`` rows (what the model was trained on) to ``current`` rows."""
    features = [numeric_drift(name, reference[name], current[name], bins) for name in numeric]
    features += [categorical_drift(name, reference[name], current[name]) for name in categorical]
    return DriftReport(threshold, len(reference), len(current), tuple(features))
