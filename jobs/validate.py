"""validate_models: score production (champion) and the new version (challenger) on the same rows; decide.

Both models score the *same* evaluation rows: this run's held-out patients' records of the newest weeks, with
outcomes verified before the run's end (:mod:`jobs.ml.dataset`). The challenger never saw them. Neither did a
champion trained with the same holdout settings in an earlier run; when the champion was trained with other
settings, or on records of this evaluation period, only the rows it cannot have seen are kept, and the reasons say
so (too few left is ``inconclusive``). The pure gate :func:`decide` turns the paired scores into ``deploy``,
``reject`` or ``inconclusive`` with its reasons; a model that was not trained this run is ``skipped``. Writes
``decision.json`` with both models' metrics, the comparison, the thresholds, the verdict and its reasons, and how
production has aged (``drift``: its metric then and now, its features' PSI since its training rows,
:mod:`jobs.ml.production_drift`); drifted features add notes to the reasons but never change the verdict. A forced
deployment exists only through ``force`` and is recorded as such.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from jobs.errors import ModelStoreError, RetrainError, ValidateError
from jobs.ml.dataset import in_holdout, read_feature_table, split
from jobs.ml.gate import DEPLOY, Decision, decide
from jobs.ml.metrics import classification_metrics, positive_scores, predicted_labels, threshold_of
from jobs.ml.production_drift import production_drift
from jobs.ml.recipes import Recipe, as_trained, features_frame, load_recipes
from jobs.ml.store import ModelStore
from jobs.ml.thresholds import GateThresholds
from jobs.run_context import RunContext
from jobs.settings import Settings

__all__ = ["Decision", "GateThresholds", "ModelVerdict", "ValidateResult", "decide", "validate"]

log = logging.getLogger(__name__)
SKIPPED = "skipped"


@dataclass(frozen=True)
class ModelVerdict:
    model: str
    verdict: str
    reasons: tuple[str, ...]
    challenger_version: str | None = None
    champion_version: str | None = None
    forced: bool = False
    record: dict[str, Any] | None = None  # the full decision.json entry

    def to_dict(self) -> dict[str, Any]:
        return self.record or {"verdict": self.verdict, "reasons": list(self.reasons), "forced": self.forced}


@dataclass(frozen=True)
class ValidateResult:
    ds: str
    models: tuple[ModelVerdict, ...]
    duration_seconds: float = 0.0

    @property
    def approved(self) -> dict[str, str]:
        """Model -> version to deploy (verdict "deploy", forced or not)."""
        return {m.model: m.challenger_version for m in self.models if m.verdict == DEPLOY and m.challenger_version}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "duration_seconds": self.duration_seconds,
            "models": {m.model: m.to_dict() for m in self.models},
        }


def scores(estimator: Any, recipe: Recipe, frame: pd.DataFrame) -> np.ndarray:
    return positive_scores(estimator, features_frame(recipe, frame))


def rows_the_champion_never_saw(
    evaluation: pd.DataFrame, recipe: Recipe, champion: Mapping[str, Any]
) -> tuple[pd.DataFrame, list[str]]:
    """The evaluation rows the champion cannot have trained on, and what was left out and why.

    Same holdout settings and trained before this evaluation period: every row. Other holdout settings: only the
    patients held out under both. Trained on records of this evaluation period (or, for a version with a
    record-level holdout, on any record up to its last): only the rows created after its last training record.
    """
    rows, notes = evaluation, []
    holdout = champion.get("holdout") or {}
    ours = {"by": "user_id", "fraction": recipe.holdout_fraction, "salt": recipe.holdout_salt}
    if holdout.get("by") == "user_id" and (holdout.get("fraction"), holdout.get("salt")) != (
        ours["fraction"],
        ours["salt"],
    ):
        rows = rows[in_holdout(rows, holdout["fraction"], holdout["salt"])]
        notes.append(
            f"Production was trained with other holdout settings (fraction {holdout.get('fraction')}, salt "
            f"{holdout.get('salt')!r}; this run: {ours['fraction']}, {ours['salt']!r}), so only the {len(rows)} of "
            f"{len(evaluation)} evaluation rows whose patients are held out under both are compared."
        )
    elif holdout.get("by") != "user_id":
        notes.append(
            "Production was trained with a record-level holdout, so its training may include these patients' "
            "earlier records; only records created after its last training record are compared."
        )
    # trained_until bounds the training records from above; a legacy version records its last training record
    until = champion.get("trained_until") or (champion.get("data_range") or [None, None])[1]
    if until is not None:
        last_seen = pd.Timestamp(until)
        last_seen = last_seen.tz_localize("UTC") if last_seen.tzinfo is None else last_seen.tz_convert("UTC")
        created = rows["created_at"]
        unseen = created >= last_seen if "trained_until" in champion else created > last_seen
        if not unseen.all():
            notes.append(
                f"Production was trained on records up to {last_seen.isoformat()}, inside this evaluation period: "
                f"only the {int(unseen.sum())} of {len(rows)} rows created after that are compared."
            )
            rows = rows[unseen]
    return rows.reset_index(drop=True), notes


def _drift(
    frame: pd.DataFrame,
    recipe: Recipe,
    metadata: Mapping[str, Any],
    metrics_now: Mapping[str, Any],
    store: ModelStore,
    version: str,
    ctx: RunContext,
) -> tuple[dict[str, Any], list[str]]:
    """Production's drift record and notes; a failure to measure it is recorded, never fails the gate (drift only
    informs)."""
    try:
        return production_drift(
            frame,
            recipe,
            metadata,
            store.metrics(recipe.name, version),
            metrics_now,
            version=version,
            end=ctx.data_interval_end,
            threshold=recipe.thresholds.drift_psi,
        )
    except (OSError, ValueError, KeyError, TypeError) as e:
        log.warning("%s: drift of production %s not measured: %s: %s", recipe.name, version, type(e).__name__, e)
        return {"production_version": version, "error": f"not measured: {type(e).__name__}: {e}"}, []


def _skipped(model: str, reason: str, version: str | None = None) -> ModelVerdict:
    record = {
        "verdict": SKIPPED,
        "reasons": [reason],
        "forced": False,
        "challenger_version": version,
        "champion_version": None,
        "challenger": {"version": version} if version else None,
        "champion": None,
    }
    return ModelVerdict(model, SKIPPED, (reason,), challenger_version=version, record=record)


def validate_one(
    settings: Settings,
    ctx: RunContext,
    recipe: Recipe,
    version: str,
    *,
    store: ModelStore,
    force: bool,
    force_reason: str = "",
) -> ModelVerdict:
    challenger_meta = store.metadata(recipe.name, version)
    pointer = store.production(recipe.name)
    champion_meta = store.metadata(recipe.name, pointer.version) if pointer else None
    challenger_recipe = as_trained(recipe, challenger_meta)
    champion_recipe = as_trained(recipe, champion_meta) if champion_meta else None
    both = [challenger_recipe] + ([champion_recipe] if champion_recipe else [])
    reading = dataclasses.replace(  # read every column either model needs
        recipe,
        numeric_features=tuple(dict.fromkeys(f for r in both for f in r.numeric_features)),
        categorical_features=tuple(dict.fromkeys(f for r in both for f in r.categorical_features)),
    )
    table = settings.run_folder(ctx.ds_str).feature_table(recipe.feature_table)
    frame = read_feature_table(table, reading)
    evaluation = split(frame, recipe, ctx.data_interval_end).evaluation
    notes: list[str] = []
    if champion_meta is not None:
        evaluation, notes = rows_the_champion_never_saw(evaluation, recipe, champion_meta)
    y = evaluation[recipe.label].to_numpy()
    slices = evaluation[recipe.slice_column].to_numpy() if recipe.slice_column else None

    new_threshold = threshold_of(challenger_meta)
    new_score = scores(store.load(recipe.name, version), challenger_recipe, evaluation)
    old_score = old_metrics = old_threshold = drift = None
    if pointer and champion_recipe and champion_meta is not None:
        old_threshold = threshold_of(champion_meta)
        old_score = scores(store.load(recipe.name, pointer.version), champion_recipe, evaluation)
        old_pred = predicted_labels(old_score, old_threshold)
        old_metrics = classification_metrics(y, old_pred, old_score, slices, recipe.slice_column)
        drift, drift_notes = _drift(frame, champion_recipe, champion_meta, old_metrics, store, pointer.version, ctx)
        notes += drift_notes
    decision = decide(
        y,
        old_score,
        new_score,
        challenger_threshold=new_threshold,
        champion_threshold=old_threshold,
        metric=recipe.metric,
        target_recall=recipe.target_recall,
        thresholds=recipe.thresholds,
        notes=notes,
        force=force,
        force_reason=force_reason,
    )
    new_metrics = classification_metrics(
        y, predicted_labels(new_score, new_threshold), new_score, slices, recipe.slice_column
    )
    record = {
        **decision.to_dict(),
        "evaluation_period": challenger_meta.get("periods", {}).get("evaluation"),
        "challenger_version": version,
        "champion_version": pointer.version if pointer else None,
        "challenger": {
            "version": version,
            "artifact_sha256": challenger_meta["artifact_sha256"],
            "operating_threshold": new_threshold,
            "training_window": challenger_meta.get("training_window"),
            "metrics": new_metrics,
        },
        "champion": None
        if pointer is None
        else {
            "version": pointer.version,
            "artifact_sha256": pointer.artifact_sha256,
            "operating_threshold": old_threshold,
            "training_window": champion_meta.get("training_window") if champion_meta else None,
            "metrics": old_metrics,
        },
        "drift": drift,
    }
    log.info("%s: %s (%s).", recipe.name, decision.verdict, "; ".join(decision.codes))
    return ModelVerdict(
        recipe.name,
        decision.verdict,
        decision.reasons,
        version,
        pointer.version if pointer else None,
        decision.forced,
        record,
    )


def validate(
    settings: Settings,
    ctx: RunContext,
    *,
    force: bool | Sequence[str] = False,
    force_reason: str | None = None,
) -> ValidateResult:
    """Decide, per model trained in ``ctx``'s run, whether its new version replaces production.

    ``force``: True for every trained model, or the names of the models whose deployment is forced whatever the
    gate says (recorded in decision.json, with ``force_reason``). Spark is not needed.
    """
    started = time.perf_counter()
    if force and not (force_reason or "").strip():
        raise ValidateError(
            "A forced deployment needs a reason, recorded in decision.json beside the gate's own verdict: add "
            '--force-reason "..." (as `retrain models promote` needs --reason).'
        )
    folder = settings.run_folder(ctx.ds_str)
    if not folder.train_summary.exists():
        raise ValidateError(
            f"No training summary for {ctx.ds_str} at {folder.train_summary}. Run `retrain train --ds {ctx.ds_str}` "
            "first."
        )
    trained = json.loads(folder.train_summary.read_text(encoding="utf-8"))["models"]
    forced = set(trained) if force is True else set(force or ())
    unknown = sorted(forced - set(trained))
    if unknown:
        raise ValidateError(
            f"Cannot force model(s) {', '.join(unknown)}: not trained in the run of {ctx.ds_str}. "
            f"Trained: {', '.join(sorted(trained)) or 'none'}."
        )
    recipes = load_recipes(settings.models_dir)
    store = ModelStore(settings.model_store)
    verdicts = []
    for model in sorted(trained):
        entry = trained[model]
        if not entry.get("version"):
            reason = f"Not trained this run: {entry.get('reason')}."
            if model in forced:
                reason += " A forced deployment needs a trained version; nothing was forced."
            verdicts.append(_skipped(model, reason))
            continue
        if model not in recipes:
            verdicts.append(_skipped(model, f"The recipe models/{model}.py no longer exists.", entry["version"]))
            continue
        try:
            verdict = validate_one(
                settings,
                ctx,
                recipes[model],
                entry["version"],
                store=store,
                force=model in forced,
                force_reason=force_reason or "",
            )
        except ValidateError:
            raise
        except (ModelStoreError, RetrainError) as e:
            log.error("%s: could not be validated: %s", model, e)
            verdict = _skipped(model, f"Could not be validated: {e}", entry["version"])
        if verdict.forced and verdict.record is not None:
            verdict.record["force_reason"] = force_reason
        verdicts.append(verdict)
    result = ValidateResult(ctx.ds_str, tuple(verdicts), round(time.perf_counter() - started, 3))
    payload = {"ds": ctx.ds_str, "forced": sorted(forced), **result.to_dict()}
    folder.decision.write_text(json.dumps(payload, indent=2, default=str) + "\n", encoding="utf-8")
    return result
