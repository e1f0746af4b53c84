"""The clinical side of the demo data: plausible inputs per screening model and outcomes that drift over time.

Each model (``diabetes``, ``heart``, ``liver``) draws its inputs from distributions loosely shaped like screening
populations (glucose around 100 mg/dL, cholesterol around 210 mg/dL, log-normal liver enzymes, ...). Its true
outcome follows a logistic model whose coefficients move linearly from ``OLD`` (the start of the data) to ``NEW``
(its end): the features that mattered most early on matter less later and others take over. So a model trained on
the oldest months loses accuracy on the newest ones, and retraining on recent data visibly helps. The deployed
model that logged ``prediction``/``confidence`` is the one fitted on the old relationship.

Everything is vectorised with numpy; values are rounded as a backend would log them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Values = dict[str, np.ndarray]


@dataclass(frozen=True)
class Feature:
    """One key of a record's JSON ``data``; ``kind`` says how it is written (int, float1, float2, bool, category)."""

    key: str
    kind: str
    categories: tuple[str, ...] = ()
    #: a lab value, which cannot be negative: the dirty-input mix makes some impossible with a minus sign
    lab: bool = False

    @property
    def numeric(self) -> bool:
        return self.kind in ("int", "float1", "float2")


@dataclass(frozen=True)
class RecordModel:
    """One screening model: its JSON keys (in logged order), how to sample them, and its drifting outcome."""

    name: str
    features: tuple[Feature, ...]
    sample: Callable[[np.random.Generator, np.ndarray, np.ndarray], Values]
    terms: Callable[[Values], Values]
    old: dict[str, float]
    new: dict[str, float]

    def logit(self, values: Values, t: np.ndarray | float) -> np.ndarray:
        """The true log-odds at time ``t`` (0 = start of the data, 1 = its end)."""
        terms = self.terms(values)
        n = len(next(iter(values.values())))
        old = np.full(n, self.old["intercept"]) + sum(self.old[k] * v for k, v in terms.items())
        new = np.full(n, self.new["intercept"]) + sum(self.new[k] * v for k, v in terms.items())
        return (1 - t) * old + t * new


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def _z(x: np.ndarray, mean: float, sd: float) -> np.ndarray:
    return (x.astype(float) - mean) / sd


def _categorical(rng: np.random.Generator, categories: tuple[str, ...], p: list[float], n: int) -> np.ndarray:
    return np.asarray(categories, dtype=object)[rng.choice(len(categories), size=n, p=p)]


SEX = ("male", "female")
ACTIVITY = ("low", "moderate", "high")
CHEST_PAIN = ("typical", "atypical", "non_anginal", "asymptomatic")
ALCOHOL = ("none", "moderate", "heavy")


# -- diabetes ---------------------------------------------------------------------------------------------------------


def _sample_diabetes(rng: np.random.Generator, age: np.ndarray, male: np.ndarray) -> Values:
    n = len(age)
    bmi = np.clip(rng.normal(28.5, 6.0, n), 15.0, 60.0).round(1)
    glucose = np.clip(rng.normal(100 + 0.35 * (age - 50) + 0.6 * (bmi - 28), 24, n), 55, 320).round()
    return {
        "age": age,
        "bmi": bmi,
        "glucose": glucose.astype(np.int64),
        "blood_pressure": np.clip(rng.normal(74 + 0.15 * (age - 50), 11, n), 40, 125).round().astype(np.int64),
        "insulin": np.clip(rng.lognormal(np.log(80), 0.55, n), 2.0, 850.0).round(1),
        "pregnancies": np.where(male, 0, np.clip(rng.poisson(1.8, n), 0, 14)).astype(np.int64),
        "family_history": rng.random(n) < 0.3,
        "physical_activity": _categorical(rng, ACTIVITY, [0.4, 0.4, 0.2], n),
    }


