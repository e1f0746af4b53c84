"""Write the demo records' JSON ``data`` as a backend logs it, clean or with one injected defect.

Clean records are rendered with one ``%``-template per model (fast enough for millions of rows); the few dirty
ones are rebuilt key by key. The output matches ``json.dumps`` with its default separators, so clean and dirty
records look alike. Each defect is decided by pre-drawn uniforms, so the result is a pure function of the seed.
"""

from __future__ import annotations

import numpy as np

from jobs.demo.clinical import Feature, RecordModel, Values

UNKNOWN_CATEGORIES = ("other", "n/a")
#: impossible ages: negative or over 120
IMPOSSIBLE_AGES = (-1, -7, -42, 121, 130, 150, 999)


def tokens(feature: Feature, values: np.ndarray) -> list[str]:
    """Each value as its JSON text."""
    if feature.kind == "int":
        return [str(v) for v in values.tolist()]
    if feature.kind == "float1":
        return [f"{v:.1f}" for v in values.tolist()]
    if feature.kind == "float2":
        return [f"{v:.2f}" for v in values.tolist()]
    if feature.kind == "bool":
        return np.where(values, "true", "false").tolist()
    return ['"' + v + '"' for v in values.tolist()]


def render_clean(model: RecordModel, columns: list[list[str]]) -> list[str]:
    template = "{" + ", ".join(f'"{f.key}": %s' for f in model.features) + "}"
    return [template % row for row in zip(*columns, strict=True)]


def _render(pairs: list[tuple[str, str]]) -> str:
    return "{" + ", ".join(f'"{k}": {t}' for k, t in pairs) + "}"


def _pick(options: list, u: float):
    return options[min(int(u * len(options)), len(options) - 1)]


def render_dirty(model: RecordModel, row: list[str], values: Values, i: int, kind: str, u: np.ndarray) -> str:
    """Row ``i``'s JSON with the defect ``kind``; ``u`` holds three uniforms in [0, 1) that choose the details."""
    features = model.features
    pairs = [(f.key, t) for f, t in zip(features, row, strict=True)]
    categorical = [j for j, f in enumerate(features) if f.kind == "category"]
    if kind == "numbers_as_strings":
        numeric = [j for j, f in enumerate(features) if f.numeric]
        start, count = int(u[0] * len(numeric)), 1 + int(u[1] * 2)
        for step in range(count):
            j = numeric[(start + step) % len(numeric)]
            pairs[j] = (pairs[j][0], '"' + pairs[j][1] + '"')
    elif kind == "category_variant":
        j = _pick(categorical, u[0])
        value = values[features[j].key][i]
        variant = _pick([value.upper(), value.capitalize() + " ", " " + value + " ", value.capitalize()], u[1])
        pairs[j] = (pairs[j][0], '"' + variant + '"')
    elif kind == "missing_key":
        del pairs[_pick(list(range(len(pairs))), u[0])]
    elif kind == "null_value":
        j = _pick(list(range(len(pairs))), u[0])
        pairs[j] = (pairs[j][0], "null")
    elif kind == "unknown_category":
        j = _pick(categorical, u[0])
        pairs[j] = (pairs[j][0], '"' + _pick(list(UNKNOWN_CATEGORIES), u[1]) + '"')
    elif kind == "impossible_value":
        pairs = _impossible(features, pairs, u)
    elif kind == "malformed_json":
        return _malformed(pairs, u)
    return _render(pairs)


def _impossible(features: tuple[Feature, ...], pairs: list[tuple[str, str]], u: np.ndarray) -> list[tuple[str, str]]:
    """Age outside [0, 120], a BMI <= 0 or a negative lab value: values no person can have."""
    targets = [j for j, f in enumerate(features) if f.key in ("age", "bmi") or f.lab]
    j = _pick(targets, u[0])
    key, token = pairs[j]
    if key == "age":
        token = str(_pick(list(IMPOSSIBLE_AGES), u[1]))
    elif key == "bmi":
        token = "0.0" if u[1] < 0.3 else "-" + token
    else:
        token = "-" + token
    pairs[j] = (key, token)
    return pairs


def _malformed(pairs: list[tuple[str, str]], u: np.ndarray) -> str:
    """Text that is not JSON: a body cut short in transit, or a form-encoded body sent by a misconfigured client."""
    if u[2] < 0.75:
        text = _render(pairs)
        cut = 1 + int((0.3 + 0.6 * u[0]) * (len(text) - 2))  # a proper prefix: the object is never closed
        return text[:cut]
    return "&".join(f"{k}={t.strip(chr(34))}" for k, t in pairs)
