"""The best single-machine tool: ConnectorX reads the query in 4 partitions into Arrow, DuckDB computes the same
staging and features in SQL (``json_extract_string``) and writes Parquet with ``COPY``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import connectorx
import duckdb

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

PARTITIONS = 4


def staging_sql() -> str:
    keys = NUMBERS + CATEGORIES + FLAGS
    paths = ", ".join(f"'$.{k}'" for k in keys)
    typed = [f"TRY_CAST(TRIM(v[{i + 1}]) AS DOUBLE) AS {k}" for i, k in enumerate(keys) if k in NUMBERS]
    typed += [f"NULLIF(LOWER(TRIM(v[{i + 1}])), '') AS {k}" for i, k in enumerate(keys) if k in CATEGORIES]
    typed += [
        f"CASE WHEN LOWER(TRIM(v[{i + 1}])) IN ('true', 'yes', '1') THEN 1 "
        f"WHEN LOWER(TRIM(v[{i + 1}])) IN ('false', 'no', '0') THEN 0 END AS {k}"
        for i, k in enumerate(keys)
        if k in FLAGS
    ]
    impossible = " OR ".join(["age < 0", "age > 120", "bmi <= 0", *(f"{k} < 0" for k in LABS)])
    types = ", ".join(f"'{t}'" for t in RECORD_TYPES)
    outcomes = ", ".join(f"'{t}'" for t in OUTCOMES)
    return f"""
    CREATE TABLE stg AS
    WITH parsed AS (
      SELECT *, COALESCE(TRY(json_type(data)) = 'OBJECT', false) AS is_json,
             TRY(json_extract_string(data, [{paths}])) AS v,
             ROW_NUMBER() OVER (PARTITION BY user_id, record_type, data, created_at ORDER BY id) AS submission
      FROM raw
    ), typed AS (
      SELECT id AS record_id, user_id, LOWER(TRIM(record_type)) AS record_type, data, prediction, confidence,
             model_version, LOWER(TRIM(verified_outcome)) AS verified_outcome, created_at, is_json, submission,
             {", ".join(typed)}
      FROM parsed
    )
    SELECT * EXCLUDE (is_json, submission),
      CASE WHEN NOT is_json THEN 'malformed_json'
           WHEN COALESCE(record_type, '') NOT IN ({types}) THEN 'unknown_record_type'
           WHEN {impossible} THEN 'impossible_value'
           WHEN submission > 1 THEN 'duplicate'
           WHEN verified_outcome NOT IN ({outcomes}) THEN 'unknown_outcome' END AS quarantine_reason
    FROM typed"""


def category(column: str, values: list[str]) -> str:
    v = f"REPLACE(REPLACE({column}, '-', '_'), ' ', '_')"
    return f"CASE WHEN {v} IN ({', '.join(repr(x) for x in values)}) THEN {v} ELSE 'unknown' END AS {column}"


AGE_BAND = """CASE WHEN age IS NULL THEN 'unknown' WHEN age < 30 THEN 'under_30' WHEN age < 45 THEN '30-44'
  WHEN age < 60 THEN '45-59' WHEN age < 75 THEN '60-74' ELSE '75+' END AS age_band"""
COMMON = "record_id, created_at, strftime(created_at, '%Y-%m') AS created_month, model_version, prediction, age"
LABEL = "CASE verified_outcome WHEN 'positive' THEN 1 WHEN 'negative' THEN 0 END AS label"


def flag(column: str, condition: str, name: str) -> str:
    return f"CASE WHEN {column} IS NULL THEN NULL WHEN {condition} THEN 1 ELSE 0 END AS {name}"


FEATURES = {
    "diabetes_features": f"""SELECT {COMMON}, bmi, glucose, blood_pressure, insulin, pregnancies, family_history,
      {category("physical_activity", ["low", "moderate", "high"])}, {AGE_BAND},
      CASE WHEN bmi IS NULL THEN 'unknown' WHEN bmi < 18.5 THEN 'underweight' WHEN bmi < 25 THEN 'normal'
           WHEN bmi < 30 THEN 'overweight' ELSE 'obese' END AS bmi_category,
      CASE WHEN glucose IS NULL THEN 'unknown' WHEN glucose < 100 THEN 'normal' WHEN glucose < 126 THEN 'prediabetes'
           ELSE 'diabetes_range' END AS glucose_band,
      {flag("blood_pressure", "blood_pressure >= 90", "high_blood_pressure")}, {LABEL}
      FROM stg WHERE quarantine_reason IS NULL AND record_type = 'diabetes'""",
    "heart_features": f"""SELECT {COMMON}, {category("sex", ["female", "male"])},
      {category("chest_pain_type", ["typical", "atypical", "non_anginal", "asymptomatic"])},
      resting_bp, cholesterol, max_heart_rate, exercise_angina, smoker, {AGE_BAND},
      CASE WHEN cholesterol IS NULL THEN 'unknown' WHEN cholesterol < 200 THEN 'desirable'
           WHEN cholesterol < 240 THEN 'borderline' ELSE 'high' END AS cholesterol_band,
      {flag("resting_bp", "resting_bp >= 140", "hypertension")},
      CASE WHEN age > 0 AND age < 120 THEN ROUND(max_heart_rate / (220 - age), 3) END AS heart_rate_reserve, {LABEL}
      FROM stg WHERE quarantine_reason IS NULL AND record_type = 'heart'""",
    "liver_features": f"""SELECT {COMMON}, {category("sex", ["female", "male"])}, total_bilirubin,
      alkaline_phosphatase, alt, ast, albumin, {category("alcohol_use", ["none", "moderate", "heavy"])}, {AGE_BAND},
      CASE WHEN alt > 0 THEN ROUND(ast / alt, 3) END AS ast_alt_ratio,
      {flag("total_bilirubin", "total_bilirubin > 1.2", "elevated_bilirubin")},
      {flag("albumin", "albumin < 3.5", "low_albumin")}, {LABEL}
      FROM stg WHERE quarantine_reason IS NULL AND record_type = 'liver'""",
}


def main(database_url: str, out_dir: str) -> None:
    raw = connectorx.read_sql(
        database_url, source_query(), partition_on="id", partition_num=PARTITIONS, return_type="arrow"
    )
    out = Path(out_dir)
    con = duckdb.connect()
    con.register("raw", raw)
    con.execute(staging_sql())
    del raw
    con.unregister("raw")
    counts = {"rows": con.execute("SELECT count(*) FROM stg").fetchone()[0]}
    for name, sql in FEATURES.items():
        con.execute(f"COPY ({sql}) TO '{out / name}' (FORMAT parquet, PARTITION_BY (created_month))")
        bad = con.execute(f"SELECT count(*) - count(DISTINCT record_id), count(*) FROM ({sql})").fetchone()
        assert bad[0] == 0, name
        counts[name] = bad[1]
    con.execute(f"""COPY (SELECT record_id, user_id, record_type, data, created_at, quarantine_reason FROM stg
                    WHERE quarantine_reason IS NOT NULL) TO '{out / "quarantine"}'
                    (FORMAT parquet, PARTITION_BY (quarantine_reason))""")
    counts["quarantine"] = con.execute("SELECT count(*) FROM stg WHERE quarantine_reason IS NOT NULL").fetchone()[0]
    report(**counts)


if __name__ == "__main__":
    main(bench_database_url(), sys.argv[1])
