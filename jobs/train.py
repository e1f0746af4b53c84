"""train_models: fit one scikit-learn pipeline per recipe on the run's feature tables; store immutable versions.

Only rows with a verified outcome are trained on; the holdout (by hashed record id) is never trained on, in any
run. A model with too few labelled rows or a single class is skipped with the reason and the others go on.
Writes ``train.json`` in the run folder: per model, the new version (or why none) with its counts and metrics.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from jobs.errors import RecipeError, TrainError
from jobs.ml.dataset import read_feature_table, split
from jobs.ml.metrics import classification_metrics, positive_scores, predicted_labels
from jobs.ml.provenance import code_revision, file_sha256, library_versions, sql_lineage
from jobs.ml.recipes import Recipe, features_frame, load_recipes
from jobs.ml.store import ModelStore
from jobs.run_context import RunContext
from jobs.settings import Settings
from jobs.sqlproject.project import load_project

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelTraining:
    """One recipe's outcome in this run: a stored version, or ``skipped`` with the reason."""

    model: str
    version: str | None
    reason: str | None  # why it was not trained (None when it was)
    rows: int = 0
    labelled_rows: int = 0
    label_coverage: float = 0.0
    class_counts: dict[str, int] = field(default_factory=dict)
    train_rows: int = 0
    holdout_rows: int = 0
    metrics: dict[str, Any] | None = None
    artifact_sha256: str | None = None
    duration_seconds: float = 0.0

    @property
    def skipped(self) -> bool:
        return self.version is None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "skipped": self.skipped}


@dataclass(frozen=True)
class TrainResult:
    ds: str
    models: tuple[ModelTraining, ...]
    duration_seconds: float = 0.0

    @property
    def trained(self) -> dict[str, str]:
        """Model -> new version, for the models that were trained."""
        return {m.model: m.version for m in self.models if m.version}

    @property
    def skipped(self) -> dict[str, str]:
        """Model -> why it was not trained."""
        return {m.model: m.reason or "" for m in self.models if m.skipped}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "duration_seconds": self.duration_seconds,
            "models": {m.model: m.to_dict() for m in self.models},
        }


def select_recipes(recipes: Mapping[str, Recipe], names: Sequence[str] | None) -> list[Recipe]:
    if not names:
        return list(recipes.values())
    unknown = sorted(set(names) - set(recipes))
    if unknown:
        raise RecipeError(f"No recipe for model(s) {', '.join(unknown)}. Recipes: {', '.join(sorted(recipes))}.")
    return [recipes[name] for name in names]


def _skip_reason(recipe: Recipe, labelled: int, train_classes: set, holdout_rows: int, counts: dict) -> str | None:
    if labelled < recipe.min_labelled_rows:
        return (
            f"only {labelled} rows have a verified outcome; the recipe needs at least {recipe.min_labelled_rows} "
            "(min_labelled_rows) to train"
        )
    if len(counts) < 2:
        only = next(iter(counts), "none")
        return f"every labelled row has the same outcome (label {only}); a classifier needs both classes"
    if len(train_classes) < 2:
        return "the training part holds a single class; a classifier needs both classes"
    if holdout_rows == 0:
        return "the holdout is empty, so the new model could not be scored"
    return None


