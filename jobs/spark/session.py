"""The one Spark session builder: reads ``spark-defaults.conf`` and the settings, finds the JDBC driver.

PySpark installed from pip does not read a project's ``spark-defaults.conf`` by itself (only
``$SPARK_CONF_DIR``'s), so every entry point goes through :func:`spark_session`; on a cluster the same file is
passed to ``spark-submit --properties-file``.
"""

from __future__ import annotations

import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, nullcontext
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from jobs.errors import ConfigError, JdbcDriverNotFoundError
from jobs.settings import Settings
from jobs.spark import class_archive
from jobs.spark.remote import connect_session, lost_server_reported

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEBIAN_JDBC_JAR = Path("/usr/share/java/postgresql.jar")
JDBC_MAVEN_PACKAGE = "org.postgresql:postgresql"
LOG4J2_CONFIG = "log4j2.properties"
DRIVER_JAVA_OPTIONS = "spark.driver.extraJavaOptions"
LOG_FILE_PROPERTY = "retrain.spark.log"  # the system property log4j2.properties reads the file name from
LOG_FILE_CONF = "spark.retrain.logFile"  # recorded in the session's conf, so the CLI can name the file on failure
DRIVER_MEMORY = "spark.driver.memory"
SPARK_DEFAULT_DRIVER_MEMORY = "1g"
PRE_TOUCH = "-XX:+AlwaysPreTouch"


def read_spark_defaults(path: Path) -> dict[str, str]:
    """Parse a ``spark-defaults.conf`` file: one ``key value`` per line, ``#`` comments."""
    if not path.is_file():
        return {}
    conf: dict[str, str] = {}
    for number, raw in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        key, _, value = line.partition(" ") if " " in line else line.partition("\t")
        key, value = key.strip(), value.strip()
        if not key.startswith("spark.") or not value:
            raise ConfigError(
                f"{path}, line {number}: expected 'spark.<key> <value>', got {raw.strip()!r}. "
                "Fix the line or comment it out with '#'."
            )
        conf[key] = value
    return conf


def resolve_jdbc_driver(settings: Settings, conf: dict[str, str]) -> dict[str, str]:
    """Return the Spark settings that put the PostgreSQL JDBC driver on the classpath.

    Order: ``SPARK_JDBC_JAR``, ``spark.jars`` in spark-defaults.conf, Debian's jar, ``spark.jars.packages``.
    """
    if settings.spark_jdbc_jar:
        jar = Path(settings.spark_jdbc_jar)
        if not jar.is_file():
            raise JdbcDriverNotFoundError(
                f"SPARK_JDBC_JAR points at {jar}, which does not exist. Set it to the path of a PostgreSQL "
                f"JDBC driver jar (e.g. {DEBIAN_JDBC_JAR}), or unset it to use the other ways of finding one."
            )
        return {"spark.jars": _join_jars(conf.get("spark.jars"), str(jar))}
    configured = [j for j in conf.get("spark.jars", "").split(",") if "postgresql" in j.lower()]
    for jar_path in configured:
        if Path(jar_path.removeprefix("file:")).is_file() or "://" in jar_path:
            return {}
    if DEBIAN_JDBC_JAR.is_file():
        return {"spark.jars": _join_jars(conf.get("spark.jars"), str(DEBIAN_JDBC_JAR))}
    if JDBC_MAVEN_PACKAGE in conf.get("spark.jars.packages", ""):
        return {}
    missing = f" (spark.jars names {', '.join(configured)}, which does not exist)" if configured else ""
    raise JdbcDriverNotFoundError(
        "No PostgreSQL JDBC driver found for Spark" + missing + ". Do one of: "
        "(1) set SPARK_JDBC_JAR=/path/to/postgresql.jar; "
        f"(2) add 'spark.jars /path/to/postgresql.jar' to {settings.spark_defaults_conf}; "
        f"(3) install Debian's driver to {DEBIAN_JDBC_JAR}: apt-get install libpostgresql-jdbc-java "
        "(`make setup` does this when run as root); "
        f"(4) on a machine that reaches Maven Central, add 'spark.jars.packages {JDBC_MAVEN_PACKAGE}:42.7.4' "
        "to spark-defaults.conf."
    )


def _join_jars(existing: str | None, jar: str) -> str:
    jars = [j for j in (existing or "").split(",") if j]
    return ",".join([*jars, jar]) if jar not in jars else ",".join(jars)


