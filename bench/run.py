"""``make bench``: the pipeline against what a user would otherwise run, on the same rows, in the same run.

For each row count: seed a throwaway PostgreSQL (the demo generator, loaded with COPY), then run every contender in
its own process, alternating their order from one repetition to the next so that a busy moment of the machine
does not always hit the same one:

- ``floor``: ``COPY (query) TO STDOUT`` into a sink that drops it (bench/contenders/floor.py);
- ``ours``: ``retrain extract`` then ``retrain transform``, two processes as the DAG runs them;
- ``pandas``: read_sql, json.loads, the same features, to_parquet (bench/contenders/pandas_script.py);
- ``duckdb``: ConnectorX (4 partitions) into Arrow, DuckDB SQL, COPY to Parquet (bench/contenders/duckdb_sql.py);
- ``naive_spark``: the pipeline's steps with one JDBC partition and no fetchsize (bench/contenders/naive_spark.py).

Each is measured for wall time and the peak RSS of its whole process tree (JVMs included); a tree that grows past
``--cap-gib`` is killed and reported as not fitting. Every contender must produce the same row counts (read,
quarantined, each feature table), which the run checks. Results: bench/results/latest.json, results.md and
rows_vs_time.png (log-log).

Then the weekly scenario (bench/weekly.py): for each ``--weekly-rows`` window, a first Sunday, one more week of
records and late outcomes, and the second Sunday timed for ours incremental, ours full refresh, pandas, DuckDB and
the weekly COPY floor; judged against its targets (bench/weekly_targets.py), plotted in weekly.png.

    .venv/bin/python -m bench.run --rows 200000 1000000 5000000 --repeat 2
    .venv/bin/python -m bench.run --scenarios weekly --weekly-rows 1000000 5000000 --merge
    make bench BENCH_ROWS="200000 1000000" BENCH_REPEAT=2 WEEKLY_ROWS="1000000 5000000 10000000"
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from bench.common import DATABASE_URL_ENV, ROOT, bench_database_url
from bench.measure import Measurement, run_measured

SCENARIOS = ("sweep", "weekly")
CONTENDERS = ("floor", "ours", "pandas", "duckdb", "naive_spark")
MODULES = {
    "floor": "floor",
    "ours": "ours",
    "pandas": "pandas_script",
    "duckdb": "duckdb_sql",
    "naive_spark": "naive_spark",
}
RESULTS = ROOT / "bench" / "results"
FAILED_LOGS = RESULTS / "failed-logs"  # not committed (.gitignore)
GENERATED_MAX = 5_000_000  # beyond this, the seeded rows are copied in SQL (the generator holds ~1 GB per 1M rows)


def seed(database_url: str, rows: int) -> float:
    """Seed ``rows`` records in a child process, so the generator's memory is returned before anything is timed."""
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "bench.run", "--seed-child", str(rows)],
        cwd=ROOT,
        check=True,
        env={**os.environ, DATABASE_URL_ENV: database_url},
    )
    return time.perf_counter() - started


def seed_child(database_url: str, rows: int) -> None:
    import psycopg2

    from jobs.demo.seed import seed_database
    from jobs.postgres.url import DatabaseUrl

    seed_database(DatabaseUrl.parse(database_url), min(rows, GENERATED_MAX), 42)
    with psycopg2.connect(database_url) as conn, conn.cursor() as cur:
        cur.execute(
            "SELECT (SELECT max(id) FROM health_records), (SELECT max(id) FROM users), "
            "(SELECT count(*) FROM health_records)"
        )
        max_id, max_user, count = cur.fetchone()
        if rows > count:  # copies of the first records, under new ids and new users (so no new duplicates)
            cur.execute("INSERT INTO users SELECT id + %s, allow_data_collection FROM users", (max_user,))
            cur.execute(
                """INSERT INTO health_records (id, user_id, record_type, data, prediction, confidence, model_version,
                   verified_outcome, created_at)
                   SELECT id + %s, user_id + %s, record_type, data, prediction, confidence, model_version,
                          verified_outcome, created_at FROM health_records WHERE id <= %s""",
                (max_id, max_user, rows - count),
            )
    conn = psycopg2.connect(database_url)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("VACUUM ANALYZE health_records")
            cur.execute("VACUUM ANALYZE users")
    finally:
        conn.close()


