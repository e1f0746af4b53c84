"""No skew between training and serving: the same JSON gives the same feature values in the SQL's feature tables
(real Spark, the project's own models) and in the serving backend, and a recipe asking for a feature serving cannot
compute is refused, naming the feature and the reason."""

from __future__ import annotations

import dataclasses
import json
import logging
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from jobs.errors import ModelInputError, RecipeError
from jobs.ml.json_inputs import CATEGORY, FLAG, NUMBER, FeatureInput
from jobs.ml.recipes import Recipe, load_recipes, tabular_pipeline
from jobs.ml.skew import check_servable
from jobs.run_context import RunContext
from jobs.sqlproject.config import load_sources
from tests.conftest import REPO_ROOT

CTX = RunContext.for_ds("2026-11-22")
MISSING = object()
BASE = {
    "diabetes": {
        "age": 51,
        "bmi": 31.2,
        "glucose": 140,
        "blood_pressure": 85,
        "insulin": 120.5,
        "pregnancies": 2,
        "family_history": True,
        "physical_activity": "low",
    },
    "heart": {
        "age": 63,
        "sex": "male",
        "chest_pain_type": "typical",
        "resting_bp": 150,
        "cholesterol": 230,
        "max_heart_rate": 140,
        "exercise_angina": False,
        "smoker": True,
    },
    "liver": {
        "age": 45,
        "sex": "female",
        "total_bilirubin": 0.9,
        "alkaline_phosphatase": 80,
        "alt": 30,
        "ast": 45,
        "albumin": 4.1,
        "alcohol_use": "none",
    },
}
FLAGS = {"family_history", "exercise_angina", "smoker"}
CATEGORIES = {"sex", "chest_pain_type", "physical_activity", "alcohol_use"}
# Clients' spellings: numbers sent as strings, case and space variants, unknown categories, missing keys and nulls,
# and values the SQL reads as NULL (which serving refuses instead of scoring).
VARIANTS = {
    NUMBER: [51, 51.5, "63", " 72 ", "1e1", "+5", ".5", "5.", "1.5D", "\t42\n", "", None, MISSING]
    + ["n/a", "1_000", True, "NaN", "Infinity", "1e400", [1]],
    FLAG: [True, False, "yes", "NO", " true ", 1, 0, "1", "0", None, "", MISSING, "maybe", 2, 1.0, "\ttrue"],
    CATEGORY: [" MALE ", "Female ", "Non-Anginal", "non anginal", "ASYMPTOMATIC", "HIGH", "Moderate ", "heavy"]
    + ["other", "n/a", "", None, MISSING, 1, True, "\tmale"],
}


def kind_of(key: str) -> str:
    return FLAG if key in FLAGS else CATEGORY if key in CATEGORIES else NUMBER


def corpus() -> list[tuple[str, str]]:
    """(record_type, JSON) for each model's clean record and one variant of one key each."""
    records = []
    for model, base in BASE.items():
        records.append((model, json.dumps(base)))
        for key in base:
            for value in VARIANTS[kind_of(key)]:
                doc = {k: v for k, v in base.items() if k != key}
                if value is not MISSING:
                    doc[key] = value
                records.append((model, json.dumps(doc)))
    return records


@pytest.fixture(scope="module")
def run(spark, settings, tmp_path_factory) -> Any:
    """The corpus as a run's raw snapshot, transformed by the project's SQL."""
    from jobs.transform import transform

    run_settings = dataclasses.replace(settings, data_dir=tmp_path_factory.mktemp("skew") / "data")
    folder = run_settings.run_folder(CTX.ds_str)
    source = load_sources(REPO_ROOT / "sql")["predictions"]
    start = datetime(2026, 11, 1)
    rows = [
        (i, 1 + i % 50, model, data, "Low Risk", 0.7, "v1", None, None, start + timedelta(minutes=i))
        for i, (model, data) in enumerate([*corpus(), ("heart", '{"age": 6')], start=1)  # one malformed
    ]
    spark.createDataFrame(rows, source.spark_schema_ddl).write.parquet(str(folder.snapshot("predictions")))
    transform(run_settings, CTX, spark)
    return folder, {i: json.loads(data) for i, _, _, data, *_ in rows[:-1]}


