"""Recipes: loaded by path, checked at construction, and the input rules shared with the serving backend."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from jobs.errors import ModelInputError, RecipeError
from jobs.ml.recipes import Recipe, coerce_inputs, features_frame, load_recipes

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def recipes() -> dict[str, Recipe]:
    return load_recipes(REPO / "models")


def test_the_three_recipes_load_and_never_use_the_logged_prediction(recipes) -> None:
    assert sorted(recipes) == ["diabetes", "heart", "liver"]
    for name, recipe in recipes.items():
        assert recipe.feature_table == f"{name}_features"
        assert "prediction" not in recipe.features and recipe.label == "label"
        assert recipe.label not in recipe.features


def test_features_are_the_columns_of_the_feature_tables(recipes) -> None:
    for recipe in recipes.values():
        sql = (REPO / "sql" / "features" / f"{recipe.feature_table}.sql").read_text()
        for column in (*recipe.features, recipe.slice_column):
            assert column in sql, (recipe.name, column)


def test_prediction_or_the_label_as_a_feature_is_refused() -> None:
    with pytest.raises(RecipeError, match="prediction.*never be trained on"):
        Recipe("x", "x_features", ("age", "prediction"), (), build_estimator=lambda: None)
    with pytest.raises(RecipeError, match="label 'label' as a feature"):
        Recipe("x", "x_features", ("age", "label"), (), build_estimator=lambda: None)
    with pytest.raises(
        RecipeError, match=r"'holdout_fraction' setting of Recipe 'x' must be a number in \(0, 1\)\. Got 1.5"
    ):
        Recipe("x", "x_features", ("age",), (), build_estimator=lambda: None, holdout_fraction=1.5)


def test_a_recipe_named_unlike_its_file_or_without_recipe_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "kidney.py").write_text(
        "from jobs.ml.recipes import Recipe\n"
        "RECIPE = Recipe('renal', 'kidney_features', ('age',), (), build_estimator=lambda: None)\n"
    )
    with pytest.raises(RecipeError, match="recipe's name must be its file name"):
        load_recipes(tmp_path)
    (tmp_path / "kidney.py").write_text("x = 1\n")
    with pytest.raises(RecipeError, match="must define RECIPE"):
        load_recipes(tmp_path)
    with pytest.raises(RecipeError, match="does not exist. Set MODELS_DIR"):
        load_recipes(tmp_path / "missing")


def test_coerce_inputs_reads_requests_like_the_sql_reads_the_log(recipes) -> None:
    heart = recipes["heart"]
    coerced = coerce_inputs(
        heart,
        {
            "age": "42",
            "sex": " Male ",
            "smoker": True,
            "exercise_angina": "no",
            "chest_pain_type": "Non-Anginal",
            "cholesterol": None,
            "extra": "ignored",
            "prediction": "High Risk",
        },
    )
    assert coerced == {
        "age": 42.0,
        "resting_bp": None,
        "cholesterol": None,
        "max_heart_rate": None,
        "exercise_angina": 0.0,
        "smoker": 1.0,
        "sex": "male",
        "chest_pain_type": "non_anginal",
    }
    assert coerce_inputs(heart, {"sex": "other"})["sex"] == "other"  # kept; the encoder ignores it
    with pytest.raises(ModelInputError, match="Input 'age' of model 'heart' must be a number. Got 'forty'"):
        coerce_inputs(heart, {"age": "forty"})
    with pytest.raises(ModelInputError, match="must be a JSON object"):
        coerce_inputs(heart, ["age", 42])


def test_every_pipeline_copes_with_gaps_and_unknown_categories(recipes) -> None:
    rng = np.random.default_rng(0)
    for recipe in recipes.values():
        categories = {c: "a" for c in recipe.categorical_features}
        rows = [{f: float(rng.normal()) for f in recipe.numeric_features} | categories for _ in range(60)]
        y = np.arange(60) % 2
        model = recipe.build_estimator().fit(features_frame(recipe, rows), y)
        request = coerce_inputs(recipe, {recipe.categorical_features[0]: "never seen"})
        proba = model.predict_proba(features_frame(recipe, [request]))
        assert proba.shape == (1, 2) and np.isfinite(proba).all()


@pytest.mark.parametrize(
    ("model", "inputs", "field"),
    [
        ("diabetes", {"family_history": 1e308}, "family_history"),
        ("liver", {"albumin": 1e308}, "albumin"),
        ("liver", {"albumin": "1e308"}, "albumin"),
        ("heart", {"age": 10**400}, "age"),
        ("heart", {"cholesterol": -1}, "cholesterol"),
        ("diabetes", {"glucose": "1e999"}, "glucose"),
        ("diabetes", {"bmi": float("nan")}, "bmi"),
    ],
)
def test_a_number_outside_the_recipes_plausible_range_is_refused_naming_the_field(recipes, model, inputs, field):
    with pytest.raises(ModelInputError, match=f"Input '{field}' of model '{model}' must be") as caught:
        coerce_inputs(recipes[model], inputs)
    assert len(str(caught.value)) < 300  # a 401-digit number is not echoed whole


def test_every_numeric_input_is_bounded_and_the_bounds_cover_what_the_demo_sends(recipes) -> None:
    from jobs.demo.clinical import MODELS

    rng = np.random.default_rng(0)
    for name, recipe in recipes.items():
        assert set(recipe.plausible_ranges) == set(recipe.numeric_features), name
        values = MODELS[name].sample(rng, np.full(2000, 50), np.arange(2000) % 2 == 0)
        for key in recipe.numeric_features:
            low, high = recipe.plausible_ranges[key]
            column = np.asarray(values[key], dtype=float)
            assert low <= column.min() and column.max() <= high, (name, key)


def test_a_recipe_with_a_malformed_range_or_one_for_no_numeric_input_is_refused(tmp_path) -> None:
    from sklearn.linear_model import LogisticRegression

    from jobs.ml.recipes import tabular_pipeline

    def make(ranges):
        return Recipe(
            name="m",
            feature_table="m_features",
            numeric_features=("x",),
            categorical_features=(),
            build_estimator=lambda: tabular_pipeline(("x",), (), LogisticRegression()),
            plausible_ranges=ranges,
        )

    for bad in ({"x": (5, 1)}, {"x": (0, float("inf"))}, {"x": (0,)}, {"x": "0-1"}):
        with pytest.raises(RecipeError, match="plausible_ranges"):
            make(bad)
    assert coerce_inputs(make({}), {"x": 1e8})["x"] == 1e8  # DEFAULT_RANGE bounds an input without a range
    with pytest.raises(ModelInputError, match="from -1e\\+09 to 1e\\+09"):
        coerce_inputs(make({}), {"x": 2e9})
    (tmp_path / "m.py").write_text(
        "from sklearn.linear_model import LogisticRegression\n"
        "from jobs.ml.recipes import Recipe, tabular_pipeline\n"
        "RECIPE = Recipe(name='m', feature_table='m_features', numeric_features=('x',), categorical_features=(),\n"
        "    build_estimator=lambda: tabular_pipeline(('x',), (), LogisticRegression()), slice_column=None,\n"
        "    plausible_ranges={'y': (0, 1)})\n"
    )
    with pytest.raises(RecipeError, match="plausible_ranges names y"):
        load_recipes(tmp_path)
