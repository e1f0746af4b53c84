"""The class-data-sharing archive of Spark's classes: built once, named in the driver's options, mapped by its JVM."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from jobs.errors import ConfigError
from jobs.settings import Settings
from jobs.spark.class_archive import build, is_current, java_option
from jobs.spark.session import DRIVER_JAVA_OPTIONS, spark_conf

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_driver_of_a_session_maps_the_archive(spark, class_archive: Path) -> None:
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={class_archive}" in arguments
    # A JVM that cannot use the archive it was given shares nothing at all ("mixed mode" without ", sharing").
    assert "sharing" in jvm.java.lang.System.getProperty("java.vm.info")


def test_the_archive_is_named_only_when_it_exists(tmp_path: Path) -> None:
    settings = Settings.from_env(env={"SPARK_CLASS_ARCHIVE": str(tmp_path / "classes.jsa")}, root=REPO_ROOT)
    assert java_option(settings) is None
    assert "SharedArchiveFile" not in spark_conf(settings, require_jdbc=False).get(DRIVER_JAVA_OPTIONS, "")

    (tmp_path / "classes.jsa").write_bytes(b"archive")
    options = spark_conf(settings, require_jdbc=False)[DRIVER_JAVA_OPTIONS]
    assert options.endswith(f"-XX:SharedArchiveFile={tmp_path / 'classes.jsa'}")
    assert options.startswith("-XX:+UseParallelGC")  # spark-defaults.conf's options are kept, the archive appended


def test_off_turns_the_archive_off() -> None:
    settings = Settings.from_env(env={"SPARK_CLASS_ARCHIVE": "off"}, root=REPO_ROOT)
    assert settings.spark_class_archive is None and java_option(settings) is None
    with pytest.raises(ConfigError, match="SPARK_CLASS_ARCHIVE is set to 'off'"):
        build(settings)


def test_an_archive_the_jvm_rejects_is_not_current(class_archive: Path, tmp_path: Path) -> None:
    assert is_current(class_archive)
    assert not is_current(tmp_path / "missing.jsa")

    corrupt = tmp_path / "classes.jsa"
    corrupt.write_bytes(b"not an archive")
    shutil.copy(class_archive.with_suffix(".json"), corrupt.with_suffix(".json"))
    assert not is_current(corrupt)


def test_a_failed_step_says_what_failed_and_that_the_pipeline_still_runs(tmp_path: Path) -> None:
    from jobs.spark.class_archive import run_tool

    with pytest.raises(ConfigError, match=r"Could not dump \(.*no-such-java: No such file or directory\)") as e:
        run_tool([str(tmp_path / "no-such-java"), "-Xshare:dump"], "dump")
    assert "runs without the archive" in str(e.value)