def train_one(
    recipe: Recipe, frame, *, store: ModelStore, ds: str, provenance: dict[str, Any], recipe_file: Path | None = None
) -> ModelTraining:
    """Fit, score and store one recipe's model on ``frame`` (its feature table's rows)."""
    started = time.perf_counter()
    parts = split(frame, recipe)
    counts = parts.class_counts(recipe.label)
    base = {
        "model": recipe.name,
        "rows": parts.rows,
        "labelled_rows": parts.labelled,
        "label_coverage": round(parts.label_coverage, 6),
        "class_counts": counts,
        "train_rows": len(parts.train),
        "holdout_rows": len(parts.holdout),
    }
    train_classes = set(np.unique(parts.train[recipe.label].to_numpy()).tolist())
    reason = _skip_reason(recipe, parts.labelled, train_classes, len(parts.holdout), counts)
    if reason:
        log.warning("%s: not trained: %s.", recipe.name, reason)
        return ModelTraining(
            version=None, reason=reason, duration_seconds=round(time.perf_counter() - started, 3), **base
        )

    estimator = recipe.build_estimator()
    estimator.fit(features_frame(recipe, parts.train), parts.train[recipe.label].to_numpy())
    fit_seconds = time.perf_counter() - started
    holdout = features_frame(recipe, parts.holdout)
    y_true = parts.holdout[recipe.label].to_numpy()
    score = positive_scores(estimator, holdout)
    slices = parts.holdout[recipe.slice_column].to_numpy() if recipe.slice_column else None
    metrics = classification_metrics(y_true, predicted_labels(score), score, slices, recipe.slice_column)
    train_pred = estimator.predict(features_frame(recipe, parts.train))
    metrics["train_accuracy"] = round(float((train_pred == parts.train[recipe.label].to_numpy()).mean()), 6)
    created = frame.get("created_at")
    metadata = {
        **provenance,
        "recipe": {"path": str(recipe_file), "sha256": file_sha256(recipe_file)} if recipe_file else None,
        "feature_table": recipe.feature_table,
        "sql": provenance["sql"].get(recipe.feature_table),
        "features": list(recipe.features),
        "numeric_features": list(recipe.numeric_features),
        "categorical_features": list(recipe.categorical_features),
        "label": recipe.label,
        "slice_column": recipe.slice_column,
        "holdout": {"fraction": recipe.holdout_fraction, "salt": recipe.holdout_salt, "rows": len(parts.holdout)},
        "rows": parts.rows,
        "labelled_rows": parts.labelled,
        "train_rows": len(parts.train),
        "label_coverage": round(parts.label_coverage, 6),
        "class_balance": counts,
        "data_range": None if created is None else [str(created.min()), str(created.max())],
        "thresholds": recipe.thresholds.to_dict(),
        "estimator": repr(estimator),
        "fit_seconds": round(fit_seconds, 3),
    }
    version, digest = store.write(recipe.name, ds, estimator, metrics, metadata)
    log.info(
        "%s: trained %s on %d rows, holdout accuracy %.4f.", recipe.name, version, len(parts.train), metrics["accuracy"]
    )
    return ModelTraining(
        version=version,
        reason=None,
        metrics=metrics,
        artifact_sha256=digest,
        duration_seconds=round(time.perf_counter() - started, 3),
        **base,
    )


def train(
    settings: Settings,
    ctx: RunContext,
    *,
    models: Sequence[str] | None = None,
    project_dir: Path | None = None,
    vars_overrides: Mapping[str, Any] | None = None,
) -> TrainResult:
    """Train every recipe (or ``models``) on ``ctx``'s feature tables (Parquet read with pyarrow: no Spark)."""
    started = time.perf_counter()
    recipes = select_recipes(load_recipes(settings.models_dir), models)
    folder = settings.run_folder(ctx.ds_str)
    if not folder.features.is_dir():
        raise TrainError(
            f"No feature tables for {ctx.ds_str} at {folder.features}. Run `retrain transform --ds {ctx.ds_str}` first."
        )
    project = load_project(project_dir or settings.sql_project_dir, vars_overrides)
    start, end = project.window(ctx)
    provenance = {
        "ds": ctx.ds_str,
        "data_interval": [ctx.data_interval_start.isoformat(), ctx.data_interval_end.isoformat()],
        "window": [start.isoformat(), end.isoformat()],
        "vars": dict(project.vars),
        "sql": sql_lineage(project, ctx, sorted({r.feature_table for r in recipes})),
        "libraries": library_versions(),
        "code_revision": code_revision(settings.root),
    }
    store = ModelStore(settings.model_store)
    outcomes = []
    for recipe in recipes:
        path = folder.feature_table(recipe.feature_table)
        try:
            frame = read_feature_table(path, recipe)
        except TrainError as e:
            log.warning("%s: not trained: %s", recipe.name, e)
            outcomes.append(ModelTraining(recipe.name, None, str(e)))
            continue
        recipe_file = settings.models_dir / f"{recipe.name}.py"
        outcomes.append(
            train_one(recipe, frame, store=store, ds=ctx.ds_str, provenance=provenance, recipe_file=recipe_file)
        )
    result = TrainResult(ctx.ds_str, tuple(outcomes), round(time.perf_counter() - started, 3))
    folder.train_summary.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    return result
