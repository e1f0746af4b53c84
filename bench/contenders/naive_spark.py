"""A first draft in Spark: the pipeline's own steps in one session, but the JDBC read as a first draft writes it:
one partition (one connection, one core) and no ``fetchsize`` (the PostgreSQL driver then holds the whole result
in the JVM's memory before Spark sees the first row).
"""

from __future__ import annotations

import dataclasses
import sys

from bench.common import DS, ROOT, bench_database_url, report


def main(database_url: str, out_dir: str) -> None:
    from jobs.extract import extract
    from jobs.run_context import RunContext
    from jobs.settings import Settings
    from jobs.spark.session import spark_session
    from jobs.transform import transform

    settings = Settings.from_env(env={"DATABASE_URL": database_url, "DATA_DIR": out_dir}, root=ROOT)
    # fetchsize=0 is below what the settings accept (they exist to stop this), so it is set directly.
    settings = dataclasses.replace(settings, jdbc_num_partitions=1, jdbc_fetchsize=0)
    spark = spark_session(settings, "bench-naive-spark")
    ctx = RunContext.for_ds(DS)
    extracted = extract(settings, ctx, spark)
    result = transform(settings, ctx, spark)
    report(
        rows=extracted.rows,
        quarantine=result.rows("quarantine") or 0,
        **{m.name: m.rows for m in result.models if m.name.endswith("_features")},
    )


if __name__ == "__main__":
    main(bench_database_url(), sys.argv[1])
