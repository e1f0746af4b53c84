"""Every setting of the pipeline, read from the environment once, in one place.

Each has a default that works on a laptop; docs/operations.md's settings table documents them. Nothing else in the
package reads ``os.environ``: entry points call :func:`Settings.from_env` and pass the result down.
"""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path

from jobs.errors import ConfigError, check_scalar
from jobs.postgres.secret import read_secret, secret_file
from jobs.postgres.url import DatabaseUrl, secrets_of
from jobs.run_context import RunFolder
from jobs.spark.remote import RemoteUrl

EMBEDDED_PG_USER = "retrain"
EMBEDDED_PG_DATABASE = "retrain"
DEFAULT_CLASS_ARCHIVE = ".local/spark-classes.jsa"


def _int(env: Mapping[str, str], name: str, default: int | None, minimum: int = 1) -> int | None:
    raw = env.get(name, "").strip()
    if not raw:
        return default
    return check_scalar(raw, f"The {name} setting", int, minimum=minimum, from_text=True)


def _airflow_port(env: Mapping[str, str]) -> int:
    """``AIRFLOW_PORT``: the API server's port; the two log servers take the next two, so it leaves room for them."""
    raw = env.get("AIRFLOW_PORT", "").strip()
    if not raw:
        return 8080
    return check_scalar(raw, "The AIRFLOW_PORT setting", int, minimum=1024, maximum=65533, from_text=True)


def schedule_timezone(env: Mapping[str, str] | None = None) -> str:
    """The ``SCHEDULE_TIMEZONE`` setting alone, checked: all a DAG file needs when it is parsed.

    Reading only this one at parse time keeps any other bad setting (a missing SPARK_DEFAULTS_CONF, a malformed
    DATABASE_URL) out of the DAG's import, where Airflow shows a traceback and no run starts: the run's first task
    fails instead, at once (no retry fixes a setting), with the setting's own message in its log.
    """
    env = os.environ if env is None else env
    return _timezone(env.get("SCHEDULE_TIMEZONE") or "UTC")


