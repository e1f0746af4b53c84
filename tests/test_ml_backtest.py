"""The backtest replays weekly runs on drifting records: the gate's policy is no worse than never retraining."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pytest

from jobs.errors import ConfigError
from jobs.ml.backtest import POLICIES, backtest, sundays, table, write
from jobs.ml.recipes import load_recipes
from tests.conftest import REPO_ROOT
from tests.ml_helpers import feature_table

START = datetime(2026, 5, 31, tzinfo=UTC)  # a Sunday


def drifting(tmp_path: Path, weeks: int = 24, per_week: int = 700) -> pd.DataFrame:
    """Records whose true outcome moves from the demo's old relationship to its new one, week by week."""
    parts = [
        feature_table(
            tmp_path / f"w{w}",
            "diabetes",
            per_week,
            seed=w,
            t=w / (weeks - 1),
            first_id=1 + w * per_week,
            start=START + timedelta(weeks=w),
            days=7,
            labelled=0.9,
        )
        for w in range(weeks)
    ]
    frame = pd.concat(parts, ignore_index=True)
    frame["created_at"] = pd.to_datetime(frame["created_at"], utc=True)
    frame["verified_at"] = pd.to_datetime(frame["verified_at"], utc=True)
    frame["user_id"] = frame["record_id"] // 6  # patients return across weeks
    return frame


def test_the_gate_is_no_worse_than_never_retraining_and_the_outputs_say_so(tmp_path: Path) -> None:
    recipe = dataclasses.replace(load_recipes(REPO_ROOT / "models")["diabetes"], training_weeks=(8,))  # one fit a week
    frame = drifting(tmp_path)
    first, last = START + timedelta(weeks=12), START + timedelta(weeks=18)
    result = backtest({"diabetes": recipe}, {"diabetes": frame}, first, last)
    model = result["models"]["diabetes"]
    assert [w["sunday"] for w in model["weeks"]] == [(first + timedelta(weeks=i)).date().isoformat() for i in range(7)]
    assert all(w["trained"] for w in model["weeks"]) and model["weeks"][0]["gate_verdict"] == "deploy"
    assert all(w["production"]["never"] == first.date().isoformat() for w in model["weeks"])
    assert all(w["production"]["always"] == w["sunday"] for w in model["weeks"])
    means = model["mean"]
    assert means["gate"] >= means["never"] and means["always"] > means["never"]
    text = table(result)
    assert "diabetes (roc_auc on the next week's outcomes; higher is better)" in text and "mean" in text
    assert text.splitlines()[-1].startswith("(-: not scored, because that policy had no model in production yet")
    paths = write(result, tmp_path / "out")
    assert json.loads(paths["json"].read_text())["models"]["diabetes"]["mean"] == means
    assert paths["plot"].stat().st_size > 10_000 and set(POLICIES) == {"never", "always", "gate"}


def test_a_replayed_run_knows_only_what_its_sunday_knew(tmp_path: Path) -> None:
    """An outcome verified after a Sunday changes nothing of that Sunday's model."""
    recipe = load_recipes(REPO_ROOT / "models")["diabetes"]
    frame = drifting(tmp_path, weeks=16)
    sunday = START + timedelta(weeks=14)
    late = frame.copy()
    late.loc[late["created_at"] < pd.Timestamp(sunday), "verified_at"] = pd.Timestamp(sunday) + pd.Timedelta(days=1)
    before = backtest({"diabetes": recipe}, {"diabetes": frame}, sunday, sunday)["models"]["diabetes"]["weeks"][0]
    after = backtest({"diabetes": recipe}, {"diabetes": late}, sunday, sunday)["models"]["diabetes"]["weeks"][0]
    assert before["trained"] and not after["trained"]  # every outcome arrived later: nothing to train on yet


def test_the_replayed_days_must_be_sundays_in_order() -> None:
    with pytest.raises(ConfigError, match="must be Sundays"):
        sundays(datetime(2026, 11, 21, tzinfo=UTC), datetime(2026, 11, 29, tzinfo=UTC))
    with pytest.raises(ConfigError, match="is before --from"):
        sundays(datetime(2026, 11, 29, tzinfo=UTC), datetime(2026, 11, 22, tzinfo=UTC))
