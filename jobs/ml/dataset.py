"""A recipe's rows from the run's feature table, and their split into training and holdout parts.

The feature tables are Parquet written by Spark (partitioned by ``created_month``). They are read with pyarrow,
only the recipe's columns, straight into pandas: at 1M rows this is several times faster than a Spark read and
``toPandas()`` and needs no JVM (``bench/train_scale.py`` measures both), and training runs on one machine anyway.
Rows are sorted by ``record_id`` so that the same table always gives the same arrays, whatever the file order.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from jobs.errors import RecipeError, TrainError
from jobs.ml.holdout import holdout_mask
from jobs.ml.recipes import Recipe


def read_feature_table(path: Path, recipe: Recipe) -> pd.DataFrame:
    import pyarrow.dataset as ds

    if not path.is_dir():
        raise TrainError(
            f"There is no feature table {recipe.feature_table!r} at {path} for model {recipe.name!r}. "
            "Run `retrain transform --ds <ds>` for this date first."
        )
    dataset = ds.dataset(path, format="parquet", partitioning="hive")
    missing = [c for c in recipe.columns if c not in dataset.schema.names]
    if missing:
        raise RecipeError(
            f"Recipe {recipe.name!r} reads column(s) {', '.join(missing)} that the feature table "
            f"{recipe.feature_table!r} ({path}) does not have. Its columns: {', '.join(dataset.schema.names)}."
        )
    columns = list(recipe.columns) + [
        c for c in ("created_at",) if c in dataset.schema.names and c not in recipe.columns
    ]
    frame = dataset.to_table(columns=columns).to_pandas()
    return frame.sort_values("record_id", kind="stable").reset_index(drop=True)


@dataclass(frozen=True)
class Split:
    """The labelled rows of one run, split by hashed record id; unlabelled rows only count for coverage."""

    rows: int
    train: pd.DataFrame
    holdout: pd.DataFrame

    @property
    def labelled(self) -> int:
        return len(self.train) + len(self.holdout)

    @property
    def label_coverage(self) -> float:
        return self.labelled / self.rows if self.rows else 0.0

    def class_counts(self, label: str) -> dict[str, int]:
        values = pd.concat([self.train[label], self.holdout[label]])
        return {str(k): int(v) for k, v in values.value_counts().sort_index().items()}


def split(frame: pd.DataFrame, recipe: Recipe) -> Split:
    """Keep rows with a verified outcome (label 1/0), then hold out those whose hashed id falls in the holdout."""
    labelled = frame[frame[recipe.label].notna()].copy()
    labelled[recipe.label] = labelled[recipe.label].astype(np.int64)
    mask = holdout_mask(labelled["record_id"].tolist(), recipe.holdout_fraction, recipe.holdout_salt)
    return Split(
        rows=len(frame),
        train=labelled[~mask].reset_index(drop=True),
        holdout=labelled[mask].reset_index(drop=True),
    )
