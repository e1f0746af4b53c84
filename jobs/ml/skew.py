"""No skew between training and serving: a recipe's features must be what the backend computes from a request.

The model is trained on a feature table the SQL built from the logged JSON; in production it gets what the backend
computes from the request's JSON (:mod:`jobs.ml.json_inputs`). :func:`check_servable` decides, per feature, how
serving reads it (from the feature table's column type: DOUBLE as a number, INT as a flag, STRING as a category of
the values the table holds), then takes the run's newest records and computes every feature from their raw JSON
(the ``predictions`` snapshot of ``extract``) as serving would. Any difference with the feature table refuses the
recipe, naming the feature, a record, both values and how to fix it. That catches a column derived in SQL
(``age_band``: no request carries it) as well as a definition that drifted on one side (a new spelling mapped in
SQL only).

Only a sample is compared: the newest records are the ones most like today's requests, and they sit in the last
row groups of both snapshots, so the check reads a few of them.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ModelInputError, RecipeError
from jobs.ml.json_inputs import (
    CATEGORY,
    FLAG,
    NUMBER,
    SQL_DEFINITIONS,
    UNKNOWN_CATEGORY,
    FeatureInput,
    ServingInputs,
)
from jobs.ml.recipes import Recipe

if TYPE_CHECKING:
    import pyarrow as pa

log = logging.getLogger(__name__)

#: records compared per run: enough to meet the usual dirty spellings, few enough to read in a moment
SAMPLE_ROWS = 5_000
#: the raw snapshot's columns: the record's id (the feature tables' record_id) and the JSON the backend received
RAW_ID, RAW_DATA = "id", "data"
_REFUSED = object()  # serving refuses the value (ModelInputError): the request is answered 422, not scored


def input_kind(arrow_type: pa.DataType) -> str | None:
    """How serving reads a feature whose column has ``arrow_type``; None when it cannot come from a JSON key."""
    import pyarrow.types as t

    if t.is_floating(arrow_type) or t.is_decimal(arrow_type):
        return NUMBER
    if t.is_integer(arrow_type) or t.is_boolean(arrow_type):
        return FLAG
    if t.is_string(arrow_type) or t.is_large_string(arrow_type):
        return CATEGORY
    return None


@dataclass
class _Mismatch:
    """The records of one feature where serving and the table disagree; the first kept as the example."""

    count: int = 0
    record_id: Any = None
    sent: Any = None
    table: Any = None
    serving: Any = None


def check_servable(
    recipe: Recipe, feature_table: Path, raw_snapshot: Path, *, sample_rows: int = SAMPLE_ROWS
) -> ServingInputs:
    """How serving reads each of ``recipe``'s features (keep it in the version's metadata as ``inputs``), checked
    against the run's raw JSON; raises :class:`RecipeError` naming each feature serving cannot compute.

    ``feature_table``: the run's ``features/<recipe.feature_table>/``; ``raw_snapshot``: its ``raw/predictions/``
    (``id``, ``data``). Without a raw snapshot (a transform straight from the database) the kinds are still checked
    and the values are not, with a warning.
    """
    import pyarrow.dataset as ds

    table = ds.dataset(feature_table, format="parquet", partitioning="hive")
    names = table.schema.names
    missing = [f for f in recipe.features if f not in names]
    if missing:
        raise RecipeError(
            f"Recipe {recipe.name!r} uses feature(s) {', '.join(missing)} that the feature table "
            f"{recipe.feature_table!r} ({feature_table}) does not have. Its columns: {', '.join(names)}."
        )
    reasons: dict[str, str] = {}
    features: dict[str, FeatureInput] = {}
    for name in recipe.features:
        arrow_type = table.schema.field(name).type
        kind = input_kind(arrow_type)
        if kind is None:
            reasons[name] = (
                f"its column is {arrow_type}, which no JSON key of a request becomes; serving reads numbers "
                "(DOUBLE), flags (INT) and categories (STRING)"
            )
        elif kind == CATEGORY:
            values = [v for v in table.to_table(columns=[name]).column(name).unique().to_pylist()]
            if None in values:
                reasons[name] = (
                    "the feature table holds NULL for it, so its values are not mapped to known ones; serving maps "
                    f"any value it does not know to '{UNKNOWN_CATEGORY}'. Write it as category('{name}', [...]) in "
                    f"the SQL of {recipe.feature_table}"
                )
            else:
                features[name] = FeatureInput(CATEGORY, tuple(sorted(v for v in values if v != UNKNOWN_CATEGORY)))
        else:
            features[name] = FeatureInput(kind)
    inputs = ServingInputs({name: features[name] for name in recipe.features if name in features})

    rows, sampled = _sample(table, recipe.features, sample_rows), 0
    raw = _raw_json(raw_snapshot, [row["record_id"] for row in rows]) if rows else {}
    if rows and not raw:
        log.warning(
            "%s: no raw JSON for its newest records at %s, so the features serving computes were not compared with "
            "the feature table. Run `retrain extract` for this date before training.",
            recipe.name,
            raw_snapshot,
        )
    mismatches: dict[str, _Mismatch] = {name: _Mismatch() for name in features}
    keys_seen: set[str] = set()
    for row in rows:
        payload = raw.get(row["record_id"])
        if payload is None:
            continue  # not in the snapshot, or not a JSON object to Python's parser: serving would refuse it whole
        sampled += 1
        keys_seen.update(payload)
        for name, feature in features.items():
            try:
                served = feature.read(recipe.name, name, payload.get(name))
            except ModelInputError:
                served = _REFUSED
            if not _same(row[name], served):
                found = mismatches[name]
                if not found.count:
                    found.record_id, found.sent, found.table, found.serving = (
                        row["record_id"],
                        payload.get(name),
                        row[name],
                        served,
                    )
                found.count += 1
    for name, found in mismatches.items():
        if found.count:
            reasons[name] = _mismatch_reason(recipe, name, features[name], found, sampled, name in keys_seen)
    if reasons:
        listed = "\n".join(f"- {name!r}: {reasons[name]}." for name in recipe.features if name in reasons)
        raise RecipeError(
            f"Recipe {recipe.name!r} uses feature(s) the serving backend cannot compute from a request's JSON as the "
            f"SQL computed them for training, so the model would see other values in production:\n{listed}\n"
            f"Features must be JSON keys the backend receives, read as stg_predictions reads them (numbers with "
            f"to_double, flags with to_flag, categories with category(...)); compared: {sampled} of the newest "
            f"records of {feature_table} with their JSON in {raw_snapshot}."
        )
    if sampled:
        log.info(
            "%s: serving computes its %d features as the SQL did on %d records.", recipe.name, len(features), sampled
        )
    return inputs


def _sample(table: Any, features: Sequence[str], sample_rows: int) -> list[dict[str, Any]]:
    """The ``sample_rows`` rows of the newest records (highest ``record_id``), as Python values."""
    import numpy as np
    import pyarrow.dataset as ds

    ids = table.to_table(columns=["record_id"]).column("record_id").to_numpy(zero_copy_only=False)
    if not len(ids):
        return []
    cut = np.partition(ids, len(ids) - sample_rows)[len(ids) - sample_rows] if len(ids) > sample_rows else ids.min()
    picked = table.to_table(columns=["record_id", *features], filter=ds.field("record_id") >= int(cut))
    return picked.to_pylist()


def _raw_json(raw_snapshot: Path, record_ids: Sequence[int]) -> Mapping[int, dict[str, Any]]:
    """Each record's JSON object, parsed as the backend parses a request; records it would refuse are left out."""
    import pyarrow.dataset as ds

    if not raw_snapshot.is_dir():
        return {}
    raw = ds.dataset(raw_snapshot, format="parquet")
    if RAW_ID not in raw.schema.names or RAW_DATA not in raw.schema.names:
        return {}
    wanted = set(record_ids)
    inside = (ds.field(RAW_ID) >= min(wanted)) & (ds.field(RAW_ID) <= max(wanted))
    parsed = {}
    for record in raw.to_table(columns=[RAW_ID, RAW_DATA], filter=inside).to_pylist():
        if record[RAW_ID] not in wanted or record[RAW_DATA] is None:
            continue
        try:
            payload = json.loads(record[RAW_DATA])
        except ValueError:
            continue
        if isinstance(payload, dict):
            parsed[record[RAW_ID]] = payload
    return parsed


