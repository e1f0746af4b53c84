"""One prediction from one request's inputs, read exactly as the training rows were (``features_frame``)."""

from __future__ import annotations

from typing import Any

HIGH_RISK = "High Risk"
LOW_RISK = "Low Risk"
POSITIVE = 1


def score(estimator: Any, recipe: Any, inputs: dict[str, Any]) -> tuple[str, float]:
    """``('High Risk' | 'Low Risk', confidence)``: the confidence is the probability of the class predicted."""
    from jobs.ml.recipes import features_frame

    probabilities = estimator.predict_proba(features_frame(recipe, [inputs]))[0]
    classes = [int(c) for c in estimator.classes_]
    positive = float(probabilities[classes.index(POSITIVE)]) if POSITIVE in classes else 0.0
    return (HIGH_RISK, positive) if positive >= 0.5 else (LOW_RISK, 1.0 - positive)
