"""Does extraction stream? Peak JVM memory of `retrain extract` at 200k and 1M rows, streaming vs not.

Each measurement runs in a fresh process (a fresh JVM with a 1 GiB heap) so peaks do not carry over. The baseline
is the same read with ``fetchsize=0``, where the PostgreSQL driver buffers each partition's whole result: its peak
grows with the row count, while the streaming read's should not.

    .venv/bin/python -m bench.extract_memory            # seeds its own throwaway PostgreSQL
    .venv/bin/python -m bench.extract_memory --rows 200000 1000000 --partitions 4
    .venv/bin/python -m bench.extract_memory --heap 512m   # streaming fits; fetchsize=0 runs out of memory

Prints a table and writes bench/results/extract_memory_<heap>.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

from jobs.errors import failure_line

ROOT = Path(__file__).resolve().parents[1]
DS = "2026-06-01"
ROWS_PER_DAY = 10_000


def seed(db_kwargs: dict, rows: int) -> None:
    """``rows`` records of realistic size, ROWS_PER_DAY per day going back from the run's end, all consented."""
    import psycopg2

    with psycopg2.connect(**db_kwargs) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE health_records, users RESTART IDENTITY CASCADE")
        cur.execute("INSERT INTO users SELECT g, true FROM generate_series(1, 1000) g")
        cur.execute(
            """
            INSERT INTO health_records (user_id, record_type, data, prediction, confidence, model_version,
                                        verified_outcome, created_at)
            SELECT 1 + g %% 1000, 'diabetes',
                   json_build_object('age', 20 + g %% 60, 'bmi', 18 + (g %% 200) / 10.0, 'glucose', 70 + g %% 130,
                                     'blood_pressure', 60 + g %% 40, 'insulin', g %% 300, 'pregnancies', g %% 6,
                                     'family_history', g %% 3 = 0, 'physical_activity', 'moderate')::text,
                   'Low Risk', 0.75, 'v1', CASE WHEN g %% 2 = 0 THEN 'negative' END,
                   TIMESTAMPTZ %s - make_interval(secs => g * 86400.0 / %s)
            FROM generate_series(1, %s) g
            """,
            (f"{DS} 00:00:00+00", ROWS_PER_DAY, rows),
        )


def measure(database_url: str, rows: int, fetchsize: int, partitions: int, data_dir: str, heap: str) -> dict:
    """Run one extraction in a child process and return its peaks."""
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DATA_DIR": data_dir,
        "BENCH_FETCHSIZE": str(fetchsize),
        "BENCH_HEAP": heap,
        "JDBC_NUM_PARTITIONS": str(partitions),
        "SPARK_MASTER": "local[2]",
    }
    days = max(1, rows // ROWS_PER_DAY)
    out = subprocess.run(
        [sys.executable, "-m", "bench.extract_memory", "--child", "--lookback-days", str(days)],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    if out.returncode != 0:
        return {"rows": rows, "fetchsize": fetchsize, "error": failure_line(out.stderr)[:200]}
    return {"rows": rows, "fetchsize": fetchsize, **json.loads(out.stdout.strip().splitlines()[-1])}


def child(lookback_days: int) -> None:
    """Inside the measured process: extract once and print the JVM's peak heap figures as JSON."""
    from jobs.extract import extract
    from jobs.run_context import RunContext
    from jobs.settings import Settings
    from jobs.spark.session import spark_session

    # fetchsize=0 (the baseline) is below what the settings accept, so the child sets it directly.
    settings = dataclasses.replace(Settings.from_env(root=ROOT), jdbc_fetchsize=int(os.environ["BENCH_FETCHSIZE"]))
    gc_log = Path(tempfile.mkdtemp(prefix="bench-gc-")) / "gc.log"
    spark = spark_session(
        settings,
        "bench-extract-memory",
        overrides={
            "spark.driver.memory": os.environ["BENCH_HEAP"],
            "spark.ui.enabled": "false",
            # Heap after each collection = what the JVM really holds, free of young-generation garbage.
            "spark.driver.extraJavaOptions": f"-Xlog:gc:file={gc_log}",
            # Parquet buffers a whole row group (128 MB by default) per writing task before flushing it; a small
            # row group keeps that buffer below the partition size, so what remains is the JDBC read's own memory.
            "spark.hadoop.parquet.block.size": str(8 << 20),
        },
    )
    jvm = spark._jvm
    pools = [
        p for p in jvm.java.lang.management.ManagementFactory.getMemoryPoolMXBeans() if p.getType().name() == "HEAP"
    ]
    jvm.java.lang.System.gc()
    for pool in pools:
        pool.resetPeakUsage()
    result = extract(settings, RunContext.for_ds(DS), spark, vars_overrides={"lookback_days": lookback_days})
    peak_heap = sum(p.getPeakUsage().getUsed() for p in pools)
    old_gen = sum(p.getPeakUsage().getUsed() for p in pools if "Old" in p.getName() or "Tenured" in p.getName())
    jvm.java.lang.System.gc()  # flush the log with a final collection
    after_gc = [int(m) for m in re.findall(r"\d+M->(\d+)M\(", gc_log.read_text())] or [0]
    print(
        json.dumps(
            {
                "extracted": result.rows,
                "peak_heap_mb": round(peak_heap / 2**20, 1),
                "peak_old_gen_mb": round(old_gen / 2**20, 1),
                "peak_live_after_gc_mb": max(after_gc),
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, nargs=2, default=[200_000, 1_000_000], metavar=("SMALL", "LARGE"))
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--heap", default="1g", help="the measured JVM's heap (-Xmx); a small one shows who runs out")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--lookback-days", type=int, default=20, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(args.lookback_days)
        return

    from jobs.postgres.embedded import EmbeddedPostgres
    from tests.conftest import free_port

    with tempfile.TemporaryDirectory(prefix="bench-extract-") as tmp:
        os.chmod(tmp, 0o755)
        cluster = EmbeddedPostgres(data_dir=Path(tmp) / "pg", port=free_port())
        cluster.start()
        try:
            db = cluster.database_url()
            seed(cluster.admin_url().psycopg_kwargs(), max(args.rows))  # the tables' owner loads
            url = db.full_url()
            results = [
                measure(url, rows, fetchsize, args.partitions, str(Path(tmp) / "data"), args.heap)
                for fetchsize in (10_000, 0)
                for rows in args.rows
            ]
        finally:
            cluster.stop()

    small, large = args.rows
    by = {(r["fetchsize"], r["rows"]): r for r in results}
    print(f"{'fetchsize':>9} {'rows':>9} {'peak heap MB':>13} {'peak old gen MB':>16} {'peak live after GC MB':>22}")
    for r in results:
        print(
            f"{r['fetchsize']:>9} {r['rows']:>9} {r.get('peak_heap_mb', r.get('error')):>13} "
            f"{r.get('peak_old_gen_mb', ''):>16} {r.get('peak_live_after_gc_mb', ''):>22}"
        )
    ratios = {}
    for fetchsize, label in ((10_000, "streaming"), (0, "baseline_fetchsize_0")):
        a, b = by[(fetchsize, small)], by[(fetchsize, large)]
        for metric in ("peak_heap_mb", "peak_live_after_gc_mb"):
            if a.get(metric) and b.get(metric):
                ratios[f"{label}:{metric}"] = round(b[metric] / a[metric], 2)
            else:
                ratios[f"{label}:{metric}"] = "failed: " + b.get("error", a.get("error", "no reading"))
    print(f"peak heap ratio {large}/{small} rows: {ratios}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    report = {"heap": args.heap, "results": results, "ratios": ratios}
    (out / f"extract_memory_{args.heap}.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
