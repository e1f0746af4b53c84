"""spark-defaults.conf parsing and the JDBC driver's search order."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import ConfigError, JdbcDriverNotFoundError
from jobs.settings import Settings
from jobs.spark.session import (
    DEBIAN_JDBC_JAR,
    fixed_heap_conf,
    log4j2_config,
    quiet_console_conf,
    read_spark_defaults,
    resolve_jdbc_driver,
    spark_conf,
    spark_log_file,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_project_defaults_turn_on_adaptive_execution() -> None:
    conf = read_spark_defaults(REPO_ROOT / "spark-defaults.conf")
    assert conf["spark.sql.adaptive.enabled"] == "true"
    assert conf["spark.sql.session.timeZone"] == "UTC"


def test_bad_line_names_file_and_line(tmp_path: Path) -> None:
    conf = tmp_path / "spark-defaults.conf"
    conf.write_text("# comment\nspark.sql.shuffle.partitions 4\nnot a setting\n")
    with pytest.raises(ConfigError, match=r"spark-defaults.conf, line 3"):
        read_spark_defaults(conf)


def test_explicit_jar_wins(tmp_path: Path) -> None:
    jar = tmp_path / "pg.jar"
    jar.write_bytes(b"")
    settings = Settings.from_env(env={"SPARK_JDBC_JAR": str(jar)}, root=tmp_path)
    assert resolve_jdbc_driver(settings, {"spark.jars": "/x/other.jar"}) == {"spark.jars": f"/x/other.jar,{jar}"}


def test_missing_explicit_jar_is_a_clear_error(tmp_path: Path) -> None:
    settings = Settings.from_env(env={"SPARK_JDBC_JAR": str(tmp_path / "nope.jar")}, root=tmp_path)
    with pytest.raises(JdbcDriverNotFoundError, match="SPARK_JDBC_JAR points at .*nope.jar, which does not exist"):
        resolve_jdbc_driver(settings, {})


def test_a_missing_spark_defaults_conf_named_explicitly_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"SPARK_DEFAULTS_CONF setting names .*elsewhere.conf, which is not a file"):
        Settings.from_env(env={"SPARK_DEFAULTS_CONF": "elsewhere.conf"}, root=tmp_path)


def test_spark_jars_entry_then_debian_jar(tmp_path: Path) -> None:
    settings = Settings.from_env(env={}, root=tmp_path)
    jar = tmp_path / "postgresql-42.jar"
    jar.write_bytes(b"")
    assert resolve_jdbc_driver(settings, {"spark.jars": str(jar)}) == {}
    if DEBIAN_JDBC_JAR.is_file():
        assert resolve_jdbc_driver(settings, {}) == {"spark.jars": str(DEBIAN_JDBC_JAR)}


def test_no_driver_lists_every_way_to_get_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("jobs.spark.session.DEBIAN_JDBC_JAR", tmp_path / "absent.jar")
    settings = Settings.from_env(env={}, root=tmp_path)
    with pytest.raises(JdbcDriverNotFoundError) as info:
        resolve_jdbc_driver(settings, {"spark.jars": "/gone/postgresql.jar"})
    message = str(info.value)
    for hint in ("SPARK_JDBC_JAR", "spark.jars", "libpostgresql-jdbc-java", "spark.jars.packages", "/gone/postgresql"):
        assert hint in message
    assert resolve_jdbc_driver(settings, {"spark.jars.packages": "org.postgresql:postgresql:42.7.4"}) == {}


def test_settings_master_overrides_the_file(tmp_path: Path) -> None:
    settings = Settings.from_env(env={"SPARK_MASTER": "spark://127.0.0.1:7077"}, root=REPO_ROOT)
    assert spark_conf(settings)["spark.master"] == "spark://127.0.0.1:7077"


def test_session_uses_project_defaults(spark) -> None:
    assert spark.conf.get("spark.sql.adaptive.enabled") == "true"
    assert spark.conf.get("spark.sql.session.timeZone") == "UTC"


def test_spark_logs_to_a_file_and_the_console_stays_quiet(tmp_path: Path) -> None:
    log_file = tmp_path / "run logs" / "spark.log"
    conf = quiet_console_conf({"spark.driver.extraJavaOptions": "-XX:+UseG1GC"}, log_file)
    options = conf["spark.driver.extraJavaOptions"]
    assert options.startswith("-XX:+UseG1GC ")
    assert f"-Dlog4j2.configurationFile={log4j2_config().as_uri()}" in options
    assert f'"-Dretrain.spark.log={log_file}"' in options  # quoted: the path has a space
    assert conf["spark.retrain.logFile"] == str(log_file)
    shipped = log4j2_config().read_text()
    assert "appender.console.filter.threshold.level = fatal" in shipped
    assert "alwaysWriteExceptions = false" in shipped and "${sys:retrain.spark.log" in shipped


def test_an_operators_log4j2_configuration_wins(tmp_path: Path) -> None:
    mine = {"spark.driver.extraJavaOptions": "-Dlog4j2.configurationFile=file:/etc/spark/log4j2.properties"}
    assert quiet_console_conf(mine, tmp_path / "spark.log") == {}


def test_the_session_logs_to_its_file(spark, settings) -> None:
    log_file = spark_log_file()
    assert log_file == settings.data_dir / "logs" / "spark-retrain-tests.log"
    assert "Running Spark version" in log_file.read_text()


def test_the_driver_heap_is_touched_whole_at_start(spark) -> None:
    """-Xms follows spark.driver.memory wherever it is set (here the tests' override), so the heap cannot grow."""
    runtime = spark.sparkContext._jvm.java.lang.management.ManagementFactory.getRuntimeMXBean()
    arguments = list(runtime.getInputArguments())
    assert {"-Xms2g", "-Xmx2g", "-XX:+AlwaysPreTouch"} <= set(arguments)


def test_an_initial_heap_is_set_only_with_pre_touch_and_never_over_an_operators() -> None:
    pre_touch = {"spark.driver.extraJavaOptions": "-XX:+AlwaysPreTouch -XX:+UseParallelGC"}
    assert fixed_heap_conf({**pre_touch, "spark.driver.memory": "4g"}) == {
        "spark.driver.extraJavaOptions": "-Xms4g -XX:+AlwaysPreTouch -XX:+UseParallelGC"
    }
    assert fixed_heap_conf(pre_touch)["spark.driver.extraJavaOptions"].startswith("-Xms1g ")  # Spark's default
    assert fixed_heap_conf({"spark.driver.extraJavaOptions": "-Xms512m -XX:+AlwaysPreTouch"}) == {}
    assert fixed_heap_conf({"spark.driver.extraJavaOptions": "-XX:+UseParallelGC", "spark.driver.memory": "4g"}) == {}


def test_the_jvms_stderr_lines_are_logged_at_the_level_they_state(caplog: pytest.LogCaptureFixture) -> None:
    """A child started inside the block (as PySpark starts the driver JVM) writes to the pipe, not to stderr."""
    import logging
    import subprocess
    import time

    from jobs.spark.session import jvm_line_level, jvm_stderr_logged

    script = 'echo "WARNING: Using incubator modules: jdk.incubator.vector" >&2; echo "boom" >&2'
    with caplog.at_level(logging.INFO, logger="jobs.spark.jvm"):
        with jvm_stderr_logged():
            subprocess.run(["sh", "-c", script], check=True)
        deadline = time.monotonic() + 10  # the child has exited: its lines are read, or about to be
        while len(caplog.records) < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
    assert [(r.levelname, r.getMessage()) for r in caplog.records] == [
        ("WARNING", "WARNING: Using incubator modules: jdk.incubator.vector"),
        ("ERROR", "boom"),
    ]
    assert jvm_line_level("26/12/06 20:23:11 FATAL SparkContext: no memory") == logging.CRITICAL
    assert jvm_line_level("26/12/06 20:23:11 INFO Utils: started") == logging.INFO
