"""A week of demo traffic through the serving backend, and the outcomes verified since.

The demo's second week must train on records that the first week's models served, with outcomes that were
confirmed later, never on the models' own predictions. :func:`serve_week` does what a week of patients and clinics
would do:

1. draws inputs per screening model from :mod:`jobs.demo.clinical` (a few with the usual defects: numbers as
   strings, case variants, missing keys, nulls, unknown categories) and each patient's true outcome, from the
   newest outcome relationship the seed data drifts towards;
2. posts each to ``POST {backend}/predict/{model}`` with an ``X-User-Id`` header; the backend logs the record with
   the ``model_version`` that answered;
3. gives each served record its time in the simulated week (the backend stamps ``now()``; the demo's clock runs
   faster), in the order served;
4. sets ``verified_outcome`` for the records whose outcome was confirmed before the week ends, and
   ``verified_at`` to the moment it was confirmed: confirmation comes 1 + Exp(2) days after the visit, and 20% are
   never confirmed.

Deterministic for a seed, apart from the versions that answer (those are the point).
"""

from __future__ import annotations

import json
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from jobs.demo.clinical import MODELS, sigmoid
from jobs.demo.generator import NEVER_VERIFIED_RATE, TYPE_MIX
from jobs.demo.json_render import render_clean, render_dirty, tokens
from jobs.errors import ConfigError, DemoError
from jobs.postgres.url import DatabaseUrl

log = logging.getLogger(__name__)

#: defects a backend accepts (the request is served and logged), per request
KEPT_DEFECTS = {
    "numbers_as_strings": 0.04,
    "category_variant": 0.02,
    "missing_key": 0.02,
    "null_value": 0.02,
    "unknown_category": 0.01,
}
CONFIRMATION_DAYS = (1.0, 2.0)  # confirmed 1 day + Exp(mean 2 days) after the visit


@dataclass(frozen=True)
class Request:
    model: str
    user_id: int
    body: str
    outcome: str  # the patient's true outcome: 'positive' / 'negative'
    at: datetime  # the visit, in the simulated week
    confirmed_at: datetime | None  # when the outcome is confirmed; None if never


@dataclass(frozen=True)
class TrafficReport:
    """What a simulated week did: requests served per model and version, rejected ones, outcomes verified."""

    start: str
    end: str
    requests: int
    served: int
    rejected: int
    verified: int
    versions: dict[str, dict[str, int]] = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {
            "start": self.start,
            "end": self.end,
            "requests": self.requests,
            "served": self.served,
            "rejected": self.rejected,
            "verified": self.verified,
            "versions": self.versions,
            "seconds": self.seconds,
        }


def draw_requests(n: int, seed: int, start: datetime, days: int, user_ids: np.ndarray) -> list[Request]:
    """``n`` requests spread over ``days`` days from ``start``, in visit order; a pure function of its arguments."""
    if n < 1:
        raise ConfigError(f"The number of requests must be at least 1. Got {n} instead.")
    if len(user_ids) == 0:
        raise ConfigError("The database has no users: seed it first with `retrain db seed`.")
    rng = np.random.default_rng(seed)
    span = days * 86_400
    offsets = np.sort(rng.integers(0, span, n))
    models = np.asarray(list(TYPE_MIX), dtype=object)[rng.choice(len(TYPE_MIX), size=n, p=list(TYPE_MIX.values()))]
    users = rng.choice(user_ids, size=n)
    ages = np.clip(rng.normal(52, 15, n), 18, 90).astype(np.int64)
    male = rng.random(n) < 0.5
    defects = np.asarray(["clean", *KEPT_DEFECTS], dtype=object)[
        rng.choice(len(KEPT_DEFECTS) + 1, size=n, p=[1 - sum(KEPT_DEFECTS.values()), *KEPT_DEFECTS.values()])
    ]
    never = rng.random(n) < NEVER_VERIFIED_RATE
    delay = (CONFIRMATION_DAYS[0] + rng.exponential(CONFIRMATION_DAYS[1], n)) * 86_400
    u = rng.random((n, 3))

    bodies = np.empty(n, dtype=object)
    outcomes = np.empty(n, dtype=object)
    for name, model in MODELS.items():
        idx = np.flatnonzero(models == name)
        if len(idx) == 0:
            continue
        values = model.sample(rng, ages[idx], male[idx])
        positive = rng.random(len(idx)) < sigmoid(model.logit(values, 1.0))
        outcomes[idx] = np.where(positive, "positive", "negative")
        columns = [tokens(f, values[f.key]) for f in model.features]
        rendered = render_clean(model, columns)
        for j in np.flatnonzero(defects[idx] != "clean"):
            rendered[j] = render_dirty(model, [c[j] for c in columns], values, j, defects[idx][j], u[idx[j]])
        bodies[idx] = rendered

    return [
        Request(
            model=str(models[i]),
            user_id=int(users[i]),
            body=str(bodies[i]),
            outcome=str(outcomes[i]),
            at=start + timedelta(seconds=int(offsets[i])),
            confirmed_at=None if never[i] else start + timedelta(seconds=int(offsets[i]) + float(delay[i])),
        )
        for i in range(n)
    ]


