"""Diabetes screening: a logistic regression on the raw inputs the backend receives.

The outcome is close to linear in these inputs on the log-odds scale, so a scaled logistic regression is accurate,
quick to fit at a million rows and easy to explain.
"""

from sklearn.linear_model import LogisticRegression

from jobs.ml.recipes import Recipe, tabular_pipeline

NUMERIC = ("age", "bmi", "glucose", "blood_pressure", "insulin", "pregnancies", "family_history")
CATEGORICAL = ("physical_activity",)
#: what a measurement can be (glucose and insulin in mg/dL and uU/mL); the backend refuses anything else
PLAUSIBLE = {
    "age": (0, 120),
    "bmi": (5, 150),
    "glucose": (0, 2000),
    "blood_pressure": (0, 300),
    "insulin": (0, 5000),
    "pregnancies": (0, 30),
    "family_history": (0, 1),
}


def build_estimator():
    return tabular_pipeline(NUMERIC, CATEGORICAL, LogisticRegression(max_iter=1_000))


RECIPE = Recipe(
    name="diabetes",
    feature_table="diabetes_features",
    numeric_features=NUMERIC,
    categorical_features=CATEGORICAL,
    build_estimator=build_estimator,
    label="label",
    slice_column="age_band",
    plausible_ranges=PLAUSIBLE,
)
