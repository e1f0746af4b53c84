"""spark-defaults.conf parsing and the JDBC driver's search order."""

from __future__ import annotations

from pathlib import Path

import pytest

from jobs.errors import ConfigError, JdbcDriverNotFoundError
from jobs.settings import Settings
from jobs.spark.session import DEBIAN_JDBC_JAR, read_spark_defaults, resolve_jdbc_driver, spark_conf

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
