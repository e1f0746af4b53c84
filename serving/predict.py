"""One prediction from one request's inputs, with the recipe's feature columns in the training order."""

from __future__ import annotations

from typing import Any

HIGH_RISK = "High Risk"
LOW_RISK = "Low Risk"
POSITIVE = 1


def feature_frame(recipe: Any, inputs: dict[str, Any]):
    """A one-row DataFrame of the recipe's features; missing numbers are NaN and missing categories NaN too."""
    import numpy as np
    import pandas as pd

    numeric, categorical = tuple(recipe.numeric_features), tuple(recipe.categorical_features)
    row: dict[str, Any] = {}
    for name in numeric:
        value = inputs.get(name)
        row[name] = np.nan if value is None else float(value)
    for name in categorical:
        value = inputs.get(name)
        row[name] = np.nan if value is None else value
    frame = pd.DataFrame([row], columns=[*numeric, *categorical])
    frame[list(numeric)] = frame[list(numeric)].astype("float64")
    return frame


def score(estimator: Any, recipe: Any, inputs: dict[str, Any]) -> tuple[str, float]:
    """``('High Risk' | 'Low Risk', confidence)``: the confidence is the probability of the class predicted."""
    probabilities = estimator.predict_proba(feature_frame(recipe, inputs))[0]
    classes = [int(c) for c in estimator.classes_]
    positive = float(probabilities[classes.index(POSITIVE)]) if POSITIVE in classes else 0.0
    return (HIGH_RISK, positive) if positive >= 0.5 else (LOW_RISK, 1.0 - positive)
