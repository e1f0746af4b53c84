"""A request's JSON read into a model's features with the SQL project's definitions, so that serving gives the model
the values training gave it.

Training rows come from the SQL: ``stg_predictions`` reads each key of the logged JSON with ``to_double``
(numbers), ``to_flag`` (yes/no) or ``to_category``, and a feature model maps a category outside its known values to
``'unknown'`` (``category()``, ``sql/macros/``). The serving backend receives the same JSON. :class:`FeatureInput`
is the Python twin of those macros; :class:`ServingInputs` says which one each feature of a stored version uses and,
for a category, its known values. Training works it out from the feature table and checks it against the run's raw
JSON (:mod:`jobs.ml.skew`), and the version's ``metadata.json`` keeps it as ``inputs`` for the backend.

The twin gives the value the SQL gives, or refuses the input (:class:`ModelInputError`, a 422) where the SQL would
read NULL from a value that is there: text that is no number, a flag that is neither yes nor no, an infinite number.
The client is told to fix the field instead of being scored on a silently missing value. A missing key, a JSON
``null`` and an empty string are missing in both (the pipeline imputes them). A category is never refused: any value
outside its known ones is ``'unknown'``, as in the SQL.

What the macros receive is text: Spark's ``from_json`` hands a string over as is, ``true``/``false`` as
``'true'``/``'false'``, an integer as its digits, a fraction as Java's ``Double.toString`` (``1.0``, ``1.0E-7``)
and an object or array as its JSON text. ``TRIM`` removes spaces only; the cast to a number also drops other
whitespace and control characters, and reads Java's number syntax (an ``f``/``d`` suffix, hexadecimal fractions).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from jobs.errors import ModelInputError

UNKNOWN_CATEGORY = "unknown"
NUMBER = "number"
FLAG = "flag"
CATEGORY = "category"
KINDS = (NUMBER, FLAG, CATEGORY)
#: what each kind mirrors in the SQL, for messages and the documentation
SQL_DEFINITIONS = {
    NUMBER: "to_double (a DOUBLE column)",
    FLAG: "to_flag (an INT column)",
    CATEGORY: "category(...) with its known values (a STRING column)",
}

_TRUE = frozenset({"true", "yes", "1"})
_FALSE = frozenset({"false", "no", "0"})
# What Spark's cast from text to a number strips around it: whitespace and control characters up to the space.
_CAST_WHITESPACE = "".join(chr(c) for c in range(33))
# Java's Double.parseDouble, which the cast uses: decimal or hexadecimal, with an optional float/double suffix.
_JAVA_DECIMAL = re.compile(r"[+-]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?[fFdD]?")
_JAVA_HEX = re.compile(r"[+-]?0[xX](?:[0-9a-fA-F]+\.?[0-9a-fA-F]*|\.[0-9a-fA-F]+)[pP][+-]?[0-9]+[fFdD]?")


def _refuse(model: str, key: str, value: Any, expected: str) -> ModelInputError:
    shown = json.dumps(value) if not isinstance(value, str) else repr(value)
    return ModelInputError(f"Input {key!r} of model {model!r} must be {expected}. Got {shown[:80]} instead.")


def read_number(model: str, key: str, value: Any) -> float | None:
    """``to_double``: ``TRY_CAST(TRIM(text) AS DOUBLE)``, NULL unless finite."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise _refuse(model, key, value, "a number")
    if isinstance(value, str):
        text = value.strip(_CAST_WHITESPACE)
        if not text:
            return None
        if _JAVA_DECIMAL.fullmatch(text):
            number = float(text.rstrip("fFdD"))
        elif _JAVA_HEX.fullmatch(text):
            number = float.fromhex(text.rstrip("fFdD"))
        else:
            raise _refuse(model, key, value, "a number")
    else:
        try:
            number = float(value)
        except OverflowError:
            number = math.inf
    if not math.isfinite(number):
        raise _refuse(model, key, value, "a finite number")
    return number


