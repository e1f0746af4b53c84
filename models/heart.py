"""Heart-disease screening: a logistic regression on the raw inputs, one-hot chest-pain type and sex.

A gradient-boosted model (HistGradientBoostingClassifier) was no more accurate on the demo data and took far
longer to fit, so the simple model stays until the data says otherwise.
"""

from sklearn.linear_model import LogisticRegression

from jobs.ml.recipes import Recipe, tabular_pipeline

NUMERIC = ("age", "resting_bp", "cholesterol", "max_heart_rate", "exercise_angina", "smoker")
CATEGORICAL = ("sex", "chest_pain_type")
#: what a measurement can be (blood pressure in mmHg, cholesterol in mg/dL); the backend refuses anything else
PLAUSIBLE = {
    "age": (0, 120),
    "resting_bp": (0, 300),
    "cholesterol": (0, 2000),
    "max_heart_rate": (0, 300),
    "exercise_angina": (0, 1),
    "smoker": (0, 1),
}


def build_estimator():
    return tabular_pipeline(NUMERIC, CATEGORICAL, LogisticRegression(max_iter=1_000))


RECIPE = Recipe(
    name="heart",
    feature_table="heart_features",
    numeric_features=NUMERIC,
    categorical_features=CATEGORICAL,
    build_estimator=build_estimator,
    label="label",
    slice_column="age_band",
    plausible_ranges=PLAUSIBLE,
)
