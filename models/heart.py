"""Heart-disease screening: gradient-boosted trees, which pick up thresholds and interactions by themselves."""

from sklearn.ensemble import HistGradientBoostingClassifier

from jobs.ml.recipes import Recipe, tabular_pipeline

NUMERIC = ("age", "resting_bp", "cholesterol", "max_heart_rate", "exercise_angina", "smoker")
CATEGORICAL = ("sex", "chest_pain_type")


def build_estimator():
    trees = HistGradientBoostingClassifier(max_iter=150, learning_rate=0.1, early_stopping=False, random_state=0)
    return tabular_pipeline(NUMERIC, CATEGORICAL, trees, scale=False)


RECIPE = Recipe(
    name="heart",
    feature_table="heart_features",
    numeric_features=NUMERIC,
    categorical_features=CATEGORICAL,
    build_estimator=build_estimator,
    label="label",
    slice_column="age_band",
)
