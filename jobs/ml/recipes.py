"""Training recipes: one ``models/<name>.py`` per model, loaded by path, and the input rules shared with serving.

A recipe names its feature table (an SQL model), the feature columns, the label and builds an unfitted
scikit-learn ``Pipeline``. Features are the raw inputs that the backend receives as JSON keys (``age``, ``bmi``,
...), so the serving backend can predict from a request without running SQL; derived SQL columns (bands) may be
slices but not features. The model's own ``prediction`` is never a feature and never a label.

The serving backend uses :func:`load_recipes` and :func:`coerce_inputs` (and :func:`features_frame`), so a request
is read exactly as the training rows were.
"""

from __future__ import annotations

import dataclasses
import importlib.util
import math
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from jobs.errors import ModelInputError, RecipeError, check_scalar
from jobs.ml.paired import METRICS
from jobs.ml.thresholds import GateThresholds

if TYPE_CHECKING:
    import pandas as pd
    from sklearn.pipeline import Pipeline

    from jobs.ml.json_inputs import ServingInputs

__all__ = [
    "GateThresholds",
    "Recipe",
    "as_trained",
    "coerce_inputs",
    "features_frame",
    "load_recipes",
    "tabular_pipeline",
]

#: columns of every feature table that are bookkeeping or the logged model's output, never features
RESERVED_COLUMNS = frozenset(
    {"record_id", "user_id", "created_at", "created_month", "verified_at", "model_version", "prediction", "confidence"}
)
UNKNOWN_CATEGORY = "unknown"
#: the bounds of a numeric input for which a recipe gives no plausible range: beyond them it is no measurement
DEFAULT_RANGE = (-1e9, 1e9)
_TRUE = frozenset({"true", "yes"})
_FALSE = frozenset({"false", "no"})


