"""The demo's week of traffic, as drawn (tests/test_dags_model_retraining_runs.py sends the requests)."""

from __future__ import annotations

import json
from collections import Counter
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest

from jobs.demo.clinical import MODELS
from jobs.demo.traffic import draw_requests
from jobs.errors import ConfigError

START = datetime(2026, 11, 15, 2, tzinfo=UTC)
USERS = np.arange(1, 501, dtype=np.int64)


def test_requests_are_a_pure_function_of_the_seed():
    assert draw_requests(200, 5, START, 7, USERS) == draw_requests(200, 5, START, 7, USERS)
    assert draw_requests(200, 5, START, 7, USERS) != draw_requests(200, 6, START, 7, USERS)


def test_requests_fill_the_week_in_visit_order_with_each_models_inputs():
    requests = draw_requests(3_000, 1, START, 7, USERS)
    times = [r.at for r in requests]
    assert times == sorted(times) and times[0] >= START and times[-1] < START + timedelta(days=7)
    mix = Counter(r.model for r in requests)
    assert set(mix) == set(MODELS) and mix["diabetes"] > mix["heart"] > mix["liver"]
    for r in requests[:300]:
        body = json.loads(r.body)
        assert set(body) <= {f.key for f in MODELS[r.model].features}
        assert r.outcome in ("positive", "negative") and r.user_id in USERS


def test_outcomes_are_confirmed_after_the_visit_and_some_never():
    requests = draw_requests(3_000, 2, START, 7, USERS)
    confirmed = [r for r in requests if r.confirmed_at is not None]
    assert all(r.confirmed_at >= r.at + timedelta(days=1) for r in confirmed)
    assert 0.7 < len(confirmed) / len(requests) < 0.9
    in_week = sum(r.confirmed_at < START + timedelta(days=7) for r in confirmed)
    assert 0.4 < in_week / len(requests) < 0.8


def test_no_users_is_a_clear_error():
    with pytest.raises(ConfigError, match="retrain db seed"):
        draw_requests(10, 1, START, 7, np.asarray([], dtype=np.int64))
