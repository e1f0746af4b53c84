"""What a user would write instead on one machine: pandas ``read_sql``, ``json.loads``, the same features, Parquet.

The same rules as the SQL project (sql/staging, sql/features): numbers sent as text are numbers, categories are
trimmed and lower-cased, quarantine reasons in the same order, the first id of a duplicate submission wins.
"""

from __future__ import annotations

import gc
import json
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import sqlalchemy

from bench.common import (
    CATEGORIES,
    FLAGS,
    LABS,
    NUMBERS,
    OUTCOMES,
    RECORD_TYPES,
    bench_database_url,
    report,
    source_query,
)

FLAG_VALUES = {"true": 1, "yes": 1, "1": 1, "false": 0, "no": 0, "0": 0}


def parse(text: str | None) -> dict | None:
    try:
        doc = json.loads(text) if text is not None else None
    except ValueError:
        return None
    return doc if isinstance(doc, dict) else None


def as_text(values: pd.Series) -> pd.Series:
    """A JSON value as the text a SQL json function returns: numbers and booleans as written, null as missing."""
    return values.map(lambda v: None if v is None or v is np.nan else str(v).lower() if isinstance(v, bool) else str(v))


def staging(df: pd.DataFrame) -> pd.DataFrame:
    docs = [parse(t) for t in df["data"]]
    keys = pd.json_normalize([d or {} for d in docs])
    out = pd.DataFrame(
        {
            "record_id": df["id"],
            "user_id": df["user_id"],
            "record_type": df["record_type"].str.strip().str.lower(),
            "data": df["data"],
            "prediction": df["prediction"],
            "confidence": df["confidence"],
            "model_version": df["model_version"],
            "verified_outcome": df["verified_outcome"].str.strip().str.lower(),
            "created_at": df["created_at"],
        }
    )
    for key in NUMBERS + CATEGORIES + FLAGS:
        text = as_text(keys[key]) if key in keys else pd.Series(None, index=out.index, dtype=object)
        text.index = out.index
        if key in NUMBERS:
            out[key] = pd.to_numeric(text.str.strip(), errors="coerce")
        elif key in CATEGORIES:
            out[key] = text.str.strip().str.lower().replace("", None)
        else:
            out[key] = text.str.strip().str.lower().map(FLAG_VALUES).astype("Int64")
    impossible = (out["age"] < 0) | (out["age"] > 120) | (out["bmi"] <= 0)
    for key in LABS:
        impossible |= out[key] < 0
    first = ~df.sort_values("id").duplicated(["user_id", "record_type", "data", "created_at"]).reindex(df.index)
    out["quarantine_reason"] = np.select(
        [
            pd.Series([d is None for d in docs], index=out.index),
            ~out["record_type"].isin(RECORD_TYPES),
            impossible,
            ~first,
            out["verified_outcome"].notna() & ~out["verified_outcome"].isin(OUTCOMES),
        ],
        ["malformed_json", "unknown_record_type", "impossible_value", "duplicate", "unknown_outcome"],
        default=None,
    )
    return out


def category(values: pd.Series, known: list[str]) -> pd.Series:
    v = values.str.replace("-", "_").str.replace(" ", "_")
    return v.where(v.isin(known), "unknown")


def bands(values: pd.Series, edges: list[float], labels: list[str]) -> pd.Series:
    banded = pd.cut(values, [-np.inf, *edges, np.inf], labels=labels, right=False).astype(object)
    return banded.where(values.notna(), "unknown")


def common(rows: pd.DataFrame) -> pd.DataFrame:
    out = rows[["record_id", "created_at"]].copy()
    out["created_month"] = rows["created_at"].dt.strftime("%Y-%m")
    out["model_version"], out["prediction"] = rows["model_version"], rows["prediction"]
    return out


def label(rows: pd.DataFrame) -> pd.Series:
    return rows["verified_outcome"].map({"positive": 1, "negative": 0}).astype("Int64")


def flag(values: pd.Series, condition: pd.Series) -> pd.Series:
    return condition.astype("Int64").where(values.notna())


