"""Liver-disease screening: a logistic regression on log-transformed lab values.

Liver enzymes and bilirubin are strongly right-skewed, and their effect on risk is roughly multiplicative, so the
recipe takes their logarithm before scaling, as ``arcsinh``: ``log(2x)`` for lab-sized values, and still defined for
a zero or negative value that reaches the serving backend. An example of a recipe that builds its own
``ColumnTransformer`` instead of :func:`jobs.ml.recipes.tabular_pipeline`; only scikit-learn and numpy objects go in
the pipeline, so the stored model unpickles anywhere. Fewer liver records are logged than of the other models, so
the gate asks for a little less holdout.
"""

import numpy as np
from sklearn.compose import ColumnTransformer
from sklearn.impute import SimpleImputer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import FunctionTransformer, OneHotEncoder, StandardScaler

from jobs.ml.recipes import GateThresholds, Recipe

LABS = ("total_bilirubin", "alkaline_phosphatase", "alt", "ast")
NUMERIC = ("age", *LABS, "albumin")
CATEGORICAL = ("sex", "alcohol_use")
#: what a measurement can be (bilirubin and albumin in mg/dL and g/dL, enzymes in U/L); the backend refuses
#: anything else
PLAUSIBLE = {
    "age": (0, 120),
    "total_bilirubin": (0, 100),
    "alkaline_phosphatase": (0, 10_000),
    "alt": (0, 20_000),
    "ast": (0, 20_000),
    "albumin": (0, 20),
}


def build_estimator():
    features = ColumnTransformer(
        [
            (
                "labs",
                make_pipeline(
                    SimpleImputer(strategy="median", add_indicator=True),
                    FunctionTransformer(np.arcsinh),
                    StandardScaler(),
                ),
                list(LABS),
            ),
            (
                "other",
                make_pipeline(SimpleImputer(strategy="median", add_indicator=True), StandardScaler()),
                ["age", "albumin"],
            ),
            (
                "categories",
                make_pipeline(
                    SimpleImputer(strategy="constant", fill_value="unknown"),
                    OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                ),
                list(CATEGORICAL),
            ),
        ]
    )
    return Pipeline([("features", features), ("model", LogisticRegression(max_iter=1_000))])


RECIPE = Recipe(
    name="liver",
    feature_table="liver_features",
    numeric_features=NUMERIC,
    categorical_features=CATEGORICAL,
    build_estimator=build_estimator,
    label="label",
    slice_column="age_band",
    thresholds=GateThresholds(min_holdout=150),
    plausible_ranges=PLAUSIBLE,
)
