"""The steady-state weekly run: what the second of two Sundays costs when it builds on the first.

For each window size: seed the window (the bench's generator), run ours on the first Sunday (a full refresh: no
earlier run exists), then write one more week into PostgreSQL (new records created during that week, and late
outcomes for ~1% of the earlier records, ``bench/weekly_data.py``), and time the second Sunday's work by:

- ``ours_incremental``: ``retrain extract`` + ``retrain transform`` building on the first Sunday's run folder;
- ``ours_full_refresh``: the same with ``--full-refresh`` into an empty DATA_DIR;
- ``pandas`` and ``duckdb``: the bench's contenders, recomputing the whole window (bench/contenders/);
- ``floor``: COPY of the week's new rows, every column, plus COPY of id, verified_outcome and verified_at over the
  window: the least any tool must read (bench/contenders/weekly_floor.py);
- ``ours_week_only``: ours with ``--full-refresh`` on a window of the week alone (``lookback_days`` 7, the week's
  new records): what our two steps cost whatever the window (two Spark drivers starting, every model planned,
  compiled and written, the data tests), the part of a weekly run no incremental design removes;
- ``ours_connect``: ``ours_incremental`` with ``SPARK_REMOTE``, the steps as clients of a Spark Connect server
  started for the window (`retrain spark-connect start`) and kept running, as it would be all week: one unmeasured
  run goes first, so the measured ones meet the warm server a weekly run meets. The server's memory is its own
  process, outside the measured tree: it is recorded beside the figures (``server_rss_bytes``).

The weekly volume stays that of the 1M-row window (1M / 52 rows) whatever the window, so the figures show how a
week's cost grows with the window alone. Each measurement is a process tree measured by ``bench/measure.py``.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import socket
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from bench.common import DATABASE_URL_ENV, DS_ENV, ROOT
from bench.contenders.weekly_floor import NEW_ABOVE_ID_ENV
from bench.measure import Measurement, run_measured
from bench.run import FAILED_LOGS, keep_logs, now_utc, seed, summarise
from bench.weekly_data import add_week

log = logging.getLogger(__name__)

FIRST_SUNDAY = "2026-11-22"
SECOND_SUNDAY = "2026-11-29"
WINDOWS = (1_000_000, 5_000_000, 10_000_000)
WEEK_ROWS = round(1_000_000 / 52)
LATE_SHARE = 0.01
WEEK_SEED = 4352
CONTENDERS = ("floor", "ours_week_only", "ours_incremental", "ours_connect", "ours_full_refresh", "pandas", "duckdb")
#: the contenders that run ours building on the first Sunday's run folder
BUILDS_ON_FIRST_SUNDAY = ("ours_incremental", "ours_connect")
#: the arguments of ours' steps, per contender that runs them in an empty DATA_DIR; ``ours_week_only`` is a full
#: refresh of a window of the 7 days before the second Sunday
STEP_ARGS = {
    "ours_full_refresh": ["--full-refresh"],
    "ours_week_only": ["--full-refresh", "--vars", json.dumps({"lookback_days": 7})],
}
MODULES = {
    "floor": "weekly_floor",
    "ours_incremental": "ours",
    "ours_connect": "ours",
    "ours_full_refresh": "ours",
    "ours_week_only": "ours",
    "pandas": "pandas_script",
    "duckdb": "duckdb_sql",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _run(
    name: str, module: str, out: Path, args: list[str], env: dict[str, str], cap: int, timeout: float, label: str
) -> Measurement:
    m = run_measured(
        [sys.executable, "-m", f"bench.contenders.{module}", str(out), *args],
        env={**os.environ, "PYTHONPATH": str(ROOT), **env},
        cwd=str(ROOT),
        cap_bytes=cap,
        timeout=timeout,
    )
    if m.error:
        keep_logs(out, FAILED_LOGS / f"weekly-{name}-{label}")
    print(
        f"  {label:>12} {name:<18} {m.seconds:7.1f} s  {m.peak_rss_bytes / 2**30:5.2f} GiB"
        f"  {m.error or ''} {m.detail or ''}",
        flush=True,
    )
    return m


def second_sunday(
    name: str,
    url: str,
    work: Path,
    incremental_dir: Path,
    new_above_id: int,
    cap: int,
    timeout: float,
    rows: int,
    remote: str | None = None,
) -> Measurement:
    """One contender's work on the second Sunday. Ours incremental runs in the first Sunday's DATA_DIR, its second
    Sunday's folder removed first, so every repetition builds on the same first Sunday; ``ours_connect`` the same,
    as a client of the server at ``remote``."""
    env = {DATABASE_URL_ENV: url, DS_ENV: SECOND_SUNDAY, NEW_ABOVE_ID_ENV: str(new_above_id)}
    if name in BUILDS_ON_FIRST_SUNDAY:
        shutil.rmtree(incremental_dir / "runs" / f"ds={SECOND_SUNDAY}", ignore_errors=True)
        if name == "ours_connect":
            env["SPARK_REMOTE"] = remote or ""
        return _run(name, "ours", incremental_dir, [], env, cap, timeout, f"{rows:,}")
    out = work / f"weekly-{name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    try:
        return _run(name, MODULES[name], out, STEP_ARGS.get(name, []), env, cap, timeout, f"{rows:,}")
    finally:
        shutil.rmtree(out, ignore_errors=True)


def check_counts(contenders: dict[str, dict]) -> list[str]:
    """Every recomputation and the incremental run must agree on the second Sunday's rows, quarantine and features;
    the floor's refresh read must see the same window."""
    reference = contenders.get("ours_full_refresh", {}).get("counts") or contenders.get("ours_incremental", {}).get(
        "counts"
    )
    if reference is None:
        return []
    problems = []
    for name, entry in contenders.items():
        counts = entry.get("counts")
        if not counts or name == "ours_week_only":  # the week alone is another window: its counts are its own
            continue
        if name == "floor":
            if counts["rows"] != reference["rows"]:
                problems.append(f"floor read {counts['rows']} window rows, ours {reference['rows']}")
        elif counts != reference:
            problems.append(f"{name} counts {counts} differ from {reference}")
    return problems