@dataclass(frozen=True)
class Recipe:
    """How to train one model. Constructing it only checks the names; ``build_estimator`` is called per run."""

    name: str
    feature_table: str
    numeric_features: tuple[str, ...]
    categorical_features: tuple[str, ...]
    build_estimator: Callable[[], Pipeline] = field(repr=False)
    label: str = "label"
    #: a column of the feature table to report accuracy per value of (e.g. ``age_band``); None for none
    slice_column: str | None = "age_band"
    thresholds: GateThresholds = field(default_factory=GateThresholds)
    #: fewer labelled training rows than this and the model is not trained this run (the result says why)
    min_labelled_rows: int = 500
    #: share of patients (by hashed user id) held out for validation and evaluation; never trained on, in any run
    holdout_fraction: float = 0.2
    #: salt of the holdout hash; changing it reshuffles the holdout (the gate then compares only on rows of
    #: patients held out under both salts)
    holdout_salt: str = "holdout-v1"
    #: the gate's metric: roc_auc (DeLong's test), log_loss (paired bootstrap) or accuracy (McNemar's test)
    metric: str = "roc_auc"
    #: the operating threshold is chosen on the validation rows to flag this share of the positives
    target_recall: float = 0.8
    #: the newest weeks, on which the gate scores champion and challenger; training uses only earlier records
    evaluation_weeks: int = 4
    #: the weeks just before those, on which the training window and the operating threshold are chosen
    validation_weeks: int = 4
    #: candidate training windows in weeks (None: all the history the run reads); the best on validation wins
    training_weeks: tuple[int | None, ...] = (8, 26, 52)
    #: with a value, sample weights halve every this many weeks of a record's age; None weighs rows equally
    recency_half_life_weeks: float | None = None
    #: the plausible (lowest, highest) value of numeric inputs, bounds included: the backend refuses a request
    #: outside (422), as the model has never seen such values; inputs without one are bounded by DEFAULT_RANGE
    plausible_ranges: Mapping[str, tuple[float, float]] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        where = f"Recipe {self.name!r}"
        features = self.numeric_features + self.categorical_features
        if not features:
            raise RecipeError(f"{where} has no features. Set numeric_features and/or categorical_features.")
        duplicated = sorted({f for f in features if features.count(f) > 1})
        if duplicated:
            raise RecipeError(f"{where} lists {', '.join(duplicated)} more than once among its features.")
        reserved = sorted((set(features) | {self.label}) & RESERVED_COLUMNS)
        if reserved:
            raise RecipeError(
                f"{where} uses {', '.join(reserved)} as a feature or label; these columns are bookkeeping or the "
                "logged model's own output and must never be trained on. Use the verified 'label' column."
            )
        if self.label in features:
            raise RecipeError(f"{where} uses its label {self.label!r} as a feature.")
        check_scalar(
            self.holdout_fraction,
            f"The 'holdout_fraction' setting of {where}",
            float,
            minimum=0,
            maximum=1,
            closed="neither",
            error=RecipeError,
        )
        check_scalar(self.min_labelled_rows, f"{where}: 'min_labelled_rows'", minimum=2, error=RecipeError)
        if self.metric not in METRICS:
            raise RecipeError(f"{where}: 'metric' must be one of {', '.join(METRICS)}. Got {self.metric!r} instead.")
        check_scalar(
            self.target_recall,
            f"{where}: 'target_recall'",
            float,
            minimum=0,
            maximum=1,
            closed="right",
            error=RecipeError,
        )
        for name in ("evaluation_weeks", "validation_weeks"):
            check_scalar(getattr(self, name), f"{where}: {name!r}", minimum=1, error=RecipeError)
        if not self.training_weeks or not isinstance(self.training_weeks, tuple):
            raise RecipeError(f"{where}: 'training_weeks' must be a non-empty tuple of week counts (or None).")
        for weeks in self.training_weeks:
            if weeks is not None:
                check_scalar(weeks, f"{where}: each of 'training_weeks'", minimum=1, error=RecipeError)
        if self.recency_half_life_weeks is not None:
            check_scalar(
                self.recency_half_life_weeks,
                f"{where}: 'recency_half_life_weeks'",
                float,
                minimum=0,
                closed="neither",
                error=RecipeError,
            )
        if not callable(self.build_estimator):
            raise RecipeError(f"{where}: 'build_estimator' must be a function returning an unfitted Pipeline.")
        for key, bounds in self.plausible_ranges.items():
            if not _is_range(bounds):
                raise RecipeError(
                    f"{where}: plausible_ranges[{key!r}] must be a (lowest, highest) pair of finite numbers, lowest "
                    f"first. Got {bounds!r} instead."
                )

    @property
    def features(self) -> tuple[str, ...]:
        """Every feature column, numeric first, in the order the estimator sees them."""
        return self.numeric_features + self.categorical_features

    @property
    def columns(self) -> tuple[str, ...]:
        """The feature table's columns that training reads."""
        extra = (self.slice_column,) if self.slice_column and self.slice_column not in self.features else ()
        return ("record_id", *self.features, self.label, *extra)


