"""The champion/challenger gate's thresholds: defaults here, overridable per recipe.

Kept apart from the gate itself so that a recipe can import them without pulling in scipy.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from jobs.errors import check_scalar


@dataclass(frozen=True)
class GateThresholds:
    """When a challenger may replace production.

    The defaults keep false promotions of a model that is no better at or below 1% (one-sided exact McNemar test
    at ``alpha``) and promote a truly 2-points-better model about 80% of the time on a 5,000-row holdout with 20% of
    the pairs disagreeing (``bench/gate_power.py`` measures both).
    """

    #: the holdout must have at least this many labelled rows for any verdict but "inconclusive"
    min_holdout: int = 200
    #: the challenger's accuracy must beat always predicting the holdout's majority class by this much
    floor_margin: float = 0.02
    #: one-sided significance level of McNemar's exact test (challenger better than champion)
    alpha: float = 0.01
    #: the lower end of the bootstrap interval of (challenger - champion) accuracy must exceed this
    min_improvement: float = 0.0
    #: two-sided confidence level of the paired bootstrap interval
    confidence: float = 0.95
    #: bootstrap resamples, and the seed that makes the interval reproducible
    n_bootstrap: int = 2_000
    bootstrap_seed: int = 0

    def __post_init__(self) -> None:
        for name in ("floor_margin", "min_improvement"):
            check_scalar(getattr(self, name), f"The {name!r} threshold", float, minimum=-1, maximum=1, closed="neither")
        for name in ("alpha", "confidence"):
            check_scalar(getattr(self, name), f"The {name!r} threshold", float, minimum=0, maximum=1, closed="neither")
        for name in ("min_holdout", "n_bootstrap"):
            check_scalar(getattr(self, name), f"The {name!r} threshold", int, minimum=1)
        check_scalar(self.bootstrap_seed, "The 'bootstrap_seed' threshold", int, minimum=0)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)