def measure(name: str, rows: int, database_url: str, work: Path, cap: int, timeout: float) -> Measurement:
    out = work / f"out-{name}"
    shutil.rmtree(out, ignore_errors=True)
    out.mkdir(parents=True)
    env = {**os.environ, "PYTHONPATH": str(ROOT), DATABASE_URL_ENV: database_url}
    try:
        m = run_measured(
            [sys.executable, "-m", f"bench.contenders.{MODULES[name]}", str(out)],
            env=env,
            cwd=str(ROOT),
            cap_bytes=cap,
            timeout=timeout,
        )
        if m.error:
            keep_logs(out, FAILED_LOGS / f"{name}-{rows}")
        return m
    finally:
        shutil.rmtree(out, ignore_errors=True)


def keep_logs(out: Path, target: Path) -> None:
    """A failed contender's logs (Spark's among them) outlive its output folder, so its real error can be read."""
    logs = list(out.rglob("*.log"))
    if not logs:
        return
    shutil.rmtree(target, ignore_errors=True)
    target.mkdir(parents=True)
    for log_file in logs:
        shutil.copy2(log_file, target / "-".join(log_file.relative_to(out).parts))
    print(f"  its logs: {target}", flush=True)


def now_utc() -> str:
    return datetime.now(UTC).isoformat(timespec="seconds")


def summarise(runs: list[Measurement]) -> dict:
    ok = [r for r in runs if r.error is None]
    entry: dict = {
        "runs": [
            {
                "seconds": round(r.seconds, 2),
                "peak_rss_bytes": r.peak_rss_bytes,
                "error": r.error,
                **({"detail": r.detail} if r.detail else {}),
            }
            for r in runs
        ]
    }
    if not ok:
        entry["error"] = runs[-1].error
        entry["peak_rss_bytes"] = max(r.peak_rss_bytes for r in runs)
        return entry
    entry["seconds"] = round(statistics.median(r.seconds for r in ok), 2)
    entry["rows"] = ok[0].counts.get("rows", 0)
    entry["rows_per_s"] = round(entry["rows"] / entry["seconds"])
    entry["peak_rss_bytes"] = max(r.peak_rss_bytes for r in ok)
    entry["counts"] = ok[0].counts
    return entry


def check_counts(point: dict[str, dict]) -> list[str]:
    """Every contender that finished must agree on what it read, quarantined and wrote."""
    reference = point.get("ours", {}).get("counts")
    problems = []
    for name, entry in point.items():
        counts = entry.get("counts")
        if not counts or reference is None or name == "floor":
            continue
        if counts != reference:
            problems.append(f"{name} counts {counts} differ from ours {reference}")
    floor = point.get("floor", {}).get("counts", {}).get("rows")
    if floor is not None and reference and floor != reference["rows"]:
        problems.append(f"floor read {floor} rows, ours {reference['rows']}")
    return problems


