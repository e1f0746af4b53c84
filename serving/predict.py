"""One prediction from one request's inputs, read exactly as the training rows were (``features_frame``)."""

from __future__ import annotations

from typing import Any

HIGH_RISK = "High Risk"
LOW_RISK = "Low Risk"


def score(estimator: Any, recipe: Any, inputs: dict[str, Any], threshold: float) -> tuple[str, float]:
    """``('High Risk' | 'Low Risk', confidence)`` at the model's stored operating threshold; the confidence is the
    probability of the class predicted."""
    from jobs.ml.metrics import positive_scores
    from jobs.ml.recipes import features_frame

    positive = float(positive_scores(estimator, features_frame(recipe, [inputs]))[0])
    return (HIGH_RISK, positive) if positive >= threshold else (LOW_RISK, 1.0 - positive)