def tabular_pipeline(numeric: Iterable[str], categorical: Iterable[str], estimator: Any, *, scale: bool = True):
    """The usual shape: median imputation (+ missing indicators) and scaling for numbers, constant imputation and
    one-hot encoding (unknown values ignored) for categories, then ``estimator``."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    numbers = [SimpleImputer(strategy="median", add_indicator=True)] + ([StandardScaler()] if scale else [])
    categories = make_pipeline(
        SimpleImputer(strategy="constant", fill_value=UNKNOWN_CATEGORY),
        OneHotEncoder(handle_unknown="ignore", sparse_output=False),
    )
    columns = ColumnTransformer(
        [("numeric", make_pipeline(*numbers), list(numeric)), ("categorical", categories, list(categorical))],
        remainder="drop",
    )
    return Pipeline([("features", columns), ("model", estimator)])


def as_trained(recipe: Recipe, metadata: Mapping[str, Any]) -> Recipe:
    """The recipe with the features a stored version was trained on (its ``metadata.json``), not today's: a recipe
    edited since keeps scoring and serving its older versions."""
    return dataclasses.replace(
        recipe,
        numeric_features=tuple(metadata.get("numeric_features", recipe.numeric_features)),
        categorical_features=tuple(metadata.get("categorical_features", recipe.categorical_features)),
    )


def load_recipes(models_dir: Path) -> dict[str, Recipe]:
    """Every ``<models_dir>/<name>.py`` (not starting with ``_``) that defines ``RECIPE``; name must match the file."""
    from jobs.ml.names import MODEL_RULE, is_model_name

    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        raise RecipeError(
            f"The models folder {models_dir} does not exist. Set MODELS_DIR to the folder holding the recipes."
        )
    recipes: dict[str, Recipe] = {}
    for path in sorted(models_dir.glob("*.py")):
        if path.name.startswith("_"):
            continue
        if not is_model_name(path.stem):  # the name becomes the model store's folder and the backend's route
            raise RecipeError(f"{path}: {path.stem!r} cannot name a model; rename the file to {MODEL_RULE}.")
        recipe = _load_one(path)
        if recipe.name != path.stem:
            raise RecipeError(
                f"{path} defines the recipe {recipe.name!r}; a recipe's name must be its file name ({path.stem!r})."
            )
        unknown = sorted(set(recipe.plausible_ranges) - set(recipe.numeric_features))
        if unknown:
            raise RecipeError(
                f"{path}: plausible_ranges names {', '.join(unknown)}, which is not among numeric_features; a range "
                "bounds a numeric input."
            )
        recipes[recipe.name] = recipe
    if not recipes:
        raise RecipeError(f"No recipes in {models_dir}: add models/<name>.py defining RECIPE = Recipe(...).")
    return recipes


def _load_one(path: Path) -> Recipe:
    module_name = f"retrain_recipes.{path.stem}"
    spec = importlib.util.spec_from_file_location(module_name, path)
    if spec is None or spec.loader is None:
        raise RecipeError(f"Cannot import the recipe {path}.")
    module = importlib.util.module_from_spec(spec)
    sys.modules[module_name] = module  # so that objects defined in a recipe can be pickled and unpickled
    try:
        spec.loader.exec_module(module)
    except RecipeError:
        raise
    except Exception as e:
        raise RecipeError(f"Importing the recipe {path} failed: {type(e).__name__}: {e}") from e
    recipe = getattr(module, "RECIPE", None)
    if not isinstance(recipe, Recipe):
        raise RecipeError(f"{path} must define RECIPE = Recipe(...) (from jobs.ml.recipes). Got {type(recipe)}.")
    return recipe


def _is_range(bounds: Any) -> bool:
    if not isinstance(bounds, tuple | list) or len(bounds) != 2:
        return False
    low, high = bounds
    numbers = all(isinstance(b, int | float) and not isinstance(b, bool) and math.isfinite(b) for b in bounds)
    return numbers and low < high


def _number(recipe: Recipe, key: str, value: Any) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, int | float):
        number = _float(recipe, key, value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if not text:
            return None
        if text in _TRUE or text in _FALSE:
            return 1.0 if text in _TRUE else 0.0
        try:
            number = float(text)
        except ValueError:
            raise ModelInputError(
                f"Input {key!r} of model {recipe.name!r} must be a number. Got {_shown(value)} instead."
            ) from None
    else:
        raise ModelInputError(
            f"Input {key!r} of model {recipe.name!r} must be a number. Got a {type(value).__name__} instead."
        )
    if not math.isfinite(number):
        raise ModelInputError(f"Input {key!r} of model {recipe.name!r} must be a finite number. Got {_shown(value)}.")
    return _plausible(recipe, key, number, value)


def _plausible(recipe: Recipe, key: str, number: float | None, value: Any) -> float | None:
    low, high = recipe.plausible_ranges.get(key, DEFAULT_RANGE)
    if number is not None and not low <= number <= high:
        raise ModelInputError(
            f"Input {key!r} of model {recipe.name!r} must be from {low:g} to {high:g}, its plausible range. "
            f"Got {_shown(value)} instead."
        )
    return number


def _float(recipe: Recipe, key: str, value: int | float) -> float:
    try:
        return float(value)
    except OverflowError:  # an integer of hundreds of digits
        raise ModelInputError(
            f"Input {key!r} of model {recipe.name!r} must be a finite number. Got {_shown(value)} instead."
        ) from None


def _shown(value: Any) -> str:
    """The value as sent, cut short: an error must not echo a whole request back."""
    if isinstance(value, int) and value.bit_length() > 1000:  # str() refuses integers of over 4300 digits
        return f"an integer of about {value.bit_length() * 0.30103:.0f} digits"
    text = str(value) if isinstance(value, int) else repr(value)
    return text if len(text) <= 40 else f"{text[:40]}... ({len(text)} characters)"


def _category(recipe: Recipe, key: str, value: Any) -> str:
    if value is None:
        return UNKNOWN_CATEGORY
    if isinstance(value, bool) or not isinstance(value, str | int | float):
        raise ModelInputError(
            f"Input {key!r} of model {recipe.name!r} must be text. Got a {type(value).__name__} instead."
        )
    # Same normalisation as the SQL models: trimmed, lower case, '-' and ' ' as '_'.
    text = str(value).strip().lower().replace("-", "_").replace(" ", "_")
    return text or UNKNOWN_CATEGORY


def coerce_inputs(recipe: Recipe, payload: Mapping[str, Any], inputs: ServingInputs | None = None) -> dict[str, Any]:
    """A request's JSON inputs as the recipe's features, read like the SQL models read the logged JSON.

    ``inputs``: how the version was trained to read each feature (its metadata's ``inputs``): the SQL's own
    definitions, a category outside its known values read as ``'unknown'`` (:mod:`jobs.ml.json_inputs`). Without
    them (a version stored before they were recorded): numbers given as strings become floats, booleans 1.0/0.0,
    missing keys and nulls ``None`` (imputed by the pipeline); categories are trimmed and lower-cased, a missing one
    is ``'unknown'``, and an unknown value is kept for the encoder to ignore. Keys that are not features are ignored;
    a number outside the recipe's plausible range is refused. Raises ModelInputError naming the field.
    """
    if not isinstance(payload, Mapping):
        raise ModelInputError(
            f"The inputs of model {recipe.name!r} must be a JSON object. Got a {type(payload).__name__} instead."
        )
    if inputs is not None:
        coerced = inputs.read(recipe.name, payload)
        for key in recipe.numeric_features:
            _plausible(recipe, key, coerced.get(key), payload.get(key))
        return coerced
    coerced: dict[str, Any] = {key: _number(recipe, key, payload.get(key)) for key in recipe.numeric_features}
    coerced.update({key: _category(recipe, key, payload.get(key)) for key in recipe.categorical_features})
    return coerced


def features_frame(recipe: Recipe, rows: pd.DataFrame | Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """The estimator's input: the feature columns in order, numbers as float64 (NaN when missing), categories as
    text (NaN when missing, imputed to 'unknown' by the pipeline)."""
    import numpy as np
    import pandas as pd

    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(list(rows), columns=list(recipe.features))
    missing = [c for c in recipe.features if c not in frame.columns]
    if missing:
        raise RecipeError(f"Recipe {recipe.name!r}: the data has no column(s) {', '.join(missing)}.")
    out = pd.DataFrame(index=frame.index)
    for column in recipe.numeric_features:
        out[column] = pd.to_numeric(frame[column], errors="coerce").astype("float64")
    for column in recipe.categorical_features:
        values = frame[column].astype(object)
        out[column] = values.where(values.notna(), np.nan)
    return out
