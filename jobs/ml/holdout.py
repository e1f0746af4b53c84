"""The holdout split: membership from a hash of the patient's id, never from a random state.

``sha256(f"{salt}:{user_id}")`` read as a number, modulo 10,000, below ``fraction * 10,000`` means "held out".
The same patient is held out in every run and for every model version with the same salt, so no patient is ever on
both sides: the champion (trained in an earlier run) has never seen a held-out patient, and champion and
challenger are scored on exactly the same rows. New patients join the holdout at the same rate.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable

import numpy as np

from jobs.errors import check_scalar

BUCKETS = 10_000


def bucket(key: int | str, salt: str) -> int:
    """The key's bucket in ``[0, 10_000)``; stable across runs, machines and Python versions."""
    digest = hashlib.sha256(f"{salt}:{key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") % BUCKETS


def holdout_mask(keys: Iterable[int | str], fraction: float, salt: str) -> np.ndarray:
    """A boolean array: True for the keys (patients' ids) held out for validation and evaluation."""
    check_scalar(fraction, "The 'holdout_fraction' setting", float, minimum=0, maximum=1, closed="neither")
    cutoff = round(fraction * BUCKETS)
    return np.fromiter((bucket(k, salt) < cutoff for k in keys), dtype=bool)