def table_rows(folder: Any, name: str) -> dict[int, dict[str, Any]]:
    table = pq.read_table(folder.feature_table(name), partitioning="hive")
    return {row["record_id"]: row for row in table.to_pylist()}


@pytest.mark.parametrize("model", list(BASE))
def test_the_same_json_gives_the_same_features_in_sql_and_in_serving(run, model) -> None:
    folder, sent = run
    recipe = load_recipes(REPO_ROOT / "models")[model]
    inputs = check_servable(
        recipe, folder.feature_table(recipe.feature_table), folder.snapshot("predictions"), sample_rows=10_000
    )
    assert {name: f.kind for name, f in inputs.features.items()} == {f: kind_of(f) for f in recipe.features}
    rows = table_rows(folder, recipe.feature_table)
    assert len(rows) > 100
    compared = refused = 0
    for record_id, row in rows.items():
        payload = sent[record_id]
        for name, feature in inputs.features.items():
            try:
                served = feature.read(model, name, payload.get(name))
            except ModelInputError:
                assert row[name] is None, (payload.get(name), row[name])  # refused only where the SQL read NULL
                refused += 1
                continue
            assert served == row[name], (name, payload.get(name), row[name], served)
            compared += 1
    assert compared > 8 * 100 and refused > 10
    # A few by name: a variant spelling, an unknown value, a number sent as a string, a flag as text.
    by_value = {json.dumps(sent[i], sort_keys=True): row for i, row in rows.items()}
    base = BASE[model]
    category = next(k for k in base if k in CATEGORIES)
    assert by_value[json.dumps({**base, category: "other"}, sort_keys=True)][category] == "unknown"
    assert by_value[json.dumps({**base, "age": "63"}, sort_keys=True)]["age"] == 63.0
    assert by_value[json.dumps({**base, "age": " 72 "}, sort_keys=True)]["age"] == 72.0


def test_the_sql_and_serving_agree_on_a_variant_spelling(run) -> None:
    folder, sent = run
    rows = table_rows(folder, "heart_features")
    variant = next(i for i, payload in sent.items() if payload.get("chest_pain_type") == "Non-Anginal")
    spaced = next(i for i, payload in sent.items() if payload.get("sex") == " MALE ")
    flag = next(i for i, payload in sent.items() if payload.get("smoker") == " true ")
    assert rows[variant]["chest_pain_type"] == "non_anginal" and rows[spaced]["sex"] == "male"
    assert rows[flag]["smoker"] == 1


def test_a_recipe_asking_for_features_serving_cannot_compute_is_refused(run) -> None:
    folder, _ = run
    heart = load_recipes(REPO_ROOT / "models")["heart"]
    numeric = (*heart.numeric_features, "heart_rate_reserve", "hypertension")
    categorical = (*heart.categorical_features, "age_band")
    derived = dataclasses.replace(
        heart,
        numeric_features=numeric,
        categorical_features=categorical,
        build_estimator=lambda: tabular_pipeline(numeric, categorical, None),
    )
    with pytest.raises(RecipeError) as refused:
        check_servable(derived, folder.feature_table("heart_features"), folder.snapshot("predictions"))
    message = str(refused.value)
    assert message.startswith("Recipe 'heart' uses feature(s) the serving backend cannot compute")
    for name in ("heart_rate_reserve", "hypertension", "age_band"):
        assert f"- '{name}': no request carries a key '{name}': the SQL derives it (record " in message
    assert "Use the raw inputs it is made from as features" in message
    assert "'age':" not in message and "'sex':" not in message  # the raw inputs are fine


