"""Spark Connect: the steps as clients of one long-lived Spark application (``SPARK_REMOTE``).

Each Spark step otherwise starts its own driver JVM: about 7 s to start, then every query's first execution runs
in a cold JIT. A Spark Connect server kept running between runs pays both once, not twice a week
(docs/operations.md, "One long-lived Spark driver"). A Connect client has no JVM of its own, so ``SparkContext`` and
``DataFrame.rdd`` are not there; the few places that need what they gave ask through these functions instead.
"""

from __future__ import annotations

import logging
import math
import re
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from jobs.errors import ConfigError, RetrainError, SparkConnectUnavailableError
from jobs.spark.messages import first_line

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DEFAULT_PORT = 15002
#: how long a new session waits for the server's port before it says the server is not there
CONNECT_TIMEOUT_SECONDS = 5.0
#: retries of a call the server did not answer: 0.05, 0.2, 0.8, 3.2, 12.8 s apart (about 17 s in all), where
#: PySpark's default waits ten minutes before it reports a server that is gone
RETRIES = 5
#: how long the server may go unanswering, over every call of the process, before no call retries any more
OUTAGE_SECONDS = 17.0
_URL = re.compile(r"^sc://(?P<host>\[[0-9a-fA-F:]+\]|[^:/;\[\]]+)(?::(?P<port>\d+))?/?(?P<params>;.*)?$")
_SECRET_PARAM = re.compile(r"(;\s*token\s*=)[^;]*", re.IGNORECASE)
_TOKEN_VALUE = re.compile(r";\s*token\s*=([^;]*)", re.IGNORECASE)


@dataclass(frozen=True)
class RemoteUrl:
    """A ``SPARK_REMOTE`` URL: ``sc://host[:port][/;param=value...]``, as PySpark reads it."""

    url: str = field(repr=False)
    host: str
    port: int

    @classmethod
    def parse(cls, url: str) -> RemoteUrl:
        match = _URL.match(url.strip())
        if not match:
            raise ConfigError(
                "SPARK_REMOTE must be a Spark Connect URL, sc://host[:port] (for example "
                f"sc://127.0.0.1:{DEFAULT_PORT}); got {redact(url)!r}. Fix it, or unset it to start Spark in each "
                "step's own process."
            )
        port = int(match.group("port") or DEFAULT_PORT)
        if not 0 < port < 65536:
            raise ConfigError(f"SPARK_REMOTE names port {port}, which is not a TCP port (1-65535).")
        return cls(url=url.strip(), host=match.group("host").strip("[]"), port=port)

    @property
    def secrets(self) -> list[str]:
        """The URL's authentication token, if it has one: what logs and reports must never show."""
        return [m.group(1).strip() for m in _TOKEN_VALUE.finditer(self.url) if m.group(1).strip()]

    @property
    def redacted(self) -> str:
        """The URL to print and log: an authentication token is masked."""
        return redact(self.url)


def redact(url: str) -> str:
    """``url`` with the value of its ``token`` parameter masked."""
    return _SECRET_PARAM.sub(r"\1***", url)


def is_connect(spark: SparkSession) -> bool:
    """True for a Spark Connect client's session, False for a classic one (a driver JVM in this process)."""
    return type(spark).__module__.startswith("pyspark.sql.connect")


def default_parallelism(spark: SparkSession) -> int:
    """The cores the session's Spark application has (``SparkContext.defaultParallelism``).

    A Connect client cannot read it, so it runs the smallest job that shows it: ``range`` without a partition count
    is split into that many partitions.
    """
    if not is_connect(spark):
        return int(spark.sparkContext.defaultParallelism)
    from pyspark.sql import functions as F  # noqa: N812

    partitions = spark.range(0, 1 << 20).select(F.spark_partition_id().alias("partition"))
    return int(partitions.agg(F.max("partition")).first()[0]) + 1


def answers(remote: RemoteUrl, timeout: float = CONNECT_TIMEOUT_SECONDS) -> str | None:
    """None when something accepts connections on the server's port, else why not (the OS's words)."""
    try:
        with socket.create_connection((remote.host, remote.port), timeout=timeout):
            return None
    except OSError as e:
        return e.strerror or type(e).__name__


