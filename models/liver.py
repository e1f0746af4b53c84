"""Liver-disease screening: gradient-boosted trees, indifferent to the skew of the liver enzymes.

Fewer liver records are logged than of the other models, so the gate asks for a little less holdout.
"""

from sklearn.ensemble import HistGradientBoostingClassifier

from jobs.ml.recipes import GateThresholds, Recipe, tabular_pipeline

NUMERIC = ("age", "total_bilirubin", "alkaline_phosphatase", "alt", "ast", "albumin")
CATEGORICAL = ("sex", "alcohol_use")


def build_estimator():
    trees = HistGradientBoostingClassifier(max_iter=100, learning_rate=0.1, early_stopping=False, random_state=0)
    return tabular_pipeline(NUMERIC, CATEGORICAL, trees, scale=False)


RECIPE = Recipe(
    name="liver",
    feature_table="liver_features",
    numeric_features=NUMERIC,
    categorical_features=CATEGORICAL,
    build_estimator=build_estimator,
    label="label",
    slice_column="age_band",
    thresholds=GateThresholds(min_holdout=150),
)
