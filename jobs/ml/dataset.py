"""A recipe's rows from the run's feature table, and their split by patient and by time.

The feature tables are Parquet written by Spark (partitioned by ``created_month``). They are read with pyarrow,
only the columns needed, straight into pandas: no JVM, and training runs on one machine anyway. Rows are sorted by
``record_id`` so that the same table always gives the same arrays, whatever the file order.

The split follows how a model is used: it is trained on the past and judged on the newest weeks, on patients it
has never seen.

- **Patients**: a stable hash of ``user_id`` puts each patient on one side for good (:mod:`jobs.ml.holdout`):
  held-out patients' records are never trained on, in any run.
- **Time**, from the run's ``data_interval_end`` back: the *evaluation* period (the recipe's
  ``evaluation_weeks``), where the gate scores champion and challenger; before it the *validation* period
  (``validation_weeks``), where the training window and the operating threshold are chosen; training uses only
  records created before the evaluation period.
- **Labels as of the run**: an outcome verified at or after ``data_interval_end`` was not known then, so it counts
  as missing; re-running an old ``ds`` trains and scores on the same rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.errors import RecipeError, TrainError
from jobs.ml.holdout import holdout_mask
from jobs.ml.recipes import Recipe
from jobs.run_context import ds_of

#: every feature table's columns that the split needs besides the recipe's own
REQUIRED_COLUMNS = ("record_id", "user_id", "created_at")
#: read when present: a feature table written before outcomes were dated has no ``verified_at``
OPTIONAL_COLUMNS = ("verified_at",)


def read_feature_table(path: Path, recipe: Recipe) -> pd.DataFrame:
    import pyarrow.dataset as ds

    if not path.is_dir():
        raise TrainError(
            f"There is no feature table {recipe.feature_table!r} at {path} for model {recipe.name!r}. "
            f"Run `retrain transform --ds {ds_of(path)}` first."
        )
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    names = dataset.schema.names
    missing = [c for c in dict.fromkeys((*REQUIRED_COLUMNS, *recipe.columns)) if c not in names]
    if missing:
        raise RecipeError(
            f"Recipe {recipe.name!r} reads column(s) {', '.join(missing)} that the feature table "
            f"{recipe.feature_table!r} ({path}) does not have. Its columns: {', '.join(names)}. "
            "Every feature table needs record_id, user_id (to keep each patient on one side of the holdout) and "
            "created_at (to train on the past and judge on the newest weeks)."
        )
    columns = list(dict.fromkeys((*REQUIRED_COLUMNS, *recipe.columns, *(c for c in OPTIONAL_COLUMNS if c in names))))
    frame = dataset.to_table(columns=columns).to_pandas()
    frame["created_at"] = _utc(frame["created_at"])
    if "verified_at" in frame:
        frame["verified_at"] = _utc(frame["verified_at"])
    return frame.sort_values("record_id", kind="stable").reset_index(drop=True)


def _utc(column: pd.Series) -> pd.Series:
    """Timestamps as UTC-aware values (Spark writes them as UTC instants; pyarrow may read them naive)."""
    values = pd.to_datetime(column)
    return values.dt.tz_localize("UTC") if values.dt.tz is None else values.dt.tz_convert("UTC")


@dataclass(frozen=True)
class Periods:
    """The run's time boundaries: validation ``[validation_start, evaluation_start)``, evaluation
    ``[evaluation_start, end)``, with ``end`` the run's ``data_interval_end``."""

    validation_start: datetime
    evaluation_start: datetime
    end: datetime

    @classmethod
    def of(cls, recipe: Recipe, end: datetime) -> Periods:
        evaluation_start = end - timedelta(weeks=recipe.evaluation_weeks)
        return cls(evaluation_start - timedelta(weeks=recipe.validation_weeks), evaluation_start, end)

    def to_dict(self) -> dict[str, str]:
        return {
            "validation": [self.validation_start.isoformat(), self.evaluation_start.isoformat()],
            "evaluation": [self.evaluation_start.isoformat(), self.end.isoformat()],
        }


@dataclass(frozen=True)
class Split:
    """One run's rows: labelled training-patient rows before the evaluation period (``train_pool``, from which each
    candidate window takes its part), and held-out patients' labelled rows of the validation and evaluation
    periods. Unlabelled rows only count for coverage."""

    rows: int
    labelled: int
    train_pool: pd.DataFrame
    validation: pd.DataFrame
    evaluation: pd.DataFrame
    periods: Periods

    @property
    def label_coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0

    def class_counts(self, label: str) -> dict[str, int]:
        values = pd.concat([self.train_pool[label], self.validation[label], self.evaluation[label]])
        return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}

    def training_rows(self, weeks: int | None, before: datetime) -> pd.DataFrame:
        """The training pool's rows created in the ``weeks`` before ``before`` (all before it, for None)."""
        created = self.train_pool["created_at"]
        keep = created < before
        if weeks is not None:
            keep &= created >= before - timedelta(weeks=weeks)
        return self.train_pool[keep].reset_index(drop=True)


def labels_as_of(frame: pd.DataFrame, recipe: Recipe, end: datetime) -> pd.Series:
    """The label where its outcome was verified before ``end``; missing when verified later. An outcome without a
    ``verified_at`` (a database that does not record it) counts as known, as the SQL models count it."""
    label = frame[recipe.label]
    if "verified_at" not in frame:
        return label
    known = frame["verified_at"].isna() | (frame["verified_at"] < pd.Timestamp(end))
    return label.where(known)


def in_holdout(frame: pd.DataFrame, fraction: float, salt: str) -> np.ndarray:
    """True for the rows of held-out patients."""
    return holdout_mask(frame["user_id"].astype("int64").tolist(), fraction, salt)


def split(frame: pd.DataFrame, recipe: Recipe, end: datetime) -> Split:
    """Split ``frame`` for a run whose data interval ends at ``end`` (see the module's docstring)."""
    periods = Periods.of(recipe, end)
    frame = frame.assign(**{recipe.label: labels_as_of(frame, recipe, end)})
    labelled = frame[frame[recipe.label].notna() & frame["user_id"].notna() & (frame["created_at"] < end)].copy()
    labelled[recipe.label] = labelled[recipe.label].astype(np.int64)
    held_out = in_holdout(labelled, recipe.holdout_fraction, recipe.holdout_salt)
    created = labelled["created_at"]
    evaluating = created >= pd.Timestamp(periods.evaluation_start)
    validating = ~evaluating & (created >= pd.Timestamp(periods.validation_start))
    return Split(
        rows=len(frame),
        labelled=len(labelled),
        train_pool=labelled[~held_out & ~evaluating].reset_index(drop=True),
        validation=labelled[held_out & validating].reset_index(drop=True),
        evaluation=labelled[held_out & evaluating].reset_index(drop=True),
        periods=periods,
    )