def _user_ids(db: DatabaseUrl) -> np.ndarray:
    import psycopg2

    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("SELECT id FROM users ORDER BY id")
        return np.asarray([row[0] for row in cur.fetchall()], dtype=np.int64)


def _post(session: Any, backend_url: str, request: Request) -> dict[str, Any] | None:
    """The backend's answer, or None when it rejected the request (4xx: the input, not the backend)."""
    import requests

    url = f"{backend_url}/predict/{request.model}"
    headers = {"Content-Type": "application/json", "X-User-Id": str(request.user_id)}
    try:
        response = session.post(url, data=request.body.encode(), headers=headers, timeout=30)
    except requests.RequestException as e:
        raise DemoError(f"The backend at {backend_url} did not answer ({type(e).__name__}). Is it running?") from e
    if 400 <= response.status_code < 500:
        return None
    if response.status_code >= 300:
        raise DemoError(f"The backend at {url} answered HTTP {response.status_code}: {response.text[:200]}")
    return response.json()


def _record(db: DatabaseUrl, served: list[tuple[int, Request]], end: datetime) -> int:
    """Put each served record at its visit time and set the outcomes confirmed before ``end``, with the moment each
    was confirmed (``verified_at``); returns how many."""
    import psycopg2
    import psycopg2.extras

    rows = []
    for record_id, r in served:
        confirmed = r.confirmed_at is not None and r.confirmed_at < end
        rows.append((record_id, r.at, r.outcome if confirmed else None, r.confirmed_at if confirmed else None))
    with psycopg2.connect(**db.psycopg_kwargs()) as conn, conn.cursor() as cur:
        psycopg2.extras.execute_values(
            cur,
            "UPDATE health_records AS h SET created_at = v.at, verified_outcome = v.outcome, verified_at = v.verified "
            "FROM (VALUES %s) AS v(id, at, outcome, verified) WHERE h.id = v.id",
            rows,
            template="(%s::bigint, %s::timestamptz, %s::text, %s::timestamptz)",
            page_size=2000,
        )
    return sum(1 for row in rows if row[2] is not None)


def serve_week(
    db: DatabaseUrl,
    backend_url: str,
    *,
    start: datetime,
    days: int = 7,
    requests_count: int = 8_000,
    seed: int = 7,
    concurrency: int = 4,
) -> TrafficReport:
    """Send a week of requests through the backend and record the outcomes confirmed by the week's end."""
    import requests

    started = time.perf_counter()
    end = start + timedelta(days=days)
    backend_url = backend_url.rstrip("/")
    planned = draw_requests(requests_count, seed, start, days, _user_ids(db))
    with requests.Session() as session, ThreadPoolExecutor(max_workers=concurrency) as pool:
        answers = list(pool.map(lambda r: _post(session, backend_url, r), planned))
    served = [(a["record_id"], r) for a, r in zip(answers, planned, strict=True) if a is not None]
    versions: dict[str, dict[str, int]] = {}
    for answer in answers:
        if answer is not None:
            per_model = versions.setdefault(answer["model"], {})
            per_model[answer["version"]] = per_model.get(answer["version"], 0) + 1
    verified = _record(db, served, end) if served else 0
    report = TrafficReport(
        start=start.isoformat(),
        end=end.isoformat(),
        requests=len(planned),
        served=len(served),
        rejected=len(planned) - len(served),
        verified=verified,
        versions={m: dict(sorted(v.items())) for m, v in sorted(versions.items())},
        seconds=round(time.perf_counter() - started, 2),
    )
    log.info(
        "Served %d of %d requests (%s); %d outcomes verified by %s.",
        report.served,
        report.requests,
        json.dumps(report.versions),
        report.verified,
        end.isoformat(),
    )
    return report
