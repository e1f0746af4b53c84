"""train_models: fit one scikit-learn pipeline per recipe on the run's feature tables; store immutable versions.

Only rows with an outcome verified before the run's ``data_interval_end`` are trained on, and only training
patients' records from before the evaluation period (:mod:`jobs.ml.dataset`): held-out patients are never trained
on, in any run. The training window is chosen on the validation period (:mod:`jobs.ml.fitting`), and so is the
operating threshold, stored with the model for the gate and the serving backend. A model with too few labelled rows
or a single class is skipped with the reason and the others go on. Writes ``train.json`` in the run folder: per
model, the new version (or why none) with its counts and its metrics on the evaluation period.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import pandas as pd

from jobs.errors import RecipeError, TrainError
from jobs.ml.dataset import read_feature_table, split
from jobs.ml.fitting import choose_threshold, choose_window, fit, window_label
from jobs.ml.json_inputs import ServingInputs
from jobs.ml.metrics import classification_metrics, positive_scores, predicted_labels
from jobs.ml.provenance import code_revision, file_sha256, library_versions, sql_lineage
from jobs.ml.recipes import Recipe, features_frame, load_recipes
from jobs.ml.skew import check_servable
from jobs.ml.store import ModelStore
from jobs.run_context import RunContext, read_step_output
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
    validation_rows: int = 0
    evaluation_rows: int = 0
    training_window: dict[str, Any] | None = None
    operating_threshold: float | None = None
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


def _skip_reason(recipe: Recipe, training: pd.DataFrame, counts: dict[str, int]) -> str | None:
    if len(training) < recipe.min_labelled_rows:
        return (
            f"only {len(training)} training rows have a verified outcome; the recipe needs at least "
            f"{recipe.min_labelled_rows} (min_labelled_rows) to train"
        )
    if len(counts) < 2:
        only = next(iter(counts), "none")
        return f"every labelled row has the same outcome (label {only}); a classifier needs both classes"
    if training[recipe.label].nunique() < 2:
        return "the training rows hold a single class; a classifier needs both classes"
    return None


def evaluation_metrics(recipe: Recipe, estimator: Any, rows: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """The model's figures on ``rows`` at its operating threshold."""
    y = rows[recipe.label].to_numpy()
    if not len(rows):
        return classification_metrics(y, y)
    scores = positive_scores(estimator, features_frame(recipe, rows))
    slices = rows[recipe.slice_column].to_numpy() if recipe.slice_column else None
    return classification_metrics(y, predicted_labels(scores, threshold), scores, slices, recipe.slice_column)


def train_one(
    recipe: Recipe,
    frame: pd.DataFrame,
    *,
    store: ModelStore,
    ctx: RunContext,
    provenance: dict[str, Any],
    recipe_file: Path | None = None,
    inputs: ServingInputs | None = None,
) -> ModelTraining:
    """Choose the window, fit, choose the threshold, score and store one recipe's model on ``frame``; ``inputs``
    (how serving reads each feature, :func:`jobs.ml.skew.check_servable`) is stored with it."""
    started = time.perf_counter()
    parts = split(frame, recipe, ctx.data_interval_end)
    counts = parts.class_counts(recipe.label)
    choice = choose_window(recipe, parts)
    trained_until = parts.periods.evaluation_start
    training = parts.training_rows(choice.weeks, before=trained_until)
    base = {
        "model": recipe.name,
        "rows": parts.rows,
        "labelled_rows": parts.labelled,
        "label_coverage": round(parts.label_coverage, 6),
        "class_counts": counts,
        "train_rows": len(training),
        "validation_rows": len(parts.validation),
        "evaluation_rows": len(parts.evaluation),
        "training_window": choice.to_dict(),
    }
    reason = _skip_reason(recipe, training, counts)
    if reason:
        log.warning("%s: not trained: %s.", recipe.name, reason)
        return ModelTraining(
            version=None, reason=reason, duration_seconds=round(time.perf_counter() - started, 3), **base
        )

    estimator = fit(recipe, training, trained_until)
    fit_seconds = time.perf_counter() - started
    threshold, chosen_on = choose_threshold(recipe, estimator, parts, training)
    metrics = evaluation_metrics(recipe, estimator, parts.evaluation, threshold)
    metrics["validation"] = evaluation_metrics(recipe, estimator, parts.validation, threshold)
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
        "holdout": {"by": "user_id", "fraction": recipe.holdout_fraction, "salt": recipe.holdout_salt},
        "periods": parts.periods.to_dict(),
        "trained_until": trained_until.isoformat(),
        "training_window": {
            **choice.to_dict(),
            "rows": len(training),
            "from": None if training.empty else training["created_at"].min().isoformat(),
            "recency_half_life_weeks": recipe.recency_half_life_weeks,
        },
        "metric": recipe.metric,
        "target_recall": recipe.target_recall,
        "operating_threshold": threshold,
        "inputs": inputs.to_dict() if inputs else None,
        "threshold_chosen_on": chosen_on,
        "rows": parts.rows,
        "labelled_rows": parts.labelled,
        "train_rows": len(training),
        "label_coverage": round(parts.label_coverage, 6),
        "class_balance": counts,
        "data_range": None
        if training.empty
        else [str(training["created_at"].min()), str(training["created_at"].max())],
        "thresholds": recipe.thresholds.to_dict(),
        "estimator": repr(estimator),
        "fit_seconds": round(fit_seconds, 3),
    }
    version, digest = store.write(recipe.name, ctx.ds_str, estimator, metrics, metadata)
    log.info(
        "%s: trained %s on %d rows (window %s), threshold %.4f, evaluation ROC AUC %s.",
        recipe.name,
        version,
        len(training),
        window_label(choice.weeks),
        threshold,
        metrics.get("roc_auc"),
    )
    return ModelTraining(
        version=version,
        reason=None,
        operating_threshold=threshold,
        metrics=metrics,
        artifact_sha256=digest,
        duration_seconds=round(time.perf_counter() - started, 3),
        **base,
    )


def refuse_failed_data_tests(transform_summary: Path, ds: str) -> None:
    """Stop before training on feature tables that failed their data tests. The DAG never gets here after such a
    transform; a hand-run `retrain train` would, because transform writes its tables before it tests them."""
    summary = read_step_output(transform_summary, "the check of the data tests before training")
    # No summary (a transform older than it, or run elsewhere): nothing says the tables failed.
    tests = (summary.get("data_tests") if isinstance(summary, dict) else None) or []
    failed = [f"{t.get('model')}: {t.get('name')}" for t in tests if isinstance(t, dict) and t.get("status") == "error"]
    if failed:
        raise TrainError(
            f"The transform of {ds} failed {len(failed)} data test(s) ({'; '.join(failed[:5])}"
            f"{', ...' if len(failed) > 5 else ''}; {transform_summary}), so its feature tables are not trained on. "
            f"Fix the data or the SQL, then run `retrain transform --ds {ds}` again."
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
    refuse_failed_data_tests(folder.transform_summary, ctx.ds_str)
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
        inputs = check_servable(recipe, path, folder.snapshot("predictions"))  # RecipeError: a feature serving lacks
        outcomes.append(
            train_one(
                recipe, frame, store=store, ctx=ctx, provenance=provenance, recipe_file=recipe_file, inputs=inputs
            )
        )
    result = TrainResult(ctx.ds_str, tuple(outcomes), round(time.perf_counter() - started, 3))
    folder.train_summary.write_text(json.dumps(result.to_dict(), indent=2, default=str) + "\n", encoding="utf-8")
    return result