def spark_conf(settings: Settings, require_jdbc: bool = True) -> dict[str, str]:
    """The full Spark configuration of a session: the file, then the driver jar, then ``SPARK_MASTER``."""
    conf = read_spark_defaults(settings.spark_defaults_conf)
    try:
        conf.update(resolve_jdbc_driver(settings, conf))
    except JdbcDriverNotFoundError:
        if require_jdbc:
            raise
    conf["spark.master"] = settings.spark_master
    archive = class_archive.java_option(settings)
    if archive:
        conf[DRIVER_JAVA_OPTIONS] = f"{conf.get(DRIVER_JAVA_OPTIONS, '')} {quote_java_option(archive)}".strip()
    return conf


def quiet_spark_python_loggers() -> None:
    """Keep py4j at WARNING whatever the host's logging says (Airflow's included), and mute PySpark's error dumps.

    At DEBUG, py4j logs every argument it sends to the JVM, the JDBC password among them. PySpark logs each SQL
    error as a JSON line with the whole Java stack trace; the runner reports the same error with the model's file
    and line instead.
    """
    from pyspark.logger import PySparkLogger

    logging.getLogger("py4j").setLevel(logging.WARNING)
    for name in ("SQLQueryContextLogger", "DataFrameQueryContextLogger"):
        PySparkLogger.getLogger(name).setLevel(logging.CRITICAL + 1)


def log4j2_config() -> Path:
    """The log4j2 configuration shipped with the package (``jobs/spark/log4j2.properties``)."""
    return Path(str(resources.files("jobs.spark").joinpath(LOG4J2_CONFIG)))


def quote_java_option(option: str) -> str:
    """Spark splits ``extraJavaOptions`` on whitespace: an option holding a path with a space is quoted."""
    return f'"{option}"' if any(c.isspace() for c in option) else option


def _java_option(name: str, value: str) -> str:
    return quote_java_option(f"-D{name}={value}")


def fixed_heap_conf(conf: Mapping[str, str]) -> dict[str, str]:
    """With ``-XX:+AlwaysPreTouch`` among the driver's options, the driver's heap starts at its full size.

    The JVM touches only the initial heap at start, and Spark's launcher sets only the maximum (``-Xmx`` from
    ``spark.driver.memory``). So ``-Xms`` follows ``spark.driver.memory`` here, wherever that is set, and the two
    cannot disagree: the whole heap is resident from the first second, memory is a budget the configuration sets
    rather than one that grows with the rows, and a run that starts has the memory it will use. An ``-Xms``
    already in the options wins.
    """
    options = conf.get(DRIVER_JAVA_OPTIONS, "")
    tokens = options.split()
    if PRE_TOUCH not in tokens or any(token.startswith("-Xms") for token in tokens):
        return {}
    initial = f"-Xms{conf.get(DRIVER_MEMORY, SPARK_DEFAULT_DRIVER_MEMORY)}"
    return {DRIVER_JAVA_OPTIONS: f"{initial} {options}"}


def quiet_console_conf(conf: Mapping[str, str], log_file: Path) -> dict[str, str]:
    """Driver JVM options that send Spark's log to ``log_file`` and keep the console for the pipeline's lines.

    PySpark starts the driver JVM with the session's configuration, so ``spark.driver.extraJavaOptions`` set here
    reaches it. A log4j2 configuration already named there (an operator's choice in spark-defaults.conf) wins.
    """
    existing = conf.get(DRIVER_JAVA_OPTIONS, "")
    if "log4j2.configurationFile" in existing or "log4j.configurationFile" in existing:
        return {}
    options = [existing] if existing else []
    options += [
        _java_option("log4j2.configurationFile", log4j2_config().as_uri()),
        _java_option(LOG_FILE_PROPERTY, str(log_file)),
    ]
    return {DRIVER_JAVA_OPTIONS: " ".join(options), LOG_FILE_CONF: str(log_file)}


def spark_log_file() -> Path | None:
    """The log file of this process's Spark session, if one was started through :func:`spark_session`."""
    if "pyspark" not in sys.modules:
        return None

    active = running_session()
    value = active.conf.get(LOG_FILE_CONF, None) if active is not None else None
    return Path(value) if value else None


def running_session() -> SparkSession | None:
    """The thread's active Spark session, or the process's default one; ``None`` when no JVM runs."""
    from pyspark.errors import PySparkRuntimeError
    from pyspark.sql import SparkSession

    try:
        return SparkSession.active()
    except PySparkRuntimeError:
        return None


