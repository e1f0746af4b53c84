"""One exception hierarchy for every error a user may see.

Each message says what went wrong, where, and how to fix it. Library code raises these; only the CLI turns them
into exit codes, so the same errors fail an Airflow task (and trigger its retries) with the same text.
:func:`check_scalar` is the one validator of settings and config values, so they all fail with one message shape.
"""

from __future__ import annotations

from typing import Any


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


class SparkConnectUnavailableError(SparkDriverLostError):
    """The Spark Connect server that ``SPARK_REMOTE`` names does not answer, or stopped answering mid-step."""


class SparkConnectServerError(RetrainError):
    """`retrain spark-connect` could not start or stop the server."""


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


class UnitTestError(RetrainError):
    """An SQL unit test's model returned other rows than the test expects, or the test could not run."""


class DeployError(RetrainError):
    """Deployment failed; the production pointers were put back as they were before the step."""


class AdminTokenError(DeployError):
    """``ADMIN_JWT_TOKEN`` is missing, malformed, not an admin token, or expires before the run can finish."""


class BackendError(DeployError):
    """The serving backend's reload endpoint failed, refused the token, or stayed unreachable after the retries.

    ``attempts`` is how many reload requests were sent before giving up, for ``deploy.json``.
    """

    attempts: int = 0


class TokenRefusedError(AdminTokenError, BackendError):
    """The backend answered 401 or 403 to ``ADMIN_JWT_TOKEN``: the same token cannot succeed on a retry."""


class ReloadMismatchError(DeployError):
    """The backend reloaded, but reports other versions or artifact hashes than the ones promoted."""


class AirflowApiError(RetrainError):
    """Airflow's REST API could not be reached, refused the credentials, or refused a run (``retrain airflow``)."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status of the answer, when there was one


class AirflowStartError(RetrainError):
    """A local Airflow component (``retrain airflow start``) could not start: a port is taken, or it exited."""


class DemoError(RetrainError):
    """A step of the demo failed (its backend, its traffic, a DAG run); the message names the log to read."""


class ServingError(RetrainError):
    """The serving backend cannot start or load its models."""


class ModelLoadError(ServingError):
    """A model's production version could not be loaded; the previously loaded set keeps serving."""

    def __init__(self, model: str, message: str) -> None:
        super().__init__(message)
        self.model = model


def failure_line(output: str) -> str:
    """The line of a failed process's output that says why: an out-of-memory error first, then the last line
    naming an Error or Exception (the cause, below a stack trace's frames), else the last line."""
    lines = [line.strip() for line in output.splitlines() if line.strip()]
    memory = [line for line in lines if "MemoryError" in line]  # OutOfMemoryError (Java) and MemoryError (Python)
    causes = [line for line in lines if "Error" in line or "Exception" in line]
    return (memory or causes or lines or ["no output"])[-1]


def _describe(kind: type, minimum: float | None, maximum: float | None, closed: str) -> str:
    noun = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, f"a {kind.__name__}")
    low_open, high_open = closed in ("neither", "right"), closed in ("neither", "left")
    if minimum is not None and maximum is not None:
        return f"{noun} in {'(' if low_open else '['}{minimum}, {maximum}{')' if high_open else ']'}"
    if minimum is not None:
        return f"{noun} {'greater than' if low_open else 'of at least'} {minimum}"
    if maximum is not None:
        return f"{noun} {'less than' if high_open else 'of at most'} {maximum}"
    return noun


def check_scalar(
    value: object,
    what: str,
    kind: type = int,
    *,
    minimum: float | None = None,
    maximum: float | None = None,
    closed: str = "both",
    from_text: bool = False,
    error: type[RetrainError] = ConfigError,
) -> Any:
    """Validate one setting or config value and return it, in the spirit of scikit-learn's ``check_scalar``.

    Every bool, whole-number and bounded-number check of the package goes through here, so every message has the
    same shape: ``"<what> must be a whole number of at least 1. Got 0 instead."``. ``what`` names the value and
    where it comes from ("The JDBC_FETCHSIZE setting", "diabetes_features (sql/...): config(repartition=...)").
    ``bool`` is never accepted as a number (YAML's ``true`` is not 1). With ``from_text``, a string (an environment
    variable) is converted to ``kind`` first. ``closed`` says which bounds are included: both, left, right, neither.
    """
    expected = _describe(kind, minimum, maximum, closed)
    problem = f"{what} must be {expected}. Got {value!r} instead."
    if from_text and isinstance(value, str) and kind in (int, float):
        try:
            value = kind(value.strip())
        except ValueError:
            raise error(problem) from None
    if kind is bool:
        valid_type = isinstance(value, bool)
    elif kind is float:
        valid_type = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        valid_type = isinstance(value, kind) and not (kind is int and isinstance(value, bool))
    if not valid_type:
        raise error(problem)
    if kind is float and value != value:  # NaN passes every comparison below
        raise error(problem)
    low_open, high_open = closed in ("neither", "right"), closed in ("neither", "left")
    too_low = minimum is not None and (value <= minimum if low_open else value < minimum)  # type: ignore[operator]
    too_high = maximum is not None and (value >= maximum if high_open else value > maximum)  # type: ignore[operator]
    if too_low or too_high:
        raise error(f"{what} must be {expected}. Got {value!r} instead.")
    return value


class RecipeError(ConfigError):
    """A training recipe in ``models/`` is missing, cannot be imported, or is invalid."""


class ModelInputError(RetrainError):
    """A prediction request's inputs cannot be read as the recipe's features (names the field)."""


class ModelStoreError(RetrainError):
    """The model store has no such model or version, or a stored artifact does not match its recorded hash."""


class InvalidNameError(ModelStoreError):
    """A model or version name is not of the strict form the model store accepts (``jobs/ml/names.py``)."""


class StoreLockTimeoutError(ModelStoreError):
    """Another process held a model's lock in the model store for longer than a pointer change may take."""


class TrainError(RetrainError):
    """Training could not run at all (no feature table for the run, no recipes, ...)."""


class ValidateError(RetrainError):
    """Validation could not run (no train summary for the run, a forced model that was not trained, ...)."""