# Hand-built tables (pyarrow, no Spark): what the check refuses, and why.


def recipe(numeric: tuple[str, ...] = (), categorical: tuple[str, ...] = ()) -> Recipe:
    return Recipe(
        name="toy",
        feature_table="toy_features",
        numeric_features=numeric,
        categorical_features=categorical,
        build_estimator=lambda: tabular_pipeline(numeric, categorical, None),
        slice_column=None,
    )


def write(tmp_path: Path, columns: dict[str, pa.Array], payloads: list[dict[str, Any]]) -> tuple[Path, Path]:
    table, raw = tmp_path / "features" / "toy_features", tmp_path / "raw" / "predictions"
    table.mkdir(parents=True)
    raw.mkdir(parents=True)
    ids = pa.array(range(1, len(payloads) + 1), pa.int64())
    pq.write_table(pa.table({"record_id": ids, **columns}), table / "part-0.parquet")
    pq.write_table(pa.table({"id": ids, "data": [json.dumps(p) for p in payloads]}), raw / "part-0.parquet")
    return table, raw


def test_a_definition_that_drifted_on_one_side_is_refused_with_an_example(tmp_path: Path) -> None:
    # The SQL learnt that "M" means male; serving was not told.
    table, raw = write(
        tmp_path,
        {"sex": pa.array(["male", "male", "female"]), "age": pa.array([40.0, 50.0, 60.0])},
        [{"sex": "male", "age": 40}, {"sex": "M", "age": "50"}, {"sex": "Female", "age": 60}],
    )
    with pytest.raises(RecipeError) as refused:
        check_servable(recipe(("age",), ("sex",)), table, raw)
    message = str(refused.value)
    assert (
        '- \'sex\': 1 of 3 records differ, e.g. record 2 has "male" in toy_features, serving computes "unknown" '
        'from its JSON value "M"' in message
    )
    assert "twin of category(...)" in message and "jobs/ml/json_inputs.py" in message and "'age'" not in message


def test_a_category_not_mapped_to_known_values_and_a_type_no_json_gives_are_refused(tmp_path: Path) -> None:
    table, raw = write(
        tmp_path,
        {
            "color": pa.array(["red", None, "blue"]),
            "seen": pa.array([datetime(2026, 1, 1)] * 3, pa.timestamp("us")),
        },
        [{"color": "red"}, {"color": "teal"}, {"color": "blue"}],
    )
    with pytest.raises(RecipeError) as refused:
        check_servable(recipe(("seen",), ("color",)), table, raw)
    message = str(refused.value)
    assert "- 'seen': its column is timestamp[us], which no JSON key of a request becomes" in message
    assert "- 'color': the feature table holds NULL for it" in message
    assert "Write it as category('color', [...]) in the SQL of toy_features" in message


def test_kinds_and_known_values_come_from_the_table_and_a_missing_snapshot_only_warns(tmp_path: Path, caplog) -> None:
    table, raw = write(
        tmp_path,
        {
            "x": pa.array([1.5, None, 2.0]),
            "flag": pa.array([1, 0, None], pa.int32()),
            "color": pa.array(["red", "unknown", "blue"]),
        },
        [{"x": 1.5, "flag": True, "color": "Red"}, {"flag": "no", "color": "teal"}, {"x": "2", "color": " BLUE"}],
    )
    toy = recipe(("x", "flag"), ("color",))
    inputs = check_servable(toy, table, raw)
    assert inputs.features == {
        "x": FeatureInput(NUMBER),
        "flag": FeatureInput(FLAG),
        "color": FeatureInput(CATEGORY, ("blue", "red")),
    }
    with caplog.at_level(logging.WARNING, logger="jobs.ml.skew"):
        assert check_servable(toy, table, tmp_path / "no_snapshot") == inputs
    assert "were not compared with the feature table" in caplog.text
