"""Run independent Spark jobs from a few threads of one session, as dbt runs independent models with ``--threads``.

On a small machine one Spark job rarely keeps every core busy from start to end: the driver plans it, schedules
its stages, waits for the slowest task of each, and commits its files, one core idle meanwhile. Jobs submitted
from other threads of the same session use those gaps (Spark's scheduler is thread-safe and shares the cores).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

Item = TypeVar("Item")
Result = TypeVar("Result")
Key = TypeVar("Key", bound=Hashable)


def run_concurrently(
    work: Callable[[Item], Result], items: Sequence[Item], threads: int, key: Callable[[Item], Key]
) -> dict[Key, Result]:
    """``work(item)`` for every item, up to ``threads`` at a time; results by ``key(item)``, in the items' order.

    Every item runs to its end even when another fails, so no job is left running behind the caller's back; then
    the first failure in the items' order is raised (the same error a one-thread run would have raised first).
    """
    if threads <= 1 or len(items) <= 1:
        return {key(item): work(item) for item in items}
    with ThreadPoolExecutor(max_workers=min(threads, len(items)), thread_name_prefix="spark-job") as pool:
        futures = [pool.submit(work, item) for item in items]
    # Leaving the pool waited for every item; raise the first failure in the items' order.
    for future in futures:
        error = future.exception()
        if error is not None:
            raise error
    return {key(item): future.result() for item, future in zip(items, futures, strict=True)}
