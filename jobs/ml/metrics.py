"""Scores of a binary classifier on a holdout: the figures train.json, metrics.json and decision.json carry."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

POSITIVE = 1  # the label of the class a screening model looks for
#: the operating threshold of a version stored before thresholds were chosen on validation data
LEGACY_THRESHOLD = 0.5


def positive_scores(estimator: Any, features: Any) -> np.ndarray:
    """P(label = 1) for each row of ``features``, from the ``predict_proba`` column of class 1 (0 for every row
    when the estimator never saw that class)."""
    probabilities = estimator.predict_proba(features)
    classes = [int(c) for c in estimator.classes_]
    if POSITIVE not in classes:
        return np.zeros(len(probabilities))
    return probabilities[:, classes.index(POSITIVE)]


def threshold_of(metadata: Mapping[str, Any]) -> float:
    """A stored version's operating threshold (its ``metadata.json``); versions stored before thresholds were
    chosen on validation data used the legacy one."""
    return float(metadata.get("operating_threshold", LEGACY_THRESHOLD))


def predicted_labels(scores: np.ndarray, threshold: float) -> np.ndarray:
    """0/1 predictions from positive-class scores: positive at or above the model's operating threshold."""
    return (np.asarray(scores) >= threshold).astype(np.int8)


def operating_threshold(y_true: np.ndarray, scores: np.ndarray, target_recall: float) -> float | None:
    """The highest threshold whose recall on these rows reaches ``target_recall`` (None without a positive).

    A screening model is judged by how many of the positives it flags; among the thresholds that flag enough of
    them, the highest flags the fewest negatives.
    """
    positive_scores_sorted = np.sort(np.asarray(scores)[np.asarray(y_true) == POSITIVE])[::-1]
    if len(positive_scores_sorted) == 0:
        return None
    needed = int(np.ceil(target_recall * len(positive_scores_sorted)))
    return float(positive_scores_sorted[max(needed, 1) - 1])


def recall(y_true: np.ndarray, y_pred: np.ndarray) -> float | None:
    """Share of the positives predicted positive (None without a positive)."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    positives = y_true == POSITIVE
    return float((y_pred[positives] == POSITIVE).mean()) if positives.any() else None


def _round(value: float) -> float | None:
    return None if value is None or not np.isfinite(value) else round(float(value), 6)


def classification_metrics(
    y_true: np.ndarray,
    y_pred: np.ndarray,
    y_score: np.ndarray | None = None,
    slices: np.ndarray | None = None,
    slice_name: str | None = None,
) -> dict[str, Any]:
    """Accuracy, balanced accuracy, recall, precision, ROC AUC, F1, log loss, the confusion matrix and accuracy per
    slice value.

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
    out["recall"] = _round(recall(y_true, y_pred)) if y_true.any() else None
    out["precision"] = _round(y_true[y_pred == POSITIVE].mean()) if (y_pred == POSITIVE).any() else None
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
