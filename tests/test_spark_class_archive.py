"""The class-data-sharing archive of Spark's classes: built once, named in the driver's options, mapped by its JVM."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from jobs import cli
from jobs.errors import ConfigError
from jobs.settings import Settings
from jobs.spark.class_archive import build, is_current, java_option, run_tool
from jobs.spark.session import DRIVER_JAVA_OPTIONS, read_spark_defaults, spark_conf

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_the_driver_of_a_session_maps_the_archive(spark, class_archive: Path | None) -> None:
    assert class_archive is not None, "the class archive could not be built: see the warning in the summary"
    jvm = spark.sparkContext._jvm
    arguments = list(jvm.java.lang.management.ManagementFactory.getRuntimeMXBean().getInputArguments())
    assert f"-XX:SharedArchiveFile={class_archive}" in arguments
    # A JVM that cannot use the archive it was given shares nothing at all ("mixed mode" without ", sharing").
    assert "sharing" in jvm.java.lang.System.getProperty("java.vm.info")


def test_the_archive_is_named_only_when_it_exists_and_quoted_when_its_path_has_a_space(tmp_path: Path) -> None:
    archive = tmp_path / "my project" / "classes.jsa"
    settings = Settings.from_env(env={"SPARK_CLASS_ARCHIVE": str(archive)}, root=REPO_ROOT)
    assert java_option(settings) is None
    assert "SharedArchiveFile" not in spark_conf(settings, require_jdbc=False).get(DRIVER_JAVA_OPTIONS, "")

    archive.parent.mkdir()
    archive.write_bytes(b"archive")
    options = spark_conf(settings, require_jdbc=False)[DRIVER_JAVA_OPTIONS]
    assert options.endswith(f'"-XX:SharedArchiveFile={archive}"')  # Spark splits these options on whitespace
    assert options.startswith(read_spark_defaults(REPO_ROOT / "spark-defaults.conf")[DRIVER_JAVA_OPTIONS])


@pytest.mark.parametrize("value", ["off", "OFF", " Off "])
def test_off_turns_the_archive_off_and_setup_carries_on(value: str, monkeypatch, capsys) -> None:
    settings = Settings.from_env(env={"SPARK_CLASS_ARCHIVE": value}, root=REPO_ROOT)
    assert settings.spark_class_archive is None and java_option(settings) is None
    with pytest.raises(ConfigError, match="SPARK_CLASS_ARCHIVE is set to 'off'"):
        build(settings)

    monkeypatch.setenv("SPARK_CLASS_ARCHIVE", value)
    assert cli.main(["class-archive"]) == 0  # `make setup` runs it
    assert "off (SPARK_CLASS_ARCHIVE=off): nothing to build" in capsys.readouterr().out


def test_an_archive_for_another_jvm_or_a_rejected_one_is_not_current(
    settings: Settings, class_archive: Path | None, tmp_path: Path
) -> None:
    assert class_archive is not None
    assert is_current(settings, class_archive)
    assert not is_current(settings, tmp_path / "missing.jsa")

    other_jdk = Settings.from_env(env={"JAVA_HOME": str(tmp_path / "another-jdk")}, root=REPO_ROOT)
    assert not is_current(other_jdk, class_archive)

    corrupt = tmp_path / "classes.jsa"
    corrupt.write_bytes(b"not an archive")
    shutil.copy(class_archive.with_suffix(".json"), corrupt.with_suffix(".json"))
    assert not is_current(settings, corrupt)

    shutil.copy(class_archive, corrupt)
    corrupt.with_suffix(".json").write_text(json.dumps({"java": "java"}))  # a description from another version
    assert not is_current(settings, corrupt)

    # Dumped by an older version: it holds the regenerated classes that crash a driver running Flight Recorder.
    description = json.loads(class_archive.with_suffix(".json").read_text())
    del description["archive_format"]
    corrupt.with_suffix(".json").write_text(json.dumps(description))
    assert not is_current(settings, corrupt)


def test_a_failed_step_says_what_failed_and_that_the_pipeline_still_runs(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"Could not dump \(.*no-such-java: No such file or directory\)") as e:
        run_tool([str(tmp_path / "no-such-java"), "-Xshare:dump"], "dump")
    assert "runs without the archive" in str(e.value)


FLIGHT_RECORDING_JOB = """
import sys
from pathlib import Path
from jobs.settings import Settings
from jobs.spark.session import DRIVER_JAVA_OPTIONS, spark_conf, spark_session

settings = Settings.from_env()
options = spark_conf(settings, require_jdbc=False)[DRIVER_JAVA_OPTIONS]
assert "SharedArchiveFile" in options
folder = Path(sys.argv[1])
recording = f"-XX:StartFlightRecording=filename={folder / 'driver.jfr'} -XX:ErrorFile={folder / 'hs_err_%p.log'}"
spark = spark_session(settings, "flight-recorder", require_jdbc=False,
                      overrides={DRIVER_JAVA_OPTIONS: f"{options} {recording}"}, log_file=folder / "spark.log")
json = "get_json_object(to_json(named_struct('a', id)), '$.a')"
spark.range(10_000).selectExpr("COUNT(DISTINCT id % 7)", f"MAX({json})").collect()
print("finished")
"""


def test_a_driver_with_flight_recorder_or_an_agent_runs_with_the_archive(
    settings: Settings, class_archive: Path | None, tmp_path: Path
) -> None:
    """JDK 17 crashed (SIGSEGV) loading the archive's regenerated classes under a class-file hook (JFR, -javaagent)."""
    assert class_archive is not None
    env = {**os.environ, "SPARK_CLASS_ARCHIVE": str(class_archive), "DATA_DIR": str(tmp_path)}
    env["SPARK_MASTER"] = "local[1]"
    done = subprocess.run(
        [sys.executable, "-c", FLIGHT_RECORDING_JOB, str(tmp_path)],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0 and "finished" in done.stdout, done.stdout[-2000:] + done.stderr[-3000:]
