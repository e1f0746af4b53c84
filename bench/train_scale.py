"""Training time and peak memory of the three recipes at 1,000,000 rows each, against 100,000 rows as the baseline;
and reading a feature table with pyarrow vs Spark (``toPandas``), the choice ``jobs/ml/dataset.py`` makes.

Feature tables shaped like the SQL models' output (``record_id``, ``created_at``, raw inputs, ``age_band``, ``label``
with 20% unverified, Parquet partitioned by ``created_month``) are drawn from the demo's clinical model
(``jobs.demo.clinical``). Each (model, rows) runs ``jobs.train.train_one`` in a fresh process, so its peak resident
memory (VmHWM) is its own: read + hashed split + fit + holdout scoring + writing the version to a store.

    .venv/bin/python -m bench.train_scale                     # 1,000,000 rows vs 100,000
    .venv/bin/python -m bench.train_scale --rows 200000 --baseline 20000 --no-spark

Prints a table and writes bench/results/train_scale.json. Not part of `make test`.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("diabetes", "heart", "liver")
BANDS = np.array(["under_30", "30-44", "45-59", "60-74", "75+"], dtype=object)


def write_feature_table(path: Path, model: str, rows: int, seed: int = 0) -> None:
    """``rows`` records of ``model`` over six months, the outcome drifting as in the demo data."""
    from jobs.demo.clinical import MODELS as CLINICAL
    from jobs.demo.clinical import sigmoid

    rng = np.random.default_rng(seed)
    age = rng.integers(18, 92, rows)
    clinical = CLINICAL[model]
    values = clinical.sample(rng, age, rng.random(rows) < 0.5)
    t = np.sort(rng.random(rows))
    label = (rng.random(rows) < sigmoid(clinical.logit(values, t))).astype(float)
    label[rng.random(rows) < 0.2] = np.nan
    created = np.datetime64("2026-05-24T00:00:00") + (t * 182 * 86400).astype("timedelta64[s]")
    frame = pd.DataFrame(
        {
            "record_id": np.arange(1, rows + 1, dtype=np.int64),
            "created_at": created,
            "model_version": "v1",
            "prediction": "Low Risk",
        }
    )
    for feature in clinical.features:
        column = values[feature.key]
        frame[feature.key] = column.astype(object) if feature.kind == "category" else column.astype(float)
    frame["age_band"] = BANDS[np.searchsorted([30, 45, 60, 75], age, side="right")]
    frame["label"] = pd.array(label, dtype="Int32")
    frame["created_month"] = frame["created_at"].dt.strftime("%Y-%m")
    pq.write_to_dataset(pa.Table.from_pandas(frame, preserve_index=False), path, partition_cols=["created_month"])


def peak_rss_mb() -> float:
    """This process's own resident-memory high-water mark (VmHWM; reset at exec, unlike rusage's ru_maxrss, which
    also counts the parent's pages a forked child held before exec)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def child(model: str | None, table: Path | None, store: Path | None) -> None:
    """One training run, timed by phase; prints one JSON line. Without a model: only the imports (the floor)."""
    from jobs.ml.dataset import read_feature_table
    from jobs.ml.recipes import load_recipes
    from jobs.ml.store import ModelStore
    from jobs.train import train_one

    if model is None:
        print(json.dumps({"peak_rss_mb": peak_rss_mb()}))
        return

    recipe = load_recipes(ROOT / "models")[model]
    started = time.perf_counter()
    frame = read_feature_table(table, recipe)
    read = time.perf_counter() - started
    outcome = train_one(recipe, frame, store=ModelStore(store), ds="2026-11-22", provenance={"sql": {}})
    total = time.perf_counter() - started
    print(
        json.dumps(
            {
                "read_s": read,
                "total_s": total,
                "train_rows": outcome.train_rows,
                "peak_rss_mb": peak_rss_mb(),
                "accuracy": outcome.metrics["accuracy"] if outcome.metrics else None,
            }
        )
    )


