"""What every contender of ``bench/run.py`` shares: the run's date, the source query and the expected outputs.

Every contender reads the same rows: the ``predictions`` source of ``sql/sources.yml`` (consent applied inside
PostgreSQL) bounded to the run's window, exactly the relation ``retrain extract`` reads.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
#: the run's date; the weekly scenario (bench/weekly.py) sets it to its second Sunday for the contenders it starts
DS_ENV = "BENCH_DS"
DS = os.environ.get(DS_ENV, "2026-11-22")
RECORD_TYPES = ("diabetes", "heart", "liver")
OUTCOMES = ("positive", "negative")
NUMBERS = (
    "age",
    "bmi",
    "glucose",
    "blood_pressure",
    "insulin",
    "pregnancies",
    "resting_bp",
    "cholesterol",
    "max_heart_rate",
    "total_bilirubin",
    "alkaline_phosphatase",
    "alt",
    "ast",
    "albumin",
)
LABS = ("glucose", "insulin", "cholesterol", "total_bilirubin", "alkaline_phosphatase", "alt", "ast", "albumin")
CATEGORIES = ("sex", "physical_activity", "chest_pain_type", "alcohol_use")
FLAGS = ("family_history", "exercise_angina", "smoker")


DATABASE_URL_ENV = "BENCH_DATABASE_URL"


def bench_database_url() -> str:
    """The throwaway bench cluster's URL: passed in the environment, because a command line (password included) is
    visible to every user of the machine in ``ps``."""
    return os.environ[DATABASE_URL_ENV]


def source_query() -> str:
    """The consented, windowed query of the ``predictions`` source, as PostgreSQL runs it for ``extract``."""
    from jobs.postgres.jdbc import windowed_relation
    from jobs.run_context import RunContext
    from jobs.sqlproject.config import load_project_vars, load_sources, lookback_days

    source = load_sources(ROOT / "sql")["predictions"]
    window = RunContext.for_ds(DS).window(lookback_days(load_project_vars(ROOT / "sql")))
    return f"SELECT * FROM {windowed_relation(source, window)}"


def report(**counts: int) -> None:
    """The last line a contender prints: its output row counts, compared across contenders by ``bench/run.py``."""
    print(json.dumps({k: int(v) for k, v in counts.items()}), flush=True)


def detail(**values: object) -> None:
    """Extra figures of a contender (e.g. the time of each step), shown beside its measurement."""
    print("detail " + json.dumps(values), flush=True)
