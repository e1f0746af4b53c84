"""A class-data-sharing archive of Spark's classes, so that each step's JVM starts faster.

Every step runs in its own process (one per Airflow task), and each starts a driver JVM that loads ~19,000 classes
from Spark's jars. Parsing and verifying them is most of the session's start-up and of the first query's planning.
A CDS archive (a JDK feature: ``java -Xshare:dump``, then ``-XX:SharedArchiveFile``) holds those classes already
parsed and verified, mapped from one file.

The JVM checks an archive against its own build, class path and heap size, and refuses one that does not match (after
a JDK or PySpark upgrade, another JAVA_HOME, a driver memory of 32g or more): the session then starts without it,
a little slower than with no archive named at all, and logs a warning that says to rebuild it. Only the driver maps
the archive; executors on a cluster start from their own installation.

The archive holds no regenerated JDK classes (the method-handle holders a class list names with
``@lambda-form-invoker``). JDK 17 crashes (SIGSEGV in ``check_shared_class_file_load_hook``) when it loads one of
those from an archive while a class-file hook is on, i.e. whenever Java Flight Recorder or a ``-javaagent`` (an APM
or profiling agent) runs in the driver.

The class list comes from a child process, :mod:`jobs.spark.class_list`, that runs a sample workload.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.errors import ConfigError, failure_line
from jobs.settings import Settings

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

ARCHIVE_OPTION = "-XX:SharedArchiveFile="
CLASS_LIST_PROGRAM = "jobs.spark.class_list"  # run as a child process: its JVM's exit completes the list
REGENERATED_CLASSES = "@lambda-form-invoker"
# Bumped when what goes into the archive changes, so that `retrain class-archive` rebuilds older ones.
# 2: without the regenerated classes (an older archive crashes a driver that runs Flight Recorder or a Java agent).
ARCHIVE_FORMAT = 2


@dataclass(frozen=True)
class DriverJvm:
    """What the archive was dumped for: the driver JVM's java binary, class path, modules and heap size.

    The heap size matters: it decides whether object pointers are compressed, which the archive records.
    """

    java: str
    class_path: str
    vm_options: list[str]
    archive_format: int  # ARCHIVE_FORMAT when dumped; a description without it is from before format 2

    def command(self, *options: str) -> list[str]:
        return [self.java, *options, *self.vm_options, "-cp", self.class_path]

    @classmethod
    def read(cls, description: Path) -> DriverJvm | None:
        try:
            return cls(**json.loads(description.read_text(encoding="utf-8")))
        except (OSError, ValueError, TypeError):
            return None


def java_option(settings: Settings) -> str | None:
    """The driver's JVM option that maps the archive, or ``None`` when it has not been built."""
    archive = settings.spark_class_archive
    return f"{ARCHIVE_OPTION}{archive}" if archive and archive.is_file() else None


def _description_file(archive: Path) -> Path:
    return archive.with_suffix(".json")


def warn_if_unused(spark: SparkSession, driver_options: str) -> None:
    """Say so when the driver was given the archive and refused it: only a rebuild makes it useful again."""
    if ARCHIVE_OPTION not in driver_options:
        return
    if "sharing" not in spark.sparkContext._jvm.java.lang.System.getProperty("java.vm.info"):
        log.warning(
            "The driver JVM could not use the class archive named in its options (it was built for another JDK, "
            "PySpark or driver memory); Spark starts slower until `retrain class-archive --force` rebuilds it."
        )


