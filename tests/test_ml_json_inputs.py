"""The serving backend's twin of the SQL macros that read a record's JSON (no services: the SQL side of the same
values is compared in tests/test_ml_skew.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import ModelInputError
from jobs.ml.json_inputs import (
    CATEGORY,
    FLAG,
    NUMBER,
    FeatureInput,
    ServingInputs,
    java_double_text,
    read_category,
    read_flag,
    read_number,
    sql_text,
)
from jobs.ml.recipes import coerce_inputs, features_frame, load_recipes
from jobs.ml.store import ModelStore
from serving.registry import load_production_set
from tests.conftest import REPO_ROOT

MODELS_DIR = REPO_ROOT / "models"


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        (42, 42.0),
        (42.5, 42.5),
        ("63", 63.0),
        (" 150 ", 150.0),
        ("\t42\n", 42.0),  # the cast drops whitespace and control characters around the number
        ("1e2", 100.0),
        ("+5", 5.0),
        (".5", 0.5),
        ("5.", 5.0),
        ("1.5D", 1.5),  # Java's syntax: a double suffix
        ("0x1p3", 8.0),  # and hexadecimal fractions
        ("", None),
        ("   ", None),
    ],
)
def test_numbers_are_read_as_to_double_reads_them(value, expected) -> None:
    assert read_number("m", "age", value) == expected


@pytest.mark.parametrize(
    "value", ["n/a", "1_000", "١٢", "\u00a05", "NaN", "Infinity", "-inf", "1e400", 10**400, True, [1], {"a": 1}]
)
def test_what_to_double_reads_as_null_is_refused_naming_the_field(value) -> None:
    with pytest.raises(ModelInputError, match=r"Input 'age' of model 'm' must be a (finite )?number"):
        read_number("m", "age", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (True, 1),
        (False, 0),
        ("yes", 1),
        ("NO", 0),
        (" true ", 1),
        (1, 1),
        (0, 0),
        ("1", 1),
        ("0", 0),
        (None, None),
        ("", None),
    ],
)
def test_flags_are_read_as_to_flag_reads_them(value, expected) -> None:
    assert read_flag("m", "smoker", value) == expected


@pytest.mark.parametrize("value", ["maybe", 2, 1.0, "\ttrue", "y", [True]])
def test_a_flag_to_flag_cannot_read_is_refused(value) -> None:
    with pytest.raises(ModelInputError, match="Input 'smoker' of model 'm' must be true or false"):
        read_flag("m", "smoker", value)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("male", "male"),
        (" MALE ", "male"),
        ("Non-Anginal", "non_anginal"),
        ("non anginal", "non_anginal"),
        ("other", "unknown"),  # outside the known values: 'unknown', as category() maps it
        ("n/a", "unknown"),
        ("", "unknown"),
        (None, "unknown"),
        ("\tmale", "unknown"),  # TRIM removes spaces only
        (1, "unknown"),
        (True, "unknown"),
    ],
)
def test_categories_are_read_as_category_reads_them(value, expected) -> None:
    assert read_category(value, ("female", "male", "non_anginal")) == expected


def test_without_known_values_a_category_is_kept_as_before() -> None:
    assert read_category(" Other ", None) == "other" and read_category(None, None) == "unknown"


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (1.0, "1.0"),
        (0.001, "0.001"),
        (1234567.0, "1234567.0"),
        (1e7, "1.0E7"),
        (1e-7, "1.0E-7"),
        (1.2345678901234567e19, "1.2345678901234567E19"),
        (-2.5e-4, "-2.5E-4"),
        (0.0, "0.0"),
        (-0.0, "-0.0"),
    ],
)
def test_a_fraction_becomes_the_text_spark_hands_the_macros(value, text) -> None:
    assert java_double_text(value) == text and sql_text(value) == text


def test_sql_text_of_each_json_value() -> None:
    assert [sql_text(v) for v in (None, "x", True, False, 12, [1, 2], {"b": 1})] == [
        None,
        "x",
        "true",
        "false",
        "12",
        "[1,2]",
        '{"b":1}',
    ]


def test_inputs_round_trip_through_metadata_and_read_a_request() -> None:
    inputs = ServingInputs(
        {"age": FeatureInput(NUMBER), "smoker": FeatureInput(FLAG), "sex": FeatureInput(CATEGORY, ("female", "male"))}
    )
    stored = inputs.to_dict()
    assert stored == {
        "age": {"kind": "number"},
        "smoker": {"kind": "flag"},
        "sex": {"kind": "category", "values": ["female", "male"]},
    }
    assert ServingInputs.from_metadata({"inputs": stored}) == inputs
    assert ServingInputs.from_metadata({}) is None
    assert inputs.read("heart", {"age": "63", "smoker": "yes", "sex": "Other", "extra": 1}) == {
        "age": 63.0,
        "smoker": 1,
        "sex": "unknown",
    }
    with pytest.raises(ValueError, match="kind must be one of"):
        ServingInputs.from_metadata({"inputs": {"age": {"kind": "date"}}})


def test_coerce_inputs_uses_the_versions_inputs_and_keeps_the_plausible_ranges() -> None:
    recipe = load_recipes(MODELS_DIR)["heart"]
    inputs = ServingInputs(
        {
            **{k: FeatureInput(NUMBER) for k in ("age", "resting_bp", "cholesterol", "max_heart_rate")},
            "exercise_angina": FeatureInput(FLAG),
            "smoker": FeatureInput(FLAG),
            "sex": FeatureInput(CATEGORY, ("female", "male")),
            "chest_pain_type": FeatureInput(CATEGORY, ("asymptomatic", "atypical", "non_anginal", "typical")),
        }
    )
    request = {"age": "63", "sex": "Other", "chest_pain_type": "Non-Anginal", "exercise_angina": False, "smoker": 1}
    coerced = coerce_inputs(recipe, request, inputs)
    assert coerced["sex"] == "unknown" and coerced["chest_pain_type"] == "non_anginal"
    assert (coerced["age"], coerced["exercise_angina"], coerced["smoker"], coerced["cholesterol"]) == (63.0, 0, 1, None)
    assert coerce_inputs(recipe, request)["sex"] == "other"  # a version without inputs: as before
    _, high = recipe.plausible_ranges["age"]
    with pytest.raises(ModelInputError, match="plausible range"):
        coerce_inputs(recipe, {**request, "age": str(high + 1)}, inputs)


def test_the_backend_reads_requests_with_the_inputs_stored_with_the_version(tmp_path: Path) -> None:
    recipe = load_recipes(MODELS_DIR)["diabetes"]
    rows = [
        {
            "age": float(a),
            "bmi": 20 + a / 4,
            "glucose": 80.0 + a,
            "blood_pressure": 70.0,
            "insulin": 80.0,
            "pregnancies": 1.0,
            "family_history": a % 2,
            "physical_activity": ("low", "moderate", "unknown")[a % 3],
        }
        for a in range(20, 80)
    ]
    estimator = recipe.build_estimator().fit(features_frame(recipe, rows), [int(r["glucose"] > 130) for r in rows])
    inputs = {k: {"kind": "number"} for k in recipe.numeric_features if k != "family_history"}
    inputs |= {"family_history": {"kind": "flag"}, "physical_activity": {"kind": "category", "values": ["low"]}}
    store = ModelStore(tmp_path / "store")
    version, _ = store.write(
        "diabetes",
        "2026-11-22",
        estimator,
        {},
        {
            "numeric_features": list(recipe.numeric_features),
            "categorical_features": list(recipe.categorical_features),
            "inputs": inputs,
        },
    )
    store.promote("diabetes", version, reason="test", actor="test")
    loaded = load_production_set(tmp_path / "store", MODELS_DIR)["diabetes"]
    assert loaded.inputs == ServingInputs.from_metadata({"inputs": inputs})
    coerced = coerce_inputs(
        loaded.recipe, {"age": "51", "family_history": "yes", "physical_activity": "HIGH"}, loaded.inputs
    )
    # 'high' was not among the values the version was trained on: the model sees 'unknown', as the SQL wrote it
    assert coerced["physical_activity"] == "unknown" and coerced["family_history"] == 1 and coerced["age"] == 51.0