def _terms_diabetes(v: Values) -> Values:
    return {
        "age": _z(v["age"], 50, 15),
        "bmi": _z(v["bmi"], 28.5, 6),
        "glucose": _z(v["glucose"], 100, 26),
        "blood_pressure": _z(v["blood_pressure"], 74, 11),
        "insulin": _z(np.log(v["insulin"]), np.log(80), 0.55),
        "pregnancies": v["pregnancies"].astype(float),
        "family_history": v["family_history"].astype(float),
        "activity_low": (v["physical_activity"] == "low").astype(float),
        "activity_high": (v["physical_activity"] == "high").astype(float),
    }


DIABETES = RecordModel(
    name="diabetes",
    features=(
        Feature("age", "int"),
        Feature("bmi", "float1"),
        Feature("glucose", "int", lab=True),
        Feature("blood_pressure", "int"),
        Feature("insulin", "float1", lab=True),
        Feature("pregnancies", "int"),
        Feature("family_history", "bool"),
        Feature("physical_activity", "category", ACTIVITY),
    ),
    sample=_sample_diabetes,
    terms=_terms_diabetes,
    old={
        "intercept": -1.3,
        "age": 0.5,
        "bmi": 0.3,
        "glucose": 1.6,
        "blood_pressure": 0.2,
        "insulin": 0.3,
        "pregnancies": 0.08,
        "family_history": 0.4,
        "activity_low": 0.2,
        "activity_high": -0.2,
    },
    new={
        "intercept": -0.9,
        "age": 0.3,
        "bmi": 1.4,
        "glucose": 0.4,
        "blood_pressure": 0.2,
        "insulin": -0.2,
        "pregnancies": 0.08,
        "family_history": 1.1,
        "activity_low": 0.9,
        "activity_high": -0.9,
    },
)


# -- heart ------------------------------------------------------------------------------------------------------------


def _sample_heart(rng: np.random.Generator, age: np.ndarray, male: np.ndarray) -> Values:
    n = len(age)
    return {
        "age": age,
        "sex": np.where(male, "male", "female").astype(object),
        "chest_pain_type": _categorical(rng, CHEST_PAIN, [0.2, 0.25, 0.25, 0.3], n),
        "resting_bp": np.clip(rng.normal(128 + 0.4 * (age - 50), 16, n), 85, 210).round().astype(np.int64),
        "cholesterol": np.clip(rng.normal(212 + 0.5 * (age - 50), 42, n), 110, 450).round().astype(np.int64),
        "max_heart_rate": np.clip(rng.normal(208 - 0.7 * age - 12, 14, n), 70, 205).round().astype(np.int64),
        "exercise_angina": rng.random(n) < 0.3,
        "smoker": rng.random(n) < 0.22,
    }


def _terms_heart(v: Values) -> Values:
    return {
        "age": _z(v["age"], 50, 15),
        "male": (v["sex"] == "male").astype(float),
        "cp_typical": (v["chest_pain_type"] == "typical").astype(float),
        "cp_asymptomatic": (v["chest_pain_type"] == "asymptomatic").astype(float),
        "resting_bp": _z(v["resting_bp"], 128, 17),
        "cholesterol": _z(v["cholesterol"], 212, 43),
        "max_heart_rate": _z(v["max_heart_rate"], 161, 17),
        "exercise_angina": v["exercise_angina"].astype(float),
        "smoker": v["smoker"].astype(float),
    }


