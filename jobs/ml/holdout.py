"""The holdout split: membership from a hash of the record id, never from a random state.

``sha256(f"{salt}:{record_id}")`` read as a number, modulo 10,000, below ``fraction * 10,000`` means "holdout". The
same record is in the holdout in every run and for every model version with the same salt, so the champion (trained
in an earlier run) has never seen a row of this run's holdout, and champion and challenger are scored on exactly
the same rows. New records join the holdout at the same rate; no record ever moves between the two parts.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from jobs.errors import check_scalar

BUCKETS = 10_000


def bucket(record_id: int | str, salt: str) -> int:
    """The record's bucket in ``[0, 10_000)``; stable across runs, machines and Python versions."""
    digest = hashlib.sha256(f"{salt}:{record_id}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def holdout_mask(record_ids: Iterable[int | str], fraction: float, salt: str) -> np.ndarray:
    """A boolean array: True for the records held out for scoring."""
    check_scalar(fraction, "The 'holdout_fraction' setting", float, minimum=0, maximum=1, closed="neither")
    cutoff = round(fraction * BUCKETS)
    return np.fromiter((bucket(r, salt) < cutoff for r in record_ids), dtype=bool)
