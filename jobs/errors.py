"""One exception hierarchy for every error a user may see.

Each message says what went wrong, where, and how to fix it. Library code raises these; only the CLI turns them
into exit codes, so the same errors fail an Airflow task (and trigger its retries) with the same text.
"""

from __future__ import annotations


class RetrainError(Exception):
    """Base class: an error whose message is written for the person running the pipeline."""

    exit_code = 1


class ConfigError(RetrainError):
    """A setting or a configuration file is missing or invalid."""

    exit_code = 2


class JdbcDriverNotFoundError(ConfigError):
    """No usable PostgreSQL JDBC driver jar for Spark."""


class EmbeddedPostgresError(RetrainError):
    """The project-local PostgreSQL cluster could not be created, started or stopped."""


class PortInUseError(EmbeddedPostgresError):
    """The embedded cluster's port is taken by another process."""


class DatabaseError(RetrainError):
    """Talking to the source database failed."""


class DatabaseUnreachableError(DatabaseError):
    """No server answered at the configured host and port."""


class AuthenticationFailedError(DatabaseError):
    """The server rejected the configured user or password."""


class MissingRelationError(DatabaseError):
    """A table or column that a source needs does not exist."""


class SparkDriverLostError(RetrainError):
    """Spark's driver JVM died under the pipeline (usually out of memory); the task fails so Airflow retries."""


class ExtractError(RetrainError):
    """Extraction of a source failed; nothing partial was left behind."""


class SqlProjectError(RetrainError):
    """The SQL project (models, sources, macros, tests) is invalid."""


class CompilationError(SqlProjectError):
    """A model's Jinja template could not be rendered."""


class DependencyError(SqlProjectError):
    """Unknown ref/source names, duplicate model names or a dependency cycle."""


class ModelExecutionError(SqlProjectError):
    """Spark rejected a rendered model (analysis error: unknown column, type mismatch, ...)."""


class DataTestError(RetrainError):
    """A data test of error severity failed; the pipeline stops before training."""
