"""Scores of a binary classifier on a holdout: the figures train.json, metrics.json and decision.json carry."""

from __future__ import annotations

from typing import Any

import numpy as np

POSITIVE = 1  # the label of the class a screening model looks for
DECISION_THRESHOLD = 0.5  # a score at or above it predicts the positive class


def positive_scores(estimator: Any, features: Any) -> np.ndarray:
    """P(label = 1) for each row of ``features``, from the ``predict_proba`` column of class 1 (0 for every row
    when the estimator never saw that class)."""
    probabilities = estimator.predict_proba(features)
    classes = [int(c) for c in estimator.classes_]
    if POSITIVE not in classes:
        return np.zeros(len(probabilities))
    return probabilities[:, classes.index(POSITIVE)]


def predicted_labels(scores: np.ndarray) -> np.ndarray:
    """0/1 predictions from positive-class scores."""
    return (scores >= DECISION_THRESHOLD).astype(np.int8)


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None = None,
    slices: np.ndarray | None = None,
    slice_name: str | None = None,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, ROC AUC, F1, log loss, the confusion matrix and accuracy per slice value.

    ``y_score`` is the predicted probability of class 1 (AUC and log loss are None without it, or with one class in
    ``y_true``). Labels are 0/1.
    """
    from sklearn.metrics import (
        accuracy_score,
        balanced_accuracy_score,
        confusion_matrix,
        f1_score,
        log_loss,
        roc_auc_score,
    )

    y_true = np.asarray(y_true).astype(int)
    y_pred = np.asarray(y_pred).astype(int)
    n = len(y_true)
    out: dict[str, Any] = {"rows": int(n), "positives": int(y_true.sum())}
    if n == 0:
        return out
    both = len(np.unique(y_true)) == 2
    out["accuracy"] = _round(accuracy_score(y_true, y_pred))
    out["balanced_accuracy"] = _round(balanced_accuracy_score(y_true, y_pred)) if both else None
    out["f1"] = _round(f1_score(y_true, y_pred, zero_division=0))
    if y_score is not None and both:
        score = np.clip(np.asarray(y_score, dtype=float), 1e-15, 1 - 1e-15)
        out["roc_auc"] = _round(roc_auc_score(y_true, score))
        out["log_loss"] = _round(log_loss(y_true, score, labels=[0, 1]))
    else:
        out["roc_auc"] = out["log_loss"] = None
    tn, fp, fn, tp = confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    out["confusion_matrix"] = {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)}
    out["majority_class_accuracy"] = _round(max(y_true.mean(), 1 - y_true.mean()))
    if slices is not None:
        slices = np.asarray(slices, dtype=object)
        correct = y_true == y_pred
        per_slice = {}
        for value in sorted({str(v) for v in slices}):
            mask = slices.astype(str) == value
            per_slice[value] = {"rows": int(mask.sum()), "accuracy": _round(correct[mask].mean())}
        out["slices"] = {"column": slice_name, "accuracy": per_slice}
    return out
