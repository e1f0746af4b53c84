"""Data tests: one Spark query per model (what transform runs) against one query per test (what it used to run).

The demo's records go through the real SQL project (staging view cached, feature and quarantine tables written),
then every data test of ``sql/`` is computed both ways, alternating, after a warm-up. Both ways give the same
failure counts (asserted); the figure is the ratio of median times (one pass / one per test), so the machine's speed
cancels out.

    .venv/bin/python -m bench.datatests_one_pass                 # 200,000 demo records
    .venv/bin/python -m bench.datatests_one_pass --rows 1000000 --repeat 5

Prints a table and writes bench/results/datatests_one_pass.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from pathlib import Path

from bench.json_parsing import write_snapshot

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()

    from jobs.run_context import RunContext
    from jobs.settings import Settings
    from jobs.spark.session import spark_session
    from jobs.sqlproject.compiled import CompiledProject
    from jobs.sqlproject.datatests import run_tests
    from jobs.sqlproject.project import load_project
    from jobs.sqlproject.runner import SqlRunner
    from jobs.sqlproject.sources import snapshot_reader

    with tempfile.TemporaryDirectory(prefix="bench-datatests-") as tmp:
        raw = Path(tmp) / "raw"
        write_snapshot(args.rows, 42, raw)
        settings = Settings.from_env(root=ROOT)
        spark = spark_session(settings, "bench-datatests", require_jdbc=False, overrides={"spark.ui.enabled": "false"})
        compiled = CompiledProject.build(load_project(ROOT / "sql"), RunContext.for_ds("2026-11-22"))
        runner = SqlRunner(spark, compiled, Path(tmp) / "features")
        runner.run(snapshot_reader(raw), keep_cache=True)
        tests = list(compiled.tests)

        def one_pass() -> list[int]:
            return [r.failures for r in run_tests(spark, tests)]

        def one_per_test() -> list[int]:
            return [r.failures for test in tests for r in run_tests(spark, [test])]

        ways = {"one query per model": one_pass, "one query per test": one_per_test}
        assert one_pass() == one_per_test()  # warm-up, and the same answers
        times: dict[str, list[float]] = {name: [] for name in ways}
        for i in range(args.repeat):
            for name in ways if i % 2 == 0 else reversed(list(ways)):
                started = time.perf_counter()
                ways[name]()
                times[name].append(time.perf_counter() - started)
        runner.release_cache()
        spark.stop()

    medians = {name: statistics.median(values) for name, values in times.items()}
    ratio = round(medians["one query per model"] / medians["one query per test"], 2)
    models = len({t.model for t in tests})
    print(f"{len(tests)} data tests on {models} models, {args.rows:,} records")
    print(f"{'':>22} {'median s':>9}  runs")
    for name in ways:
        print(f"{name:>22} {medians[name]:>9.2f}  {', '.join(f'{t:.2f}' for t in times[name])}")
    print(f"time ratio one-per-model / one-per-test: {ratio}")
    out = ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    report = {
        "rows": args.rows,
        "tests": len(tests),
        "models": models,
        "times": times,
        "ratio_one_pass_over_one_per_test": ratio,
    }
    (out / "datatests_one_pass.json").write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