def spark_session(
    settings: Settings,
    app_name: str = "retrain",
    require_jdbc: bool = True,
    overrides: Mapping[str, str] | None = None,
    log_file: Path | None = None,
) -> SparkSession:
    """Build (or reuse) the process's Spark session with the project's configuration (``overrides`` last).

    Spark's own log goes to ``log_file`` (default ``<DATA_DIR>/logs/spark-<app_name>.log``; the steps' commands pass
    a file in the run's folder), not to the console.

    With ``SPARK_REMOTE`` set, the session is a client of that Spark Connect server instead, and the server's
    configuration and log are those it was started with (`retrain spark-connect start`): ``overrides`` and
    ``log_file`` do not apply.
    """
    from pyspark.sql import SparkSession

    quiet_spark_python_loggers()
    if settings.remote is not None:
        return connect_session(settings.remote, app_name)
    conf = {**spark_conf(settings, require_jdbc=require_jdbc), **(overrides or {})}
    starts_jvm = running_session() is None
    if starts_jvm:  # a running JVM keeps the log file it was started with
        log_file = log_file or settings.data_dir / "logs" / f"spark-{app_name}.log"
        log_file.parent.mkdir(parents=True, exist_ok=True)
        conf.update(fixed_heap_conf(conf))
        conf.update(quiet_console_conf(conf, log_file))
    builder = SparkSession.builder.appName(app_name)
    for key, value in conf.items():
        builder = builder.config(key, value)
    if LOG_FILE_CONF in conf:
        log.info("Starting Spark (master %s); its log: %s", conf["spark.master"], conf[LOG_FILE_CONF])
    session = builder.getOrCreate()
    if starts_jvm:
        class_archive.warn_if_unused(session, conf.get(DRIVER_JAVA_OPTIONS, ""))
    return session


JVM_LOG = logging.getLogger("jobs.spark.jvm")
_JVM_LEVELS = {
    "INFO": logging.INFO,
    "WARN": logging.WARNING,
    "WARNING": logging.WARNING,
    "ERROR": logging.ERROR,
    "FATAL": logging.CRITICAL,
}
_LEVEL_WORD = re.compile(r"\b(" + "|".join(_JVM_LEVELS) + r")\b")


def jvm_line_level(line: str) -> int:
    """The level a line of the JVM's stderr states near its start: the JVM's own notices begin with ``WARNING:``,
    log4j's console lines name theirs after the time. A line that states none stays an error, as stderr meant."""
    match = _LEVEL_WORD.search(line[:40])
    return _JVM_LEVELS[match.group(1)] if match else logging.ERROR


@contextmanager
def jvm_stderr_logged(logger: logging.Logger = JVM_LOG) -> Iterator[None]:
    """While the driver JVM starts inside this block, give it a pipe as its stderr, and log each line it writes
    there at the level the line states (:func:`jvm_line_level`).

    Airflow logs everything a task writes to stderr at ERROR, so the JVM's start-up notice ("WARNING: Using
    incubator modules: jdk.incubator.vector") showed in the task log as an error. The JVM inherits this process's
    file descriptor 2 when PySpark starts it, so fd 2 points at the pipe only for the block; lines read before it
    ends are logged once fd 2 is back, so that a handler writing to stderr cannot feed the pipe it is read from.
    """
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no stderr to replace: nothing to relay
        yield
        return
    read_end, write_end = os.pipe()
    os.dup2(write_end, 2)
    os.close(write_end)
    lock, pending, restored = threading.Lock(), [], threading.Event()

    def emit(line: str) -> None:
        logger.log(jvm_line_level(line), "%s", line)

    def relay() -> None:
        with os.fdopen(read_end, encoding="utf-8", errors="replace") as stream:
            for raw in stream:  # ends when the JVM, the last holder of the pipe, exits
                line = raw.rstrip()
                with lock:
                    if not line:
                        continue
                    if restored.is_set():
                        emit(line)
                    else:
                        pending.append(line)

    threading.Thread(target=relay, name="jvm-stderr", daemon=True).start()
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)
        with lock:
            restored.set()
            for line in pending:
                emit(line)
            pending.clear()


@contextmanager
def task_spark_session(settings: Settings, app_name: str, log_file: Path | None = None) -> Iterator[SparkSession]:
    """The Spark session of one pipeline task, stopped when the task ends; Spark's log goes to ``log_file`` (the
    run folder's ``logs/``, as for the step's command).

    Under Airflow each task runs in its own process, so each gets a fresh session and frees its JVM's memory when
    done; the JVM's own stderr lines reach the task log at their level (:func:`jvm_stderr_logged`). When the
    process already has a session (``dag.test()`` inside a test run, a notebook), that one is used and left
    running: it belongs to whoever started it.
    """
    existing = running_session()
    if existing is not None:
        log.info("Using the process's running Spark session for %s", app_name)
        yield existing
        return
    # A Connect client starts no JVM: there is no stderr of one to relay.
    with jvm_stderr_logged() if settings.remote is None else nullcontext():
        session = spark_session(settings, app_name=app_name, log_file=log_file)
    try:
        with lost_server_reported(settings.remote, f"running {app_name}"):
            yield session
    finally:
        session.stop()  # a Connect client's: its session and temporary views, not the server