def read_flag(model: str, key: str, value: Any) -> int | None:
    """``to_flag``: ``true``/``yes``/``1`` is 1, ``false``/``no``/``0`` is 0 (case and spaces aside)."""
    if value is None:
        return None
    if isinstance(value, bool):
        return int(value)
    text = value.strip(" ").lower() if isinstance(value, str) else sql_text(value)
    if text == "":
        return None
    if text in _TRUE:
        return 1
    if text in _FALSE:
        return 0
    raise _refuse(model, key, value, "true or false (also yes/no, 1/0)")


def read_category(value: Any, values: tuple[str, ...] | None) -> str:
    """``category(to_category(text), values)``: trimmed, lower case, ``-`` and spaces as ``_``, and ``'unknown'``
    outside ``values``. Without ``values`` (a version trained before they were recorded) the value is kept."""
    text = sql_text(value)
    if text is None:
        return UNKNOWN_CATEGORY
    key = text.strip(" ").lower().replace("-", "_").replace(" ", "_")
    if values is None:
        return key or UNKNOWN_CATEGORY
    return key if key in values else UNKNOWN_CATEGORY


def sql_text(value: Any) -> str | None:
    """The text Spark's ``from_json`` gives the SQL macros for one parsed JSON value."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return java_double_text(value)
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def java_double_text(value: float) -> str:
    """Java's ``Double.toString``: ``1.0``, ``0.001``, ``1.0E7``, ``1.0E-7`` (shortest digits)."""
    if not math.isfinite(value):
        return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")
    if value == 0:
        return "-0.0" if math.copysign(1.0, value) < 0 else "0.0"
    sign, digits, exponent = Decimal(repr(value)).normalize().as_tuple()
    text = "".join(map(str, digits))
    magnitude = len(text) + int(exponent) - 1  # the power of ten of the first digit
    prefix = "-" if sign else ""
    if -3 <= magnitude < 7:
        if magnitude >= 0:
            whole, fraction = text[: magnitude + 1].ljust(magnitude + 1, "0"), text[magnitude + 1 :]
        else:
            whole, fraction = "0", "0" * (-magnitude - 1) + text
        return f"{prefix}{whole}.{fraction or '0'}"
    return f"{prefix}{text[0]}.{text[1:] or '0'}E{magnitude}"


@dataclass(frozen=True)
class FeatureInput:
    """How serving reads one feature from its JSON key: as a number, a flag or a category of known ``values``."""

    kind: str
    #: a category's known values (``'unknown'`` aside); None for numbers and flags
    values: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"An input's kind must be one of {', '.join(KINDS)}. Got {self.kind!r} instead.")

    def read(self, model: str, key: str, value: Any) -> float | int | str | None:
        if self.kind == NUMBER:
            return read_number(model, key, value)
        if self.kind == FLAG:
            return read_flag(model, key, value)
        return read_category(value, self.values)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind} if self.values is None else {"kind": self.kind, "values": list(self.values)}


@dataclass(frozen=True)
class ServingInputs:
    """Every feature of a stored version and how serving reads it; ``metadata.json``'s ``inputs``."""

    features: Mapping[str, FeatureInput]

    def read(self, model: str, payload: Mapping[str, Any]) -> dict[str, Any]:
        """The features from a request's JSON object; raises ModelInputError naming the field."""
        return {key: feature.read(model, key, payload.get(key)) for key, feature in self.features.items()}

    def to_dict(self) -> dict[str, dict[str, Any]]:
        return {key: feature.to_dict() for key, feature in self.features.items()}

    @classmethod
    def from_metadata(cls, metadata: Mapping[str, Any]) -> ServingInputs | None:
        """The ``inputs`` a version was trained with; None for a version stored before they were recorded."""
        inputs = metadata.get("inputs")
        if inputs is None:
            return None
        if not isinstance(inputs, Mapping):
            raise ValueError(f"'inputs' must map each feature to its kind. Got {type(inputs).__name__} instead.")
        features = {}
        for key, spec in inputs.items():
            if not isinstance(spec, Mapping):
                raise ValueError(f"'inputs' of feature {key!r} must be a mapping with 'kind'. Got {spec!r}.")
            values = spec.get("values")
            features[str(key)] = FeatureInput(str(spec.get("kind")), None if values is None else tuple(values))
        return cls(features)