def _missing(value: Any) -> bool:
    return value is None or (isinstance(value, float) and math.isnan(value))


def _same(table: Any, served: Any) -> bool:
    """The table's value and serving's agree: equal, or both missing, or serving refuses what SQL reads as NULL."""
    if _missing(table):
        return served is _REFUSED or _missing(served)
    if served is _REFUSED or _missing(served):
        return False
    if isinstance(table, str) or isinstance(served, str):
        return table == served
    return float(table) == float(served)


def _shown(value: Any) -> str:
    if value is _REFUSED:
        return "refused (the request is answered 422)"
    text = json.dumps(value) if not isinstance(value, float) else repr(value)
    return text if len(text) <= 40 else f"{text[:40]}..."


def _mismatch_reason(
    recipe: Recipe, name: str, feature: FeatureInput, found: _Mismatch, sampled: int, sent: bool
) -> str:
    example = (
        f"record {found.record_id} has {_shown(found.table)} in {recipe.feature_table}, serving computes "
        f"{_shown(found.serving)} from its JSON value {_shown(found.sent) if found.sent is not None else '(no key)'}"
    )
    if not sent:
        return (
            f"no request carries a key {name!r}: the SQL derives it ({example}). Use the raw inputs it is made "
            "from as features, or have the backend send it"
        )
    return (
        f"{found.count} of {sampled} records differ, e.g. {example}. Serving reads it with the twin of "
        f"{SQL_DEFINITIONS[feature.kind]} (jobs/ml/json_inputs.py): make the SQL read the key that way, or change "
        "both together"
    )