def server_gone(error: BaseException) -> str | None:
    """Why a Connect client's call failed when the server, not the query, is the cause, else None: the server
    stopped answering (its process ended, or the network to it), or it restarted and no longer knows the session."""
    try:
        import grpc
    except ImportError:  # no Connect client installed: never a Connect session
        return None
    current: BaseException | None = error
    for _ in range(20):
        if current is None:
            return None
        if isinstance(current, grpc.RpcError) and current.code() == grpc.StatusCode.UNAVAILABLE:
            return str(current.details() or "unavailable").split(";")[0]
        if "INVALID_HANDLE.SESSION_NOT_FOUND" in str(current):
            return "it restarted during the step, and lost the step's session"
        current = current.__cause__ or current.__context__
    return None


def unavailable(remote: RemoteUrl | None, why: str, doing: str = "starting the step") -> SparkConnectUnavailableError:
    server = f"SPARK_REMOTE ({remote.redacted})" if remote else "SPARK_REMOTE"
    return SparkConnectUnavailableError(
        f"The Spark Connect server of {server} did not answer while {doing}: {why}. Start it with `retrain "
        "spark-connect start` (its log names the cause when it stopped) and run the step again, or unset "
        "SPARK_REMOTE to start Spark in the step's own process. Nothing partial was kept."
    )


@contextmanager
def lost_server_reported(remote: RemoteUrl | None, doing: str) -> Iterator[None]:
    """Inside the block, an error whose cause is a Spark Connect server that stopped answering becomes the
    pipeline's error for it (what happened, what to do), wherever in a step it struck."""
    try:
        yield
    except SparkConnectUnavailableError:
        _close_client()
        raise
    except RetrainError:
        raise
    except Exception as e:
        gone = server_gone(e) if remote is not None else None
        if gone is None:
            raise
        _close_client()
        raise unavailable(remote, gone, doing) from None


def _close_client() -> None:
    """Close this process's client of a server that is gone, so that PySpark's clean-up at exit does not spend
    another round of retries on it."""
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None and is_connect(active):
        try:
            active.client.close()
        except Exception as e:  # noqa: BLE001 - best effort: the error being reported matters, not this one
            log.debug("Closing the Spark Connect client failed: %s", e)


@dataclass
class OutageBudget:
    """One allowance of retries for all the calls of a client session while the server does not answer.

    PySpark retries each call on its own: when a call that was executing gives up, its clean-up (releasing the
    execution on the server) starts a second round of the same retries, and the step learned that the server was
    gone only after twice :data:`OUTAGE_SECONDS`. With one budget, the calls after the first round fail at once. A
    failure more than ``seconds`` after the last one starts a new outage: within one, retries are at most 13 s apart.
    """

    seconds: float = OUTAGE_SECONDS
    clock: Callable[[], float] = time.monotonic
    _first: float = field(default=-math.inf, init=False)  # the current outage's first failure
    _last: float = field(default=-math.inf, init=False)  # its latest

    def allows_retry(self) -> bool:
        now = self.clock()
        if now - self._last > self.seconds:
            self._first = now
        self._last = now
        return now - self._first < self.seconds


def retry_policy(budget: OutageBudget) -> Any:
    """PySpark's default retry policy, with :data:`RETRIES` retries, that retries only while ``budget`` allows."""
    from pyspark.sql.connect.client.retries import DefaultPolicy

    class BudgetedPolicy(DefaultPolicy):
        def can_retry(self, exception: BaseException) -> bool:
            return super().can_retry(exception) and budget.allows_retry()

    return BudgetedPolicy(max_retries=RETRIES)


def connect_session(remote: RemoteUrl, app_name: str) -> SparkSession:
    """A new client session of the server at ``remote``; fails at once, with what to do, when nothing listens there.

    The server's own configuration (spark-defaults.conf, the JDBC driver, memory) is the one it was started with
    (`retrain spark-connect start`); a client session only sets what belongs to a session.
    """
    from pyspark.errors import PySparkException
    from pyspark.sql import SparkSession

    why = answers(remote)
    if why is not None:
        raise unavailable(remote, why)
    log.info("Using the Spark Connect server at %s for %s", remote.redacted, app_name)
    session = SparkSession.builder.remote(remote.url).appName(app_name).getOrCreate()
    session.client.set_retry_policies([retry_policy(OutageBudget())])
    try:
        version = session.version
    except PySparkException as e:
        session.stop()
        raise unavailable(remote, first_line(e)) from None
    log.debug("Spark Connect server %s runs Spark %s", remote.redacted, version)
    return session
