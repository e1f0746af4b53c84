"""Deterministic synthetic backend data for the demo and the tests: ``generate(rows, seed) -> SeedData``.

A pure function of its arguments (numpy's ``Generator``, no wall clock), usable without a database; the loader in
:mod:`jobs.demo.loader` writes its output to PostgreSQL with COPY.

The demo data contract (shared by this generator and the SQL models)
--------------------------------------------------------------------
Tables (docs/architecture.md): ``users(id bigint primary key, allow_data_collection boolean not null)``;
``health_records(id bigserial primary key, user_id bigint references users, record_type text not null, data text,
prediction text, confidence double precision, model_version text, verified_outcome text null,
created_at timestamptz, verified_at timestamptz null)``; indexes on ``created_at`` and ``record_type``.

``data`` is the JSON the backend received. Keys per ``record_type``:

- ``diabetes``: age (years), bmi, glucose (mg/dL), blood_pressure (diastolic mmHg), insulin, pregnancies (int),
  family_history (bool), physical_activity ("low" | "moderate" | "high")
- ``heart``: age, sex ("male" | "female"), chest_pain_type ("typical" | "atypical" | "non_anginal" |
  "asymptomatic"), resting_bp, cholesterol, max_heart_rate, exercise_angina (bool), smoker (bool)
- ``liver``: age, sex, total_bilirubin, alkaline_phosphatase, alt, ast, albumin, alcohol_use ("none" | "moderate" |
  "heavy")

``prediction`` is 'High Risk' / 'Low Risk' (what the deployed model said), ``confidence`` in [0.5, 1],
``model_version`` like 'v1'. ``verified_outcome`` is 'positive' / 'negative' or NULL (not yet confirmed), and
``verified_at`` when it was written (NULL with it).

Dirty-input mix (rates are per record, approximate, deterministic for a seed):

- numbers sent as strings ("42.5"): ~5% of records have at least one; categorical case/space variants ("Male ",
  "HIGH") ~2% -> must be normalised, not rejected
- a missing feature key: ~3%; a feature that is JSON ``null``: ~3% -> kept, imputed later (not quarantined)
- an unknown category value ("other", "n/a"): ~2% -> kept, mapped to 'unknown' (not quarantined)
- malformed JSON (truncated/invalid text): ~0.5% -> quarantine, reason ``malformed_json``
- an unknown record_type (e.g. 'kidney'): ~0.5% -> quarantine, reason ``unknown_record_type``
- an impossible value (age < 0 or > 120, bmi <= 0, negative lab value): ~0.5% -> quarantine, reason
  ``impossible_value``
- duplicate submissions (a second row with the same user_id, record_type, data and created_at, another id): ~1%
  -> the later id is quarantined with reason ``duplicate``
- users without consent (``allow_data_collection = false``): ~10% of users; their records never leave PostgreSQL
- ``verified_outcome`` present for only part of the records, arriving with a delay (older records mostly labelled,
  the last few weeks mostly not).
- a hostile outcome spelling ('maybe', 'unknown', 'pos'): ~0.2% of the labelled, otherwise usable records
  -> quarantine, reason ``unknown_outcome``, checked last (so the other reasons' counts do not move)

Quarantine reasons are checked in this order: malformed_json, unknown_record_type, impossible_value, duplicate,
unknown_outcome.

How this generator honours it
-----------------------------
- Each record carries at most one defect (``SeedData.truth.injected``), so the counts in :class:`SeedReport` are
  exact. Only clean records or records with a *kept* defect (strings, variants, missing keys, nulls, unknown
  categories) are duplicated, so a duplicate is quarantined as ``duplicate`` and nothing else; the copy has the id
  right after its original's.
- Impossible values touch only ``age`` (-42, 130, 999, ...), diabetes ``bmi`` (0.0 or negative) and lab values made
  negative: glucose, insulin, cholesterol, total_bilirubin, alkaline_phosphatase, alt, ast, albumin. Clean values
  are always plausible (age 18-92, every measurement positive).
- Malformed JSON is a proper prefix of the record's JSON (never closed) or a form-encoded body (``age=42&bmi=...``).
- Unknown record types: 'kidney', 'stroke', 'thyroid' (with a known model's keys in ``data``).
- Records span ``SPAN_DAYS`` days before ``end_date`` (exclusive, UTC): a run with ``ds = end_date`` sees them all.
  Volume grows by half over the span; ids increase with ``created_at``, as a backend assigns them.
- The outcome's logistic coefficients drift from the first day to the last (see :mod:`jobs.demo.clinical`).
- Labels: 20% of records are never verified; the others are verified 2 days + Exp(mean 12 days) after they were
  made, and only labels that arrived before ``end_date`` are present, with ``verified_at`` the moment they arrived
  (whole seconds), as the demo's traffic writes them.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from datetime import UTC, date, datetime

import numpy as np
import pandas as pd

from jobs.demo.clinical import MODELS, sigmoid
from jobs.demo.json_render import render_clean, render_dirty, tokens
from jobs.errors import check_scalar

DEFAULT_END_DATE = date(2026, 11, 22)
SPAN_DAYS = 182
RECORDS_PER_USER = 8
NO_CONSENT_RATE = 0.10
TYPE_MIX = {"diabetes": 0.45, "heart": 0.35, "liver": 0.20}
UNKNOWN_RECORD_TYPES = ("kidney", "stroke", "thyroid")
MODEL_VERSION = "v1"
NEVER_VERIFIED_RATE = 0.20
#: labelled, otherwise usable records whose outcome is a spelling the pipeline does not know (own random stream, so
#: every other column is what it was before this was added)
HOSTILE_OUTCOME_RATE = 0.002
HOSTILE_OUTCOMES = ("maybe", "unknown", "pos")

#: defect kinds and their per-record rates; a record has at most one
DIRTY_RATES = {
    "malformed_json": 0.005,
    "unknown_record_type": 0.005,
    "impossible_value": 0.005,
    "duplicate": 0.01,
    "numbers_as_strings": 0.05,
    "category_variant": 0.02,
    "missing_key": 0.03,
    "null_value": 0.03,
    "unknown_category": 0.02,
}
#: defects that quarantine a record before the duplicate check; such records are never duplicated
HARD_KINDS = ("malformed_json", "unknown_record_type", "impossible_value")
CLEAN = "clean"
_KINDS = (CLEAN, *DIRTY_RATES)

RECORD_COLUMNS = (
    "id",
    "user_id",
    "record_type",
    "data",
    "prediction",
    "confidence",
    "model_version",
    "verified_outcome",
    "created_at",
    "verified_at",
)
USER_COLUMNS = ("id", "allow_data_collection")


@dataclass(frozen=True)
class KindCounts:
    """How many records carry each injected defect (exact), and how many have a verified outcome."""

    malformed_json: int
    unknown_record_type: int
    impossible_value: int
    duplicate: int
    numbers_as_strings: int
    category_variant: int
    missing_key: int
    null_value: int
    unknown_category: int
    labelled: int

    @classmethod
    def of(cls, injected: np.ndarray, labelled: np.ndarray) -> KindCounts:
        counts = {k: int(np.count_nonzero(injected == k)) for k in DIRTY_RATES}
        return cls(**counts, labelled=int(np.count_nonzero(labelled)))

    def as_dict(self) -> dict[str, int]:
        return {f.name: getattr(self, f.name) for f in fields(KindCounts)}


@dataclass(frozen=True)
class SeedReport(KindCounts):
    """What was generated. The kind counts cover every record; ``consenting`` only the records of consenting users,
    i.e. what extraction sees and what the staging model's quarantine counts should match."""

    users: int
    consenting_users: int
    records: int
    consenting_records: int
    consenting: KindCounts
    #: records with a hostile outcome spelling (all, and of consenting users): quarantined as unknown_outcome
    unknown_outcome: int = 0
    consenting_unknown_outcome: int = 0

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class SeedData:
    """Generated tables and what was injected.

    ``users``: columns ``id`` (int64), ``allow_data_collection`` (bool).
    ``records``: the ``health_records`` columns ``id`` (int64, 1..n in ``created_at`` order), ``user_id`` (int64),
    ``record_type``, ``data``, ``prediction`` (str), ``confidence`` (float64), ``model_version`` (str),
    ``verified_outcome`` (str or None), ``created_at`` (datetime64[ns, UTC], whole seconds), ``verified_at``
    (datetime64[ns, UTC], whole seconds; NaT where ``verified_outcome`` is None).
    ``truth``: per record (same row order), ``id``, ``injected`` (a defect kind or 'clean'), ``outcome`` (the true
    outcome, 'positive'/'negative', also for unlabelled records) and ``allow_data_collection`` (the user's consent).
    """

    users: pd.DataFrame
    records: pd.DataFrame
    truth: pd.DataFrame
    report: SeedReport


