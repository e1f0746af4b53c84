"""run_concurrently: every item runs, results keep the items' order, the first failure in that order is raised."""

from __future__ import annotations

import threading
import time

import pytest

from jobs.spark.concurrent import run_concurrently


def test_results_are_keyed_and_ordered_like_the_items() -> None:
    items = [3, 1, 2]
    for threads in (1, 3):
        result = run_concurrently(lambda n: n * 10, items, threads, key=str)
        assert list(result.items()) == [("3", 30), ("1", 10), ("2", 20)]


def test_items_run_at_the_same_time_up_to_the_thread_count() -> None:
    running, peak, lock = 0, 0, threading.Lock()

    def work(_: int) -> None:
        nonlocal running, peak
        with lock:
            running += 1
            peak = max(peak, running)
        time.sleep(0.05)
        with lock:
            running -= 1

    run_concurrently(work, list(range(6)), 3, key=int)
    assert peak == 3


def test_every_item_finishes_and_the_first_failure_in_item_order_is_raised() -> None:
    finished = []

    def work(name: str) -> str:
        if name == "slow_failure":
            time.sleep(0.1)
            raise ValueError("first in order")
        if name == "fast_failure":
            raise KeyError("second in order")
        time.sleep(0.15)
        finished.append(name)
        return name

    with pytest.raises(ValueError, match="first in order"):
        run_concurrently(work, ["slow_failure", "fast_failure", "ok"], 3, key=str)
    assert finished == ["ok"]