HEART = RecordModel(
    name="heart",
    features=(
        Feature("age", "int"),
        Feature("sex", "category", SEX),
        Feature("chest_pain_type", "category", CHEST_PAIN),
        Feature("resting_bp", "int"),
        Feature("cholesterol", "int", lab=True),
        Feature("max_heart_rate", "int"),
        Feature("exercise_angina", "bool"),
        Feature("smoker", "bool"),
    ),
    sample=_sample_heart,
    terms=_terms_heart,
    old={
        "intercept": -1.5,
        "age": 0.6,
        "male": 0.5,
        "cp_typical": 0.3,
        "cp_asymptomatic": 1.0,
        "resting_bp": 0.3,
        "cholesterol": 1.0,
        "max_heart_rate": -0.6,
        "exercise_angina": 1.1,
        "smoker": 0.3,
    },
    new={
        "intercept": -1.2,
        "age": 0.4,
        "male": 0.2,
        "cp_typical": 1.0,
        "cp_asymptomatic": 0.2,
        "resting_bp": 0.7,
        "cholesterol": 0.1,
        "max_heart_rate": -0.3,
        "exercise_angina": 0.4,
        "smoker": 1.3,
    },
)


# -- liver ------------------------------------------------------------------------------------------------------------


def _sample_liver(rng: np.random.Generator, age: np.ndarray, male: np.ndarray) -> Values:
    n = len(age)
    alcohol = _categorical(rng, ALCOHOL, [0.45, 0.4, 0.15], n)
    heavy = alcohol == "heavy"
    return {
        "age": age,
        "sex": np.where(male, "male", "female").astype(object),
        "total_bilirubin": np.clip(rng.lognormal(np.log(0.7) + 0.3 * heavy, 0.55, n), 0.1, 25.0).round(2),
        "alkaline_phosphatase": np.clip(rng.lognormal(np.log(85), 0.35, n), 25, 900).round().astype(np.int64),
        "alt": np.clip(rng.lognormal(np.log(24) + 0.4 * heavy, 0.6, n), 4, 2000).round().astype(np.int64),
        "ast": np.clip(rng.lognormal(np.log(24) + 0.5 * heavy, 0.55, n), 5, 2000).round().astype(np.int64),
        "albumin": np.clip(rng.normal(4.1 - 0.2 * heavy, 0.45, n), 1.5, 5.5).round(1),
        "alcohol_use": alcohol,
    }


def _terms_liver(v: Values) -> Values:
    return {
        "age": _z(v["age"], 50, 15),
        "male": (v["sex"] == "male").astype(float),
        "bilirubin": _z(np.log(v["total_bilirubin"]), np.log(0.75), 0.55),
        "alp": _z(np.log(v["alkaline_phosphatase"]), np.log(85), 0.35),
        "alt": _z(np.log(v["alt"]), np.log(26), 0.6),
        "ast": _z(np.log(v["ast"]), np.log(26), 0.55),
        "albumin": _z(v["albumin"], 4.1, 0.45),
        "alcohol_moderate": (v["alcohol_use"] == "moderate").astype(float),
        "alcohol_heavy": (v["alcohol_use"] == "heavy").astype(float),
    }


LIVER = RecordModel(
    name="liver",
    features=(
        Feature("age", "int"),
        Feature("sex", "category", SEX),
        Feature("total_bilirubin", "float2", lab=True),
        Feature("alkaline_phosphatase", "int", lab=True),
        Feature("alt", "int", lab=True),
        Feature("ast", "int", lab=True),
        Feature("albumin", "float1", lab=True),
        Feature("alcohol_use", "category", ALCOHOL),
    ),
    sample=_sample_liver,
    terms=_terms_liver,
    old={
        "intercept": -1.6,
        "age": 0.3,
        "male": 0.2,
        "bilirubin": 1.2,
        "alp": 0.4,
        "alt": 1.0,
        "ast": 0.4,
        "albumin": -0.8,
        "alcohol_moderate": 0.1,
        "alcohol_heavy": 0.5,
    },
    new={
        "intercept": -1.3,
        "age": 0.3,
        "male": 0.2,
        "bilirubin": 0.4,
        "alp": 0.4,
        "alt": 0.2,
        "ast": 1.1,
        "albumin": -0.3,
        "alcohol_moderate": 0.6,
        "alcohol_heavy": 1.7,
    },
)


MODELS: dict[str, RecordModel] = {m.name: m for m in (DIABETES, HEART, LIVER)}