def features(stg: pd.DataFrame) -> dict[str, pd.DataFrame]:
    usable = stg[stg["quarantine_reason"].isna()]
    age_band = ([30, 45, 60, 75], ["under_30", "30-44", "45-59", "60-74", "75+"])
    d = usable[usable["record_type"] == "diabetes"]
    diabetes = common(d).assign(
        **{k: d[k] for k in ("age", "bmi", "glucose", "blood_pressure", "insulin", "pregnancies", "family_history")},
        physical_activity=category(d["physical_activity"], ["low", "moderate", "high"]),
        age_band=bands(d["age"], *age_band),
        bmi_category=bands(d["bmi"], [18.5, 25, 30], ["underweight", "normal", "overweight", "obese"]),
        glucose_band=bands(d["glucose"], [100, 126], ["normal", "prediabetes", "diabetes_range"]),
        high_blood_pressure=flag(d["blood_pressure"], d["blood_pressure"] >= 90),
        label=label(d),
    )
    h = usable[usable["record_type"] == "heart"]
    heart = common(h).assign(
        **{k: h[k] for k in ("age", "resting_bp", "cholesterol", "max_heart_rate", "exercise_angina", "smoker")},
        sex=category(h["sex"], ["female", "male"]),
        chest_pain_type=category(h["chest_pain_type"], ["typical", "atypical", "non_anginal", "asymptomatic"]),
        age_band=bands(h["age"], *age_band),
        cholesterol_band=bands(h["cholesterol"], [200, 240], ["desirable", "borderline", "high"]),
        hypertension=flag(h["resting_bp"], h["resting_bp"] >= 140),
        heart_rate_reserve=(h["max_heart_rate"] / (220 - h["age"])).round(3).where((h["age"] > 0) & (h["age"] < 120)),
        label=label(h),
    )
    li = usable[usable["record_type"] == "liver"]
    liver = common(li).assign(
        **{k: li[k] for k in ("age", "total_bilirubin", "alkaline_phosphatase", "alt", "ast", "albumin")},
        sex=category(li["sex"], ["female", "male"]),
        alcohol_use=category(li["alcohol_use"], ["none", "moderate", "heavy"]),
        age_band=bands(li["age"], *age_band),
        ast_alt_ratio=(li["ast"] / li["alt"].where(li["alt"] > 0)).round(3),
        elevated_bilirubin=flag(li["total_bilirubin"], li["total_bilirubin"] > 1.2),
        low_albumin=flag(li["albumin"], li["albumin"] < 3.5),
        label=label(li),
    )
    return {"diabetes_features": diabetes, "heart_features": heart, "liver_features": liver}


def main(database_url: str, out_dir: str) -> None:
    engine = sqlalchemy.create_engine(database_url.replace("postgresql://", "postgresql+psycopg2://", 1))
    df = pd.read_sql(source_query(), engine)
    stg = staging(df)
    del df
    out = Path(out_dir)
    tables = features(stg)
    for name, table in tables.items():
        assert table["record_id"].is_unique and table["record_id"].notna().all(), name
        table.to_parquet(out / name, partition_cols=["created_month"], index=False)
    kept = ["record_id", "user_id", "record_type", "data", "created_at", "quarantine_reason"]
    quarantine = stg.loc[stg["quarantine_reason"].notna(), kept]
    quarantine.to_parquet(out / "quarantine", partition_cols=["quarantine_reason"], index=False)
    report(rows=len(stg), quarantine=len(quarantine), **{k: len(v) for k, v in tables.items()})


if __name__ == "__main__":
    main(bench_database_url(), sys.argv[1])
    # pyarrow's dataset writer leaves threads that now and then abort the interpreter's exit, after the work is done
    # (SIGABRT, "terminate called without an active exception": apache/arrow#36980). A 20k-row
    # to_parquet(partition_cols=...) aborted in 10 of 30 runs here, and in none of 30 with this collection, which
    # frees Arrow's objects while Arrow is still alive.
    gc.collect()
