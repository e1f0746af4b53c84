"""Does parsing the JSON once pay? The staging model with Spark's shared get_json_object parsing on and off.

stg_predictions reads about twenty keys of each record's ``data`` with ``get_json_object``; by default Spark parses
the JSON text once per key. ``spark.sql.optimizer.getJsonObjectSharedParsing.enabled`` parses it once per row.
Both settings run the same plan on the same data in one session, alternating, after a warm-up; the figure is the
ratio of median times (on / off), so the machine's speed cancels out.

    .venv/bin/python -m bench.json_parsing                 # 300,000 demo records
    .venv/bin/python -m bench.json_parsing --rows 1000000 --repeat 5

Prints a table and writes bench/results/json_parsing.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SETTING = "spark.sql.optimizer.getJsonObjectSharedParsing.enabled"


def write_snapshot(rows: int, seed: int, raw_dir: Path) -> None:
    """The demo generator's records as the raw Parquet snapshot ``retrain extract`` would have written."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from jobs.demo.generator import generate

    records = generate(rows, seed).records
    target = raw_dir / "predictions"
    target.mkdir(parents=True)
    table = pa.Table.from_pandas(records, preserve_index=False)
    pq.write_table(table, target / "part-0.parquet", coerce_timestamps="us", allow_truncated_timestamps=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=300_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from jobs.run_context import RunContext
    from jobs.settings import Settings
    from jobs.spark.session import spark_session
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.project import load_project
    from jobs.sqlproject.runner import SqlRunner
    from jobs.sqlproject.sources import register_sources, snapshot_reader

    with tempfile.TemporaryDirectory(prefix="bench-json-") as tmp:
        raw = Path(tmp) / "raw"
        write_snapshot(args.rows, 42, raw)
        settings = Settings.from_env(root=ROOT)
        spark = spark_session(
            settings, "bench-json-parsing", require_jdbc=False, overrides={"spark.ui.enabled": "false"}
        )
        project = load_project(ROOT / "sql")
        runner = SqlRunner(spark, CompiledProject.build(project, RunContext.for_ds("2026-11-22")))
        register_sources(spark, project.sources.values(), snapshot_reader(raw))
        staging = runner.dataframe(runner.rendered["stg_predictions"])

        def run(shared: bool) -> float:
            spark.conf.set(SETTING, str(shared).lower())
            started = time.perf_counter()
            staging.write.format("noop").mode("overwrite").save()
            return time.perf_counter() - started

        run(False), run(True)  # warm-up: JIT, file cache
        times: dict[bool, list[float]] = {False: [], True: []}
        for i in range(args.repeat):
            for shared in (False, True) if i % 2 == 0 else (True, False):
                times[shared].append(run(shared))

    medians = {shared: statistics.median(values) for shared, values in times.items()}
    ratio = round(medians[True] / medians[False], 2)
    print(f"{'shared parsing':>15} {'median s':>9}  runs")
    for shared in (False, True):
        print(f"{str(shared):>15} {medians[shared]:>9.2f}  {', '.join(f'{t:.2f}' for t in times[shared])}")
    print(f"time ratio shared/separate on {args.rows:,} records: {ratio}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    report = {"rows": args.rows, "times": {str(k): v for k, v in times.items()}, "ratio_shared_over_separate": ratio}
    (out / "json_parsing.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