def main() -> None:
    from bench import weekly  # imports this module: not at its top

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=2, help="runs of each contender per row count (median)")
    parser.add_argument("--contenders", nargs="+", choices=CONTENDERS, default=list(CONTENDERS))
    parser.add_argument("--cap-gib", type=float, default=16.0, help="kill a contender whose process tree grows past")
    parser.add_argument(
        "--timeout-min", type=float, default=10.0, help="stop a contender still running after this many minutes"
    )
    parser.add_argument(
        "--merge",
        action="store_true",
        help="keep the other row counts and contenders of latest.json (re-measure some only)",
    )
    parser.add_argument(
        "--scenarios", nargs="+", choices=SCENARIOS, default=list(SCENARIOS), help="sweep: contenders by rows"
    )
    parser.add_argument(
        "--weekly-rows", type=int, nargs="+", default=list(weekly.WINDOWS), help="window sizes of the weekly scenario"
    )
    parser.add_argument(
        "--weekly-week-rows", type=int, default=weekly.WEEK_ROWS, help="records created during the timed week"
    )
    parser.add_argument("--weekly-repeat", type=int, default=1, help="runs of each weekly contender (median)")
    parser.add_argument("--weekly-contenders", nargs="+", choices=weekly.CONTENDERS, default=list(weekly.CONTENDERS))
    parser.add_argument("--results", type=Path, default=RESULTS, help="where latest.json, results.md and plots go")
    parser.add_argument("--seed-child", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.seed_child:
        seed_child(bench_database_url(), args.seed_child)
        return

    from bench.report import write_reports
    from bench.weekly_targets import evaluate
    from jobs.postgres.embedded import EmbeddedPostgres
    from tests.conftest import free_port

    cap = int(args.cap_gib * 2**30)
    results = args.results
    previous = (
        json.loads((results / "latest.json").read_text()) if args.merge and (results / "latest.json").exists() else {}
    )
    points: dict[str, dict] = dict(previous.get("points", {}))
    weekly_windows: dict[str, dict] = dict(previous.get("weekly", {}).get("windows", {}))
    problems: list[str] = []
    with tempfile.TemporaryDirectory(prefix="bench-run-", dir="/tmp") as tmp:
        os.chmod(tmp, 0o755)
        work = Path(tmp)
        cluster = EmbeddedPostgres(data_dir=work / "pg", port=free_port())
        cluster.start()
        try:
            db = cluster.database_url()
            url = db.full_url()
            for rows in sorted(args.rows) if "sweep" in args.scenarios else []:
                seconds = seed(cluster.admin_url().full_url(), rows)  # the owner loads; contenders read as the app
                print(f"seeded {rows:,} rows in {seconds:.0f} s", flush=True)
                runs: dict[str, list[Measurement]] = {name: [] for name in args.contenders}
                for i in range(args.repeat):
                    order = args.contenders[i % len(args.contenders) :] + args.contenders[: i % len(args.contenders)]
                    for name in order if i % 2 == 0 else order[::-1]:
                        m = measure(name, rows, url, work, cap, args.timeout_min * 60)
                        runs[name].append(m)
                        print(
                            f"  {rows:>10,} {name:<12} {m.seconds:7.1f} s  {m.peak_rss_bytes / 2**30:5.2f} GiB"
                            f"  {m.error or ''} {m.detail or ''}",
                            flush=True,
                        )
                measured_at = now_utc()
                point = {name: {**summarise(r), "measured_at": measured_at} for name, r in runs.items()}
                points[str(rows)] = {**points.get(str(rows), {}), **point} if args.merge else point
                problems += [f"{rows}: {p}" for p in check_counts(points[str(rows)])]
            for rows in sorted(args.weekly_rows) if "weekly" in args.scenarios else []:
                point, found = weekly.run_window(
                    cluster.admin_url().full_url(),
                    url,
                    rows,
                    args.weekly_week_rows,
                    work,
                    cap,
                    args.timeout_min * 60,
                    args.weekly_repeat,
                    args.weekly_contenders,
                )
                old = weekly_windows.get(str(rows), {}).get("contenders", {}) if args.merge else {}
                weekly_windows[str(rows)] = {**point, "contenders": {**old, **point.get("contenders", {})}}
                problems += [f"weekly {rows}: {p}" for p in found]
        finally:
            cluster.stop()

    report = {
        "measured_at": now_utc(),
        "machine": {
            "cpus": os.cpu_count(),
            "platform": platform.platform(),
            "load_average_at_end": os.getloadavg(),
        },
        "cap_bytes": cap,
        "points": dict(sorted(points.items(), key=lambda kv: int(kv[0]))),
        "count_mismatches": problems,
    }
    if weekly_windows:
        windows = dict(sorted(weekly_windows.items(), key=lambda kv: int(kv[0])))
        report["weekly"] = {
            "first_sunday": weekly.FIRST_SUNDAY,
            "second_sunday": weekly.SECOND_SUNDAY,
            "week_rows": args.weekly_week_rows,
            "late_share": weekly.LATE_SHARE,
            "windows": windows,
            "targets": [t.to_dict() for t in evaluate(windows)],
        }
    results.mkdir(parents=True, exist_ok=True)
    (results / "latest.json").write_text(json.dumps(report, indent=2) + "\n")
    write_reports(report, results)
    print((results / "results.md").read_text())
    if problems:
        print("Row counts differ between contenders:\n  " + "\n  ".join(problems), file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