def _timezone(name: str) -> str:
    """An IANA time zone name (``Europe/Paris``), checked against the system's time zone database."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ConfigError(
            f"The SCHEDULE_TIMEZONE setting must be an IANA time zone name such as 'UTC' or 'Europe/Paris'. "
            f"Got {name!r} instead."
        ) from None
    return name


@dataclass(frozen=True)
class Settings:
    """The pipeline's settings; see docs/operations.md for each one's meaning."""

    root: Path
    database_url: str | None = field(default=None, repr=False)
    backend_url: str = "http://localhost:8000"
    admin_jwt_token: str | None = field(default=None, repr=False)
    data_dir: Path = Path("data")
    model_store: Path = Path("model_store")
    models_dir: Path = Path("models")
    spark_master: str = "local[*]"
    #: a Spark Connect server's URL (sc://host:port): the steps run as its clients instead of starting a driver each
    spark_remote: str | None = field(default=None, repr=False)
    spark_defaults_conf: Path = Path("spark-defaults.conf")
    spark_jdbc_jar: str | None = None
    spark_class_archive: Path | None = Path(DEFAULT_CLASS_ARCHIVE)
    java_home: str | None = None  # as Spark's launcher: $JAVA_HOME/bin/java, else java on PATH
    sql_project_dir: Path = Path("sql")
    jdbc_num_partitions: int | None = None
    jdbc_fetchsize: int = 10_000
    sql_threads: int = 4
    #: dbt's ``target.name`` in the SQL project; production unless said otherwise, so a forgotten setting never
    #: gives a production run a development shortcut (``{% if target.name == 'dev' %} LIMIT 1000``)
    sql_target: str = "prod"
    embedded_pg_dir: Path = Path(".local/pg")
    embedded_pg_port: int = 54329
    notify_webhook_url: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    reload_timeout_seconds: int = 60
    reload_attempts: int = 4
    schedule_timezone: str = "UTC"
    airflow_home: Path = Path(".local/airflow")  # `make airflow`'s home (retrain airflow start)
    airflow_port: int = 8080  # its API server; the log servers take the next two ports
    airflow_api_url: str | None = None  # retrain airflow trigger's Airflow; default http://localhost:<airflow_port>
    airflow_username: str = "admin"
    airflow_password: str | None = field(default=None, repr=False)
    serving_max_body_bytes: int = 65_536
    serving_max_header_bytes: int = 16_384
    serving_max_json_depth: int = 16
    serving_client_timeout_seconds: int = 10

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None, root: Path | None = None) -> Settings:
        """Read the settings from ``env`` (default ``os.environ``); relative paths resolve against ``root``."""
        env = os.environ if env is None else env
        root = Path(env.get("RETRAIN_HOME") or root or Path.cwd()).resolve()

        def path(name: str, default: str) -> Path:
            value = Path(env.get(name) or default).expanduser()
            return value if value.is_absolute() else root / value

        settings = cls(
            root=root,
            database_url=env.get("DATABASE_URL") or None,
            backend_url=(env.get("BACKEND_URL") or "http://localhost:8000").rstrip("/"),
            admin_jwt_token=env.get("ADMIN_JWT_TOKEN") or None,
            data_dir=path("DATA_DIR", "data"),
            model_store=path("MODEL_STORE", "model_store"),
            models_dir=path("MODELS_DIR", "models"),
            spark_master=env.get("SPARK_MASTER") or "local[*]",
            spark_remote=(env.get("SPARK_REMOTE") or "").strip() or None,
            spark_defaults_conf=path("SPARK_DEFAULTS_CONF", "spark-defaults.conf"),
            spark_jdbc_jar=env.get("SPARK_JDBC_JAR") or None,
            spark_class_archive=(
                None
                if env.get("SPARK_CLASS_ARCHIVE", "").strip().lower() == "off"
                else path("SPARK_CLASS_ARCHIVE", DEFAULT_CLASS_ARCHIVE)
            ),
            java_home=env.get("JAVA_HOME") or None,
            sql_project_dir=path("SQL_PROJECT_DIR", "sql"),
            jdbc_num_partitions=_int(env, "JDBC_NUM_PARTITIONS", None),
            jdbc_fetchsize=_int(env, "JDBC_FETCHSIZE", 10_000),  # type: ignore[arg-type]
            sql_threads=_int(env, "SQL_THREADS", 4),  # type: ignore[arg-type]
            sql_target=(env.get("SQL_TARGET") or "prod").strip(),
            embedded_pg_dir=path("RETRAIN_PG_DIR", ".local/pg"),
            embedded_pg_port=_int(env, "RETRAIN_PG_PORT", 54329),  # type: ignore[arg-type]
            notify_webhook_url=env.get("NOTIFY_WEBHOOK_URL") or None,
            secret_key=env.get("SECRET_KEY") or None,
            reload_timeout_seconds=_int(env, "RELOAD_TIMEOUT_SECONDS", 60),  # type: ignore[arg-type]
            reload_attempts=_int(env, "RELOAD_ATTEMPTS", 4),  # type: ignore[arg-type]
            schedule_timezone=schedule_timezone(env),
            airflow_home=path("AIRFLOW_HOME", ".local/airflow"),
            airflow_port=_airflow_port(env),
            airflow_api_url=(env.get("AIRFLOW_API_URL") or "").rstrip("/") or None,
            airflow_username=env.get("AIRFLOW_USERNAME") or "admin",
            airflow_password=env.get("AIRFLOW_PASSWORD") or None,
            serving_max_body_bytes=_int(env, "SERVING_MAX_BODY_BYTES", 65_536, minimum=1024),  # type: ignore[arg-type]
            serving_max_header_bytes=_int(env, "SERVING_MAX_HEADER_BYTES", 16_384, minimum=1024),  # type: ignore[arg-type]
            serving_max_json_depth=_int(env, "SERVING_MAX_JSON_DEPTH", 16, minimum=2),  # type: ignore[arg-type]
            serving_client_timeout_seconds=_int(env, "SERVING_CLIENT_TIMEOUT_SECONDS", 10),  # type: ignore[arg-type]
        )
        if settings.database_url:
            DatabaseUrl.parse(settings.database_url)  # fail early, with a clear message
        if settings.spark_remote:
            RemoteUrl.parse(settings.spark_remote)
        if env.get("SPARK_DEFAULTS_CONF") and not settings.spark_defaults_conf.is_file():
            # The project's file is optional; one named explicitly must exist, or Spark would silently run untuned.
            raise ConfigError(
                f"The SPARK_DEFAULTS_CONF setting names {settings.spark_defaults_conf}, which is not a file "
                f"(relative paths resolve against {root}). Point it at a spark-defaults.conf, or unset it to use "
                "the project's."
            )
        return settings

    @property
    def uses_embedded_database(self) -> bool:
        """True when ``DATABASE_URL`` is unset and the project-local PostgreSQL stands in for it."""
        return self.database_url is None

    @property
    def embedded_database_url(self) -> str:
        """The embedded cluster's URL without its password: the form to print and log."""
        return f"postgresql://{EMBEDDED_PG_USER}@127.0.0.1:{self.embedded_pg_port}/{EMBEDDED_PG_DATABASE}"

    @property
    def embedded_pg_secret_file(self) -> Path:
        """The embedded cluster's password file (mode 0600), written when the cluster is created."""
        return secret_file(self.embedded_pg_dir)

    def redact(self, text: str) -> str:
        """``text`` with every secret setting (token, signing key, webhook URL, database password) masked.

        The last guard of anything the pipeline writes for people: reports, webhook summaries, task errors, log
        lines. Each secret is masked in any spelling a URL gives it: as is, percent-encoded (in upper or lower case
        hex, wholly or in part) or with '+' for a space.
        """
        return self._secret_pattern.sub("***", text) if self._secret_pattern else text

    def secrets(self) -> list[str]:
        """Every secret value of these settings, as :meth:`redact` masks them."""
        secrets = [self.admin_jwt_token, self.secret_key, self.notify_webhook_url, self.airflow_password]
        if self.spark_remote:
            secrets += RemoteUrl.parse(self.spark_remote).secrets
        if self.database_url:
            secrets += secrets_of(self.database_url)
        else:
            secrets.append(read_secret(self.embedded_pg_secret_file))
        return [s for s in secrets if s]

    @cached_property
    def _secret_pattern(self) -> re.Pattern[str] | None:
        return secret_pattern(self.secrets())

    @property
    def remote(self) -> RemoteUrl | None:
        """The Spark Connect server the steps use (``SPARK_REMOTE``), or None: each step starts its own driver."""
        return RemoteUrl.parse(self.spark_remote) if self.spark_remote else None

    def database(self) -> DatabaseUrl:
        """The source database: ``DATABASE_URL``, or the embedded cluster (with its password) when it is unset."""
        return DatabaseUrl.parse(self.database_url) if self.database_url else self.embedded_database()

    def embedded_database(self) -> DatabaseUrl:
        """The embedded cluster's URL with the password from its file (empty before the cluster exists)."""
        embedded = DatabaseUrl.parse(self.embedded_database_url)
        return replace(embedded, password=read_secret(self.embedded_pg_secret_file) or "")

    @property
    def airflow_url(self) -> str:
        """The Airflow API server ``retrain airflow trigger`` talks to: ``AIRFLOW_API_URL``, else the local one."""
        return self.airflow_api_url or f"http://localhost:{self.airflow_port}"

    def run_folder(self, ds: str) -> RunFolder:
        """Where one logical date's snapshots, features, decisions and reports live."""
        return RunFolder.under(self.data_dir, ds)


