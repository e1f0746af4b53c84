"""The child process of ``retrain class-archive``: runs a small Spark workload shaped like the steps, with the JVM's
class list on, and describes the JVM it ran in.

It is a program of its own (``python -m jobs.spark.class_list``) because the list is complete only when the JVM
exits, and because it starts a session through :mod:`jobs.spark.session`, which itself reads the archive.
"""

from __future__ import annotations

import json
import os
import sys
from dataclasses import asdict
from pathlib import Path

from jobs.settings import Settings
from jobs.spark.class_archive import ARCHIVE_FORMAT, DriverJvm
from jobs.spark.session import DRIVER_JAVA_OPTIONS, quote_java_option, read_spark_defaults, spark_session

WORKLOAD_ROWS = 20_000
WORKLOAD_MASTER = "local[2]"  # the workload lists the driver's classes; it never needs a cluster
DERBY_DRIVER = "org.apache.derby.jdbc.EmbeddedDriver"


def list_classes(class_list: Path, description: Path, folder: Path, spark_log: Path) -> None:
    """The child process: run the sample workload with the class list on, and describe the JVM it ran in."""
    # The parent's environment: the same spark-defaults.conf, JAVA_HOME and PySpark. Never a Spark Connect client
    # (PySpark makes any session one while SPARK_REMOTE is set): the archive is of the classes a driver JVM loads.
    os.environ.pop("SPARK_REMOTE", None)
    settings = Settings.from_env()
    options = read_spark_defaults(settings.spark_defaults_conf).get(DRIVER_JAVA_OPTIONS, "")
    listing = quote_java_option(f"-XX:DumpLoadedClassList={class_list}")
    spark = spark_session(
        settings,
        "retrain-class-archive",
        require_jdbc=False,
        overrides={DRIVER_JAVA_OPTIONS: f"{options} {listing}".strip(), "spark.master": WORKLOAD_MASTER},
        log_file=spark_log,
    )
    jvm = spark.sparkContext._jvm
    system = jvm.java.lang.System
    system.setProperty("derby.system.home", str(folder))  # Derby writes derby.log there, not in the current folder
    _sample_workload(spark, folder)
    # The launcher's own -cp (with its jars/* wildcard): the expanded java.class.path does not match at run time.
    arguments = list(jvm.java.lang.ProcessHandle.current().info().arguments().get())
    described = DriverJvm(
        java=str(Path(system.getProperty("java.home")) / "bin" / "java"),
        class_path=arguments[arguments.index("-cp") + 1],
        vm_options=[a for a in arguments if a.startswith(("--add-modules", "-Xmx"))],
        archive_format=ARCHIVE_FORMAT,
    )
    description.write_text(json.dumps(asdict(described)), encoding="utf-8")
    spark.stop()


def _sample_workload(spark, folder: Path) -> None:
    """What the steps do, in miniature, so that their classes are listed (Derby, in Spark's jars, stands in for
    PostgreSQL behind Spark's JDBC source)."""
    spark.read.jdbc(
        "jdbc:derby:memory:retrain;create=true", "SYS.SYSTABLES", properties={"driver": DERBY_DRIVER}
    ).count()
    spark.range(WORKLOAD_ROWS).selectExpr(
        "id",
        "id % 97 AS user_id",
        "ELT(CAST(id % 3 AS INT) + 1, 'diabetes', 'heart', 'liver') AS record_type",
        "to_json(named_struct('age', id % 90, 'bmi', '31.2', 'sex', 'female', 'smoker', true)) AS data",
        "TIMESTAMP '2026-11-01 00:00:00' + make_interval(0, 0, 0, 0, 0, 0, id % 5000) AS created_at",
    ).write.parquet(str(folder / "raw"))
    spark.read.parquet(str(folder / "raw")).createOrReplaceTempView("raw")
    staged = spark.sql("""
        WITH repeats AS (
          SELECT id FROM (
            SELECT /*+ BROADCAST(groups) */
              id, ROW_NUMBER() OVER (PARTITION BY user_id, data, created_at ORDER BY id) AS occurrence
            FROM raw LEFT SEMI JOIN (
              SELECT DISTINCT hash FROM (
                SELECT xxhash64(user_id, created_at) AS hash,
                       COUNT(*) OVER (PARTITION BY xxhash64(user_id, created_at)) AS group_rows
                FROM raw
              ) WHERE group_rows > 1
            ) AS groups ON xxhash64(user_id, created_at) = groups.hash
          ) WHERE occurrence > 1
        ), parsed AS (
          SELECT raw.*, from_json(data, 'age STRING, bmi STRING, sex STRING, smoker STRING, _corrupt STRING',
                                  map('columnNameOfCorruptRecord', '_corrupt')) AS doc
          FROM raw
        )
        SELECT /*+ BROADCAST(repeats) */
          parsed.id, record_type, TRY_CAST(TRIM(doc.age) AS DOUBLE) AS age, NULLIF(LOWER(doc.sex), '') AS sex,
          CASE LOWER(doc.smoker) WHEN 'true' THEN 1 WHEN 'false' THEN 0 END AS smoker,
          get_json_object(data, '$.bmi') AS bmi, DATE_FORMAT(created_at, 'yyyy-MM') AS created_month,
          repeats.id IS NOT NULL AS is_repeat
        FROM parsed LEFT JOIN repeats ON repeats.id = parsed.id
    """)
    from pyspark.sql import Observation
    from pyspark.sql import functions as F  # noqa: N812

    observation = Observation("sample")  # a table's row count and row-level tests are observed while it is written
    staged.observe(
        observation, F.expr("COUNT(*)").alias("rows"), F.expr("COUNT_IF(age IS NULL)").alias("missing")
    ).write.parquet(str(folder / "staged"))
    _ = observation.get
    features = spark.read.parquet(str(folder / "staged")).where("NOT is_repeat")
    features.repartition(2, "created_month").write.partitionBy("created_month").parquet(str(folder / "features"))
    table = spark.read.parquet(str(folder / "features"))
    table.cache().count()
    table.groupBy("record_type").agg({"age": "avg", "id": "count"}).collect()
    table.selectExpr("COUNT(*) - COUNT(DISTINCT id) AS repeated", "COUNT_IF(sex IS NULL) AS missing").collect()


if __name__ == "__main__":
    list_classes(*(Path(arg) for arg in sys.argv[1:5]))