def measure(model: str, table: Path, store: Path) -> dict:
    """Run :func:`child` in a fresh interpreter; its timings and its own peak RSS."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.train_scale", "--child", model, str(table), str(store)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        raise RuntimeError(f"training {model} failed: {done.stderr[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def idle_rss_mb() -> float:
    """Peak RSS of an interpreter that only imports what training imports: the floor under every figure."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.train_scale", "--child", "-", "-", "-"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout.strip().splitlines()[-1])["peak_rss_mb"]


def spark_read_seconds(table: Path, columns: list[str]) -> float:
    from jobs.settings import Settings
    from jobs.spark.session import spark_session

    settings = Settings.from_env(env={"SPARK_MASTER": "local[2]"}, root=ROOT)
    spark = spark_session(settings, "bench-train-read", overrides={"spark.ui.enabled": "false"})
    try:
        spark.read.parquet(str(table)).select(*columns).limit(10).toPandas()  # warm up the JVM and the reader
        started = time.perf_counter()
        spark.read.parquet(str(table)).select(*columns).toPandas().sort_values("record_id")
        return time.perf_counter() - started
    finally:
        spark.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline", type=int, default=100_000)
    parser.add_argument("--no-spark", action="store_true", help="skip the pyarrow vs Spark read comparison")
    parser.add_argument("--child", nargs=3, metavar=("MODEL", "TABLE", "STORE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        model, table, store = args.child
        child(None if model == "-" else model, Path(table), Path(store))
        return

    results = []
    spark_vs_arrow = None
    with tempfile.TemporaryDirectory(prefix="train-bench-") as tmp:
        for rows in (args.baseline, args.rows):
            for model in MODELS:
                table = Path(tmp) / f"{model}-{rows}"
                write_feature_table(table, model, rows)
                r = measure(model, table, Path(tmp) / "store")
                results.append(
                    {
                        "model": model,
                        "rows": rows,
                        **{k: round(v, 3) if isinstance(v, float) else v for k, v in r.items()},
                    }
                )
        if not args.no_spark:
            from jobs.ml.recipes import load_recipes

            recipe = load_recipes(ROOT / "models")["diabetes"]
            table = Path(tmp) / f"diabetes-{args.rows}"
            arrow = min(measure("diabetes", table, Path(tmp) / "store")["read_s"] for _ in range(2))
            spark = spark_read_seconds(table, list(recipe.columns))
            spark_vs_arrow = {
                "rows": args.rows,
                "pyarrow_s": round(arrow, 2),
                "spark_topandas_s": round(spark, 2),
                "ratio": round(spark / arrow, 2),
            }
    floor = idle_rss_mb()

    print(f"{'model':<10} {'rows':>10} {'read s':>8} {'total s':>8} {'peak RSS MB':>12} {'x time':>7} {'x memory':>9}")
    for r in results:
        base = next(b for b in results if b["model"] == r["model"] and b["rows"] == args.baseline)
        print(
            f"{r['model']:<10} {r['rows']:>10,} {r['read_s']:>8.2f} {r['total_s']:>8.2f} {r['peak_rss_mb']:>12.0f} "
            f"{r['total_s'] / base['total_s']:>7.1f} {r['peak_rss_mb'] / base['peak_rss_mb']:>9.2f}"
        )
    print(f"(an interpreter that only imports the training modules peaks at {floor:.0f} MB)")
    if spark_vs_arrow:
        print(
            f"reading diabetes at {args.rows:,} rows: pyarrow {spark_vs_arrow['pyarrow_s']} s, Spark + toPandas "
            f"{spark_vs_arrow['spark_topandas_s']} s ({spark_vs_arrow['ratio']}x)"
        )
    out = ROOT / "bench" / "results" / "train_scale.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps({"results": results, "import_floor_mb": floor, "read": spark_vs_arrow}, indent=2) + "\n")
    print(f"written to {out.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