def generate(rows: int, seed: int, end_date: date = DEFAULT_END_DATE) -> SeedData:
    """``rows`` health records (duplicates included) of about ``rows / 8`` users, ending the day before ``end_date``."""
    check_scalar(rows, "The number of rows", minimum=1)
    rng = np.random.default_rng(seed)
    end = int(datetime(end_date.year, end_date.month, end_date.day, tzinfo=UTC).timestamp())
    span = SPAN_DAYS * 86_400

    # Users: consent, and the age and sex every record of theirs shares.
    n_users = max(1, -(-rows // RECORDS_PER_USER))
    consent = rng.random(n_users) >= NO_CONSENT_RATE
    base_age = np.clip(rng.normal(52, 15, n_users), 18, 90).astype(np.int64)
    male = rng.random(n_users) < 0.5
    activity = rng.gamma(0.8, size=n_users)  # a few users submit much more often than most

    # One defect kind per record position; duplicates need an eligible original, the rest become clean.
    kinds = np.asarray(_KINDS, dtype=object)[rng.choice(len(_KINDS), size=rows, p=_kind_probabilities())]
    n_dup = int(np.count_nonzero(kinds == "duplicate"))
    eligible = int(np.count_nonzero(~np.isin(kinds, (*HARD_KINDS, "duplicate"))))
    if n_dup > eligible:
        kinds[np.flatnonzero(kinds == "duplicate")[: n_dup - eligible]] = CLEAN
        n_dup = eligible
    base_kinds = kinds[kinds != "duplicate"]
    n_base = len(base_kinds)

    # Base records: who and when (volume grows by half over the span), in created_at order.
    uidx = rng.choice(n_users, size=n_base, p=activity / activity.sum())
    t = 2.0 * (np.sqrt(1.0 + 1.25 * rng.random(n_base)) - 1.0)  # inverse CDF of density (1 + t/2) / 1.25
    secs = end - span + np.minimum((t * span).astype(np.int64), span - 1)
    secs = _separate(uidx, secs)
    order = np.lexsort((uidx, secs))
    uidx, secs = uidx[order], secs[order]
    t = (secs - (end - span)) / span
    type_names = np.asarray(list(TYPE_MIX), dtype=object)
    rtype = type_names[rng.choice(len(TYPE_MIX), size=n_base, p=list(TYPE_MIX.values()))]

    # Features, true outcome, the deployed (old) model's prediction, and JSON per model.
    age = base_age[uidx] + (t * SPAN_DAYS / 365.25).astype(np.int64)
    data = np.empty(n_base, dtype=object)
    positive = np.zeros(n_base, dtype=bool)
    p_deployed = np.zeros(n_base)
    u = rng.random((n_base, 3))
    for name, model in MODELS.items():
        idx = np.flatnonzero(rtype == name)
        values = model.sample(rng, age[idx], male[uidx[idx]])
        positive[idx] = rng.random(len(idx)) < sigmoid(model.logit(values, t[idx]))
        p_deployed[idx] = sigmoid(model.logit(values, 0.0) + rng.normal(0, 0.35, len(idx)))
        columns = [tokens(f, values[f.key]) for f in model.features]
        rendered = render_clean(model, columns)
        model_kinds = base_kinds[idx]
        for j in np.flatnonzero(~np.isin(model_kinds, (CLEAN, "unknown_record_type"))):
            rendered[j] = render_dirty(model, [c[j] for c in columns], values, j, model_kinds[j], u[idx[j]])
        data[idx] = rendered
    unknown = np.flatnonzero(base_kinds == "unknown_record_type")
    rtype[unknown] = np.asarray(UNKNOWN_RECORD_TYPES, dtype=object)[rng.integers(0, 3, len(unknown))]

    # Labels arrive with a delay; some never do.
    delay = (2.0 + rng.exponential(12.0, n_base)) * 86_400
    labelled = (rng.random(n_base) >= NEVER_VERIFIED_RATE) & (secs + delay < end)
    verified_secs = (secs + delay).astype(np.int64)  # floored: an outcome that arrived before end stays before it
    outcome = np.where(positive, "positive", "negative").astype(object)

    # Duplicates: a copy right after its original (same user, type, data and time; the next id).
    sources = rng.choice(np.flatnonzero(~np.isin(base_kinds, HARD_KINDS)), size=n_dup, replace=False)
    pos = np.concatenate([np.arange(n_base), sources])
    is_dup = np.concatenate([np.zeros(n_base, dtype=bool), np.ones(n_dup, dtype=bool)])
    final = np.lexsort((is_dup, pos))
    pos, is_dup = pos[final], is_dup[final]
    injected = np.where(is_dup, "duplicate", base_kinds[pos]).astype(object)
    conf = np.round(np.maximum(p_deployed, 1 - p_deployed), 4)[pos]
    rec_consent = consent[uidx[pos]]
    rec_labelled = labelled[pos]

    ids = np.arange(1, rows + 1, dtype=np.int64)
    records = pd.DataFrame(
        {
            "id": ids,
            "user_id": (uidx[pos] + 1).astype(np.int64),
            "record_type": rtype[pos],
            "data": data[pos],
            "prediction": np.where(p_deployed[pos] >= 0.5, "High Risk", "Low Risk").astype(object),
            "confidence": conf,
            "model_version": MODEL_VERSION,
            "verified_outcome": np.where(rec_labelled, outcome[pos], None),
            "created_at": pd.to_datetime(secs[pos], unit="s", utc=True),
            # Whole seconds, masked after the conversion: pandas reads uninitialised memory for the NaN of a float
            # array (to_datetime(unit="s")), which can overflow under np.errstate(over="raise").
            "verified_at": pd.Series(pd.to_datetime(verified_secs[pos], unit="s", utc=True)).where(rec_labelled),
        }
    )
    hostile = _hostile_outcomes(records, injected, seed)
    users = pd.DataFrame({"id": np.arange(1, n_users + 1, dtype=np.int64), "allow_data_collection": consent})
    truth = pd.DataFrame(
        {"id": ids, "injected": injected, "outcome": outcome[pos], "allow_data_collection": rec_consent}
    )
    report = SeedReport(
        **KindCounts.of(injected, rec_labelled).as_dict(),
        users=n_users,
        consenting_users=int(consent.sum()),
        records=rows,
        consenting_records=int(rec_consent.sum()),
        consenting=KindCounts.of(injected[rec_consent], rec_labelled[rec_consent]),
        unknown_outcome=int(hostile.sum()),
        consenting_unknown_outcome=int((hostile & rec_consent).sum()),
    )
    return SeedData(users=users, records=records, truth=truth, report=report)


def _hostile_outcomes(records: pd.DataFrame, injected: np.ndarray, seed: int) -> np.ndarray:
    """Replace a few labelled outcomes of usable records by spellings the pipeline does not know; returns the mask."""
    rng = np.random.default_rng([seed, 1])
    eligible = records["verified_outcome"].notna().to_numpy() & ~np.isin(injected, [*HARD_KINDS, "duplicate"])
    hostile = eligible & (rng.random(len(records)) < HOSTILE_OUTCOME_RATE)
    spellings = np.asarray(HOSTILE_OUTCOMES, dtype=object)[rng.integers(0, len(HOSTILE_OUTCOMES), len(records))]
    records.loc[hostile, "verified_outcome"] = spellings[hostile]
    return hostile


def _kind_probabilities() -> list[float]:
    dirty = list(DIRTY_RATES.values())
    return [1.0 - sum(dirty), *dirty]


def _separate(uidx: np.ndarray, secs: np.ndarray) -> np.ndarray:
    """Move a user's records apart by a second where two fall on the same second, so that only the injected
    duplicates share (user, time) and the duplicate count stays exact."""
    secs = secs.copy()
    while True:
        clash = pd.DataFrame({"u": uidx, "s": secs}).duplicated().to_numpy()
        if not clash.any():
            return secs
        secs[clash] -= 1