def current_java(settings: Settings) -> str | None:
    """The java binary Spark's launcher will run: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    java = str(Path(settings.java_home) / "bin" / "java") if settings.java_home else shutil.which("java")
    return os.path.realpath(java) if java else None


def spark_home() -> Path:
    """The installed PySpark: its ``bin/`` (``spark-submit``, ``spark-class``) and ``jars/``. (PySpark ships no
    ``sbin/``: a server or a cluster is started from these.)"""
    spec = importlib.util.find_spec("pyspark")
    if spec is None or spec.origin is None:
        raise ConfigError("PySpark is not installed in this environment: run `make setup`.")
    return Path(spec.origin).parent


def _spark_jars() -> str | None:
    try:
        return str(spark_home() / "jars")
    except ConfigError:
        return None


def is_current(settings: Settings, archive: Path) -> bool:
    """True when the archive was dumped for this java and this PySpark, and that JVM still accepts it.

    ``-Xshare:on`` with ``-XX:+PrintSharedArchiveAndExit`` fails on any mismatch of JVM build, class path or jars.
    """
    jvm = DriverJvm.read(_description_file(archive))
    if jvm is None or not archive.is_file():
        return False
    if jvm.archive_format != ARCHIVE_FORMAT:
        return False
    if os.path.realpath(jvm.java) != current_java(settings) or (_spark_jars() or "") not in jvm.class_path:
        return False
    check = jvm.command("-Xshare:on", f"{ARCHIVE_OPTION}{archive}", "-XX:+PrintSharedArchiveAndExit")
    try:
        return subprocess.run(check, capture_output=True, timeout=60).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def build(settings: Settings, force: bool = False) -> tuple[Path, bool]:
    """Build the archive unless it is current; return its path and whether it was (re)built.

    A child process runs a small Spark workload shaped like the steps (JSON parsing, a window, a broadcast join,
    partitioned Parquet) with ``-XX:DumpLoadedClassList``; its JVM's exit completes the list. Then ``java
    -Xshare:dump`` archives those classes for the same class path. The new archive replaces the old one atomically.
    """
    archive = settings.spark_class_archive
    if archive is None:
        raise ConfigError("SPARK_CLASS_ARCHIVE is set to 'off'. Unset it to build the archive at its default place.")
    if not force and is_current(settings, archive):
        return archive, False
    archive.parent.mkdir(parents=True, exist_ok=True)
    spark_log = archive.with_name(f"{archive.stem}-build.log")
    with tempfile.TemporaryDirectory(prefix="class-archive-", dir=archive.parent) as tmp:
        work = Path(tmp)
        class_list, description = work / "classes.lst", work / "jvm.json"
        log.info("Building %s: listing the classes of a sample Spark workload (about 30 s)", archive)
        # The list is complete once the child's JVM has exited: it outlives the child's Python by a moment, and
        # run_tool returns only when the JVM too has closed the output pipes it inherited.
        child = (class_list, description, work / "workload", spark_log)
        run_tool(
            [sys.executable, "-m", CLASS_LIST_PROGRAM, *map(str, child)],
            "list the classes of a sample Spark workload",
            spark_log,
        )
        jvm = DriverJvm.read(description)
        assert jvm is not None, "the child process describes its JVM before it exits"
        _drop_regenerated_classes(class_list)
        dumped = work / archive.name
        log.info("Dumping the %d classes listed into the archive (about 40 s)", _count_classes(class_list))
        run_tool(
            jvm.command("-Xshare:dump", f"-XX:SharedClassListFile={class_list}", f"{ARCHIVE_OPTION}{dumped}"),
            "dump the class archive (java -Xshare:dump)",
        )
        os.replace(description, _description_file(archive))
        os.replace(dumped, archive)
    return archive, True


def _drop_regenerated_classes(class_list: Path) -> None:
    """Leave out the method-handle holders that -Xshare:dump would regenerate (see the module's docstring)."""
    lines = class_list.read_text(encoding="utf-8", errors="replace").splitlines(keepends=True)
    class_list.write_text("".join(line for line in lines if not line.startswith(REGENERATED_CLASSES)), "utf-8")


def _count_classes(class_list: Path) -> int:
    lines = class_list.read_text(encoding="utf-8", errors="replace").splitlines()
    return sum(1 for line in lines if line and not line.startswith(("#", "@")))


def run_tool(command: list[str], doing: str, spark_log: Path | None = None) -> None:
    try:
        done = subprocess.run(command, capture_output=True, text=True)
    except OSError as e:
        failure = f"{command[0]}: {e.strerror}"
    else:
        if done.returncode == 0:
            return
        failure = f"exit code {done.returncode}: {failure_line(done.stdout + done.stderr)}"
    see = f" Spark's log: {spark_log}." if spark_log and spark_log.is_file() else ""
    raise ConfigError(
        f"Could not {doing} ({failure}).{see}\n"
        "The pipeline runs without the archive, only its JVMs start slower. Fix the cause (Java 17 as "
        "JAVA_HOME or on PATH, PySpark installed) and run `retrain class-archive` again."
    )
