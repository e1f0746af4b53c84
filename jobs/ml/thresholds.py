"""The champion/challenger gate's thresholds: defaults here, overridable per recipe.

Kept apart from the gate itself so that a recipe can import them without pulling in scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jobs.errors import check_scalar


@dataclass(frozen=True)
class GateThresholds:
    """When a challenger may replace production, judged on the newest labelled weeks of held-out patients.

    ``alpha`` is a yearly budget spent evenly: the gate runs once a week per model, so a per-test level of
    0.05 / 52 keeps the expected number of false promotions of a model that is no better at or below 0.05 a year
    (0.15 for three models); ``bench/gate_power.py`` simulates it, and the power against the demo's drift.
    """

    #: the evaluation rows must number at least this many, with ``min_positives`` of them positive, for any verdict
    #: but "inconclusive"
    min_holdout: int = 200
    min_positives: int = 20
    #: the challenger's ROC AUC must reach this, whatever production does (0.5 ranks no better than chance)
    min_auc: float = 0.6
    #: one-sided significance level of the metric's paired test (challenger better than champion), per weekly test
    alpha: float = 0.05 / 52
    #: the lower end of the interval of the metric's improvement must exceed this (in the metric's units)
    min_improvement: float = 0.0
    #: the challenger's recall at its operating threshold may fall at most this far below production's recall
    recall_tolerance: float = 0.05
    #: two-sided confidence level of the interval
    confidence: float = 0.95
    #: bootstrap resamples (log loss and accuracy intervals), and the seed that makes them reproducible
    n_bootstrap: int = 2_000
    bootstrap_seed: int = 0
    #: a feature whose population stability index between production's training rows and this week's rows exceeds
    #: this is flagged in the report and the reasons (0.2 is the usual "significant shift"); it informs, never
    #: changes the verdict
    drift_psi: float = 0.2

    def __post_init__(self) -> None:
        check_scalar(
            self.min_improvement, "The 'min_improvement' threshold", float, minimum=-1, maximum=1, closed="neither"
        )
        for name in ("alpha", "confidence", "min_auc", "recall_tolerance"):
            check_scalar(getattr(self, name), f"The {name!r} threshold", float, minimum=0, maximum=1, closed="neither")
        for name in ("min_holdout", "min_positives", "n_bootstrap"):
            check_scalar(getattr(self, name), f"The {name!r} threshold", int, minimum=1)
        check_scalar(self.bootstrap_seed, "The 'bootstrap_seed' threshold", int, minimum=0)
        check_scalar(self.drift_psi, "The 'drift_psi' threshold", float, minimum=0, closed="neither")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
