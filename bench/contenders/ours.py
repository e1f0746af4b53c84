"""Ours: ``retrain extract`` then ``retrain transform``, two processes as the Airflow DAG runs them.

Each step starts its own Spark session (start-up included in the time, as in production); the outputs' row counts
come from the transform summary the step writes. Arguments after the output folder are passed to both steps (the
weekly scenario passes ``--full-refresh``); the extract's mode and the rows it read in full are shown beside the
measurement, so an incremental run that silently read its window whole cannot pass as incremental.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from bench.common import DS, ROOT, bench_database_url, detail, report
from jobs.settings import Settings


def main(database_url: str, out_dir: str, step_args: list[str]) -> None:
    env = {**os.environ, "DATABASE_URL": database_url, "DATA_DIR": out_dir, "RETRAIN_HOME": str(ROOT)}
    seconds = {}
    for step in ("extract", "transform"):
        started = time.perf_counter()
        subprocess.run(
            [sys.executable, "-m", "jobs", step, "--ds", DS, *step_args],
            env=env,
            cwd=ROOT,
            check=True,
            stdout=subprocess.DEVNULL,
        )
        seconds[step] = time.perf_counter() - started
    folder = Settings.from_env(env=env, root=ROOT).run_folder(DS)
    summary = json.loads(folder.transform_summary.read_text())
    rows = {m["name"]: m["rows"] for m in summary["models"] if m["rows"] is not None}
    manifest = json.loads((folder.snapshot("predictions") / "_manifest.json").read_text())
    staging = next((m for m in summary["models"] if m["name"] == "stg_predictions"), {})
    staging_manifest = Path(staging["path"]) / "_manifest.json" if staging.get("path") else None
    built_on = (
        json.loads(staging_manifest.read_text()).get("previous_ds")
        if staging_manifest and staging_manifest.exists()
        else None
    )
    detail(
        step_seconds={k: round(v, 2) for k, v in seconds.items()},
        extract_mode=manifest.get("mode", "full"),
        rows_read_in_full=manifest.get("new_rows", manifest["rows"]),
        # inside the steps' Spark sessions, so the rest of step_seconds is start-up
        extract_read_seconds=manifest.get("duration_seconds"),
        transform_models_seconds=summary.get("duration_seconds"),
        staging_seconds=staging.get("seconds"),
        # the earlier output an incremental staging model built on (its JSON parsed only for records new to it)
        staging_built_on=built_on,
    )
    report(
        rows=manifest["rows"],
        quarantine=rows["quarantine"],
        **{k: v for k, v in rows.items() if k.endswith("_features")},
    )


if __name__ == "__main__":
    main(bench_database_url(), sys.argv[1], sys.argv[2:])