def incremental_runs_were_incremental(name: str, runs: list[Measurement]) -> list[str]:
    """An incremental run whose extract fell back to a full read, or whose staging model did not build on the first
    Sunday's output, measured the wrong thing: say so."""
    problems = []
    for m in runs:
        if m.error is None and m.detail.get("extract_mode") != "incremental":
            problems.append(f"{name}'s extract ran in mode {m.detail.get('extract_mode')!r}")
        if m.error is None and "staging_built_on" in m.detail and m.detail["staging_built_on"] != FIRST_SUNDAY:
            problems.append(f"{name}'s staging built on {m.detail['staging_built_on']!r}")
    return problems


@dataclass(frozen=True)
class BenchServer:
    url: str
    pid: int

    def rss_bytes(self) -> int | None:
        """The server JVM's resident memory now: what keeping it running all week holds."""
        import psutil

        try:
            return int(psutil.Process(self.pid).memory_info().rss)
        except psutil.Error:
            return None


@contextmanager
def connect_server(work: Path, wanted: bool) -> Iterator[BenchServer | None]:
    """A Spark Connect server for ``ours_connect``, started as an operator would and stopped at the end."""
    if not wanted:
        yield None
        return
    from jobs.settings import Settings
    from jobs.spark.connect_server import ConnectServer

    url = f"sc://127.0.0.1:{free_port()}"
    env = {"DATA_DIR": str(work / "spark-connect"), "SPARK_REMOTE": url}
    server = ConnectServer(Settings.from_env(env=env, root=ROOT))
    status, seconds = server.start()
    print(f"weekly: Spark Connect server up at {url} in {seconds:.1f} s", flush=True)
    try:
        yield BenchServer(url, status.pid or 0)
    finally:
        server.stop()


def run_window(
    admin_url: str,
    url: str,
    rows: int,
    week_rows: int,
    work: Path,
    cap: int,
    timeout: float,
    repeat: int,
    contenders: list[str],
) -> tuple[dict, list[str]]:
    """Seed a window of ``rows``, run its first Sunday, add a week, and measure every contender's second Sunday."""
    seconds = seed(admin_url, rows)
    print(f"weekly: seeded {rows:,} rows in {seconds:.0f} s", flush=True)
    incremental_dir = work / "weekly-incremental"
    shutil.rmtree(incremental_dir, ignore_errors=True)
    incremental_dir.mkdir(parents=True)
    first = _run(
        "first_sunday",
        "ours",
        incremental_dir,
        [],
        {DATABASE_URL_ENV: url, DS_ENV: FIRST_SUNDAY},
        cap,
        timeout,
        f"{rows:,}",
    )
    if first.error:
        return {"first_sunday": summarise([first]), "measured_at": now_utc()}, [f"first Sunday: {first.error}"]
    start = datetime.fromisoformat(FIRST_SUNDAY).replace(tzinfo=UTC)
    change = add_week(admin_url, week_rows, start, LATE_SHARE, WEEK_SEED)
    print(f"weekly: the week added {change.to_dict()}", flush=True)
    runs: dict[str, list[Measurement]] = {name: [] for name in contenders}
    with connect_server(work, "ours_connect" in contenders) as server:
        if server is not None:
            print("weekly: warming the Spark Connect server with one unmeasured run", flush=True)
            warm_up = ("ours_connect", url, work, incremental_dir, change.new_above_id, cap, timeout, rows, server.url)
            second_sunday(*warm_up)
        for i in range(repeat):
            order = contenders[i % len(contenders) :] + contenders[: i % len(contenders)]
            for name in order if i % 2 == 0 else order[::-1]:
                remote = server.url if server else None
                m = second_sunday(name, url, work, incremental_dir, change.new_above_id, cap, timeout, rows, remote)
                runs[name].append(m)
        server_rss = server.rss_bytes() if server else None
    shutil.rmtree(incremental_dir, ignore_errors=True)
    measured_at = now_utc()
    entries = {name: {**summarise(r), "measured_at": measured_at} for name, r in runs.items()}
    if server_rss and "ours_connect" in entries:
        entries["ours_connect"]["server_rss_bytes"] = server_rss
    problems = check_counts(entries)
    for name in BUILDS_ON_FIRST_SUNDAY:
        problems += incremental_runs_were_incremental(name, runs.get(name, []))
    point = {
        "measured_at": measured_at,
        "first_sunday": summarise([first]),
        "week": change.to_dict(),
        "contenders": entries,
    }
    return point, problems