def secret_pattern(secrets: Iterable[str]) -> re.Pattern[str] | None:
    """One regular expression matching each secret in any of its URL spellings (longest first), or None."""
    unique = sorted(set(filter(None, secrets)), key=len, reverse=True)
    if not unique:
        return None
    return re.compile("|".join(_any_spelling(secret) for secret in unique))


def _any_spelling(secret: str) -> str:
    """Each character as itself or percent-encoded (UTF-8 bytes, hex in either case); a space also as '+'."""

    def hex_digit(d: str) -> str:
        return f"[{d.lower()}{d.upper()}]" if d.isalpha() else d

    parts = []
    for char in secret:
        encoded = "".join("%" + "".join(hex_digit(d) for d in f"{b:02X}") for b in char.encode("utf-8"))
        spellings = [re.escape(char), encoded] + ([r"\+"] if char == " " else [])
        parts.append("(?:" + "|".join(spellings) + ")")
    return "".join(parts)


class RedactingFilter(logging.Filter):
    """Masks the settings' secrets in every record a handler writes: the message, its arguments, its traceback."""

    def __init__(self, settings: Settings) -> None:
        super().__init__()
        self.settings = settings

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # noqa: BLE001 - a malformed record is the logging module's to report, not ours
            return True
        record.msg, record.args = self.settings.redact(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = self.settings.redact(record.exc_text)
        if record.stack_info:
            record.stack_info = self.settings.redact(record.stack_info)
        return True


def redact_logs(settings: Settings) -> None:
    """Mask the secrets of ``settings`` in everything the root logger's handlers write (once per handler)."""
    for handler in logging.getLogger().handlers:
        for old in [f for f in handler.filters if isinstance(f, RedactingFilter)]:
            handler.removeFilter(old)
        handler.addFilter(RedactingFilter(settings))
