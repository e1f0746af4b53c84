"""Hand-built feature tables, shaped like the SQL models' output, for training tests that need no Spark."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from jobs.demo.clinical import MODELS, sigmoid


def feature_table(
    path: Path,
    model: str,
    rows: int,
    *,
    seed: int = 0,
    t: float = 0.0,
    first_id: int = 1,
    labelled: float = 0.8,
    label: int | None = None,
    start: datetime = datetime(2026, 8, 30, tzinfo=UTC),
    days: int = 84,
    records_per_user: int = 8,
) -> pd.DataFrame:
    """Write ``rows`` records of ``model`` (outcome drawn from the demo's clinical model at time ``t``) as Parquet
    partitioned by ``created_month``; ``label`` forces every verified label to that class.

    The records are spread over the ``days`` from ``start`` (by default the twelve weeks before the Sunday
    2026-11-22), about ``records_per_user`` per patient; a verified outcome arrives one to three days after its
    record (``verified_at``)."""
    rng = np.random.default_rng(seed)
    age = rng.integers(18, 92, rows)
    male = rng.random(rows) < 0.5
    clinical = MODELS[model]
    values = clinical.sample(rng, age, male)
    outcome = (rng.random(rows) < sigmoid(clinical.logit(values, t))).astype(float)
    if label is not None:
        outcome[:] = label
    outcome[rng.random(rows) >= labelled] = np.nan
    created = [start + timedelta(minutes=int(m)) for m in np.sort(rng.integers(0, days * 24 * 60, rows))]
    users = max(1, rows // records_per_user)
    frame = pd.DataFrame(
        {
            "record_id": np.arange(first_id, first_id + rows, dtype=np.int64),
            "user_id": rng.integers(first_id, first_id + users, rows).astype(np.int64),
            "created_at": created,
            "verified_at": [
                None if np.isnan(o) else c + timedelta(hours=int(h))
                for o, c, h in zip(outcome, created, rng.integers(24, 72, rows), strict=True)
            ],
            "model_version": "v1",
            "prediction": np.where(rng.random(rows) < 0.5, "High Risk", "Low Risk"),
        }
    )
    for feature in clinical.features:
        column = values[feature.key]
        frame[feature.key] = column.astype(object) if feature.kind == "category" else column.astype(float)
    frame["age_band"] = pd.cut(
        age, [0, 30, 45, 60, 75, 200], right=False, labels=["under_30", "30-44", "45-59", "60-74", "75+"]
    ).astype(str)
    frame["label"] = pd.array(outcome, dtype="Int32")
    frame["created_month"] = frame["created_at"].map(lambda d: d.strftime("%Y-%m"))
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), path, partition_cols=["created_month"])
    return frame
