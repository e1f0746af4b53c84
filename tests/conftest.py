"""Session-wide fixtures: one real Spark session and one real PostgreSQL cluster per test run.

Tests are marked by what they need, ``postgres``, ``spark``, ``airflow`` or ``browser``: automatically when they use
(even through another fixture) a fixture that starts one, explicitly when they start one themselves. ``make
test-fast`` runs the others. A test that starts a program of a service it is not marked for fails at once (see
``only_marked_services``).
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from jobs.postgres.url import DatabaseUrl
from jobs.settings import Settings

REPO_ROOT = Path(__file__).resolve().parents[1]

#: the ``browser`` and ``page`` fixtures (a headless Chromium), shared by every test that looks at a page
pytest_plugins = ["tests.browser"]

#: fixture -> the marker of every test that uses it
NEEDS = {
    "pg_cluster": "postgres",
    "spark": "spark",
    "class_archive": "spark",
    "airflow_home": "airflow",
    "browser": "browser",
}
#: marker -> the programs that start its service (EmbeddedPostgres runs its binaries through runuser as root)
PROGRAMS = {
    "postgres": {"initdb", "pg_ctl", "postgres"},
    "spark": {"java", "spark-submit", "spark-class"},
    "airflow": {"airflow"},
    "browser": {"chromium", "node"},  # Playwright's driver is a node program; it starts Chromium
}


#: text a test module leaves for the end of the run: the SQL unit tests' CASE WHEN coverage table
SUMMARY = pytest.StashKey[dict[str, str]]()


def pytest_terminal_summary(terminalreporter, exitstatus: int, config: pytest.Config) -> None:
    for title, text in config.stash.get(SUMMARY, {}).items():
        terminalreporter.section(title)
        terminalreporter.write_line(text)


@pytest.fixture(scope="session")
def run_summary(request: pytest.FixtureRequest) -> dict[str, str]:
    """Title -> text, printed after the run's results (pytest imports this file under its own name, so tests reach
    the stash through this fixture rather than by importing ``SUMMARY``)."""
    return request.config.stash.setdefault(SUMMARY, {})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        for marker in sorted({NEEDS[name] for name in item.fixturenames if name in NEEDS}):
            item.add_marker(marker)


def program(args) -> str:
    """The program a ``Popen`` runs: its first word, or the word after ``--`` when ``runuser``/``sudo`` runs it."""
    if isinstance(args, str | bytes):
        args = os.fsdecode(args).split()
    elif isinstance(args, os.PathLike):
        args = [args]
    names = [Path(os.fsdecode(word)).name for word in args]
    if names[:1] in (["runuser"], ["sudo"]) and "--" in names[:-1]:
        names = names[names.index("--") + 1 :]
    return names[0] if names else ""


@contextmanager
def only_marked_services(item: pytest.Item) -> Iterator[None]:
    """Fail a test (or its fixtures' set-up) that starts PostgreSQL, a JVM or Airflow without being marked so."""
    marked = {mark.name for mark in item.iter_markers()}
    forbidden = {name: marker for marker, names in PROGRAMS.items() if marker not in marked for name in names}
    init = subprocess.Popen.__init__

    def guarded(self, args, *rest, **kwargs):
        name = program(args)
        if name in forbidden:  # pytest.fail raises a BaseException: no `except Exception` swallows it
            pytest.fail(f"{item.nodeid} starts {name} but is not marked {forbidden[name]!r} (see tests/conftest.py)")
        init(self, args, *rest, **kwargs)

    subprocess.Popen.__init__ = guarded
    try:
        yield
    finally:
        subprocess.Popen.__init__ = init


@pytest.hookimpl(wrapper=True)
def pytest_runtest_setup(item: pytest.Item):
    with only_marked_services(item):
        return (yield)


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    with only_marked_services(item):
        return (yield)


GERMAN = "de_DE.UTF-8"
NO_GERMAN = "no German locale (de_DE.UTF-8; `make setup` generates it as root) or no PostgreSQL German catalog"


def german_available() -> bool:
    """A German locale and PostgreSQL's German messages, to check that errors are classified by code, not words."""
    import glob
    import subprocess

    locales = subprocess.run(["locale", "-a"], capture_output=True, text=True).stdout.lower().split()
    return "de_de.utf8" in locales and bool(glob.glob("/usr/share/locale/de/LC_MESSAGES/postgres-*.mo"))


def speak(cluster, lc_messages: str) -> None:
    """Restart an embedded cluster with ``lc_messages`` in its postgresql.conf (a reload would race new sessions)."""
    conf = cluster.data_dir / "postgresql.conf"
    conf.write_text(conf.read_text() + f"\nlc_messages = '{lc_messages}'\n")
    cluster.stop()
    cluster.start()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def settings(tmp_path_factory: pytest.TempPathFactory) -> Settings:
    """Settings as on a fresh laptop, with data written under a temporary folder."""
    data = tmp_path_factory.mktemp("data")
    return Settings.from_env(
        env={"DATA_DIR": str(data / "data"), "MODEL_STORE": str(data / "model_store"), "SPARK_MASTER": "local[2]"},
        root=REPO_ROOT,
    )


@pytest.fixture(scope="session")
def class_archive(settings: Settings) -> Path | None:
    """The project's class archive (`make setup` builds it; built here when pytest runs on its own, ~75 s).

    A failed build only slows the Spark tests down; test_spark_class_archive.py fails on it.
    """
    import warnings

    from jobs.errors import ConfigError
    from jobs.spark.class_archive import build

    try:
        return build(settings)[0]
    except ConfigError as e:
        warnings.warn(str(e), stacklevel=1)
        return None


@pytest.fixture(scope="session")
def spark(settings: Settings, class_archive: Path | None):
    """One Spark session for the whole run: starting one costs seconds, stopping one per test costs minutes."""
    from jobs.spark.session import spark_session

    session = spark_session(
        settings,
        app_name="retrain-tests",
        overrides={"spark.ui.enabled": "false", "spark.sql.shuffle.partitions": "4", "spark.driver.memory": "2g"},
    )
    yield session
    session.stop()


@pytest.fixture(scope="session")
def pg_cluster():
    """A throwaway PostgreSQL cluster (the project's embedded one) on a free port, with the backend's schema.

    Its folder is outside pytest's: each pytest run sets ``/tmp/pytest-of-<user>`` back to mode 0700 as it starts,
    which would lock the ``postgres`` user out of the cluster of another run going on at the same time.
    """
    from jobs.postgres.embedded import EmbeddedPostgres

    root = Path(tempfile.mkdtemp(prefix="retrain-test-pg-"))
    cluster = EmbeddedPostgres(data_dir=root / "cluster", port=free_port())
    cluster.start()
    yield cluster
    cluster.stop()
    shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg(pg_cluster) -> DatabaseUrl:
    """The test cluster's database URL, as the application role: what the pipeline and the backend may do."""
    return pg_cluster.database_url()


@pytest.fixture(scope="session")
def pg_admin(pg_cluster) -> DatabaseUrl:
    """The test database as the cluster's superuser, which owns the tables: for arranging rows and the schema."""
    return pg_cluster.admin_url()


def empty_tables(admin: DatabaseUrl) -> None:
    """Empty ``health_records`` and ``users`` (ids restart), as the tables' owner: a module that loads rows into the
    shared test database leaves it as it found it."""
    import psycopg2

    with psycopg2.connect(**admin.psycopg_kwargs()) as conn, conn.cursor() as cur:
        cur.execute("TRUNCATE health_records, users RESTART IDENTITY CASCADE")


@contextmanager
def seeded_database(pg_cluster, rows: int, seed: int) -> Iterator[str]:
    """The test database holding ``rows`` demo records, loaded by the tables' owner, as the URL the pipeline reads
    with (its own role); emptied afterwards."""
    from jobs.demo.generator import generate
    from jobs.demo.loader import load

    admin = pg_cluster.admin_url()
    load(admin, generate(rows, seed))
    try:
        yield pg_cluster.database_url().full_url()
    finally:
        empty_tables(admin)


def extract_and_transform(spark, settings: Settings, ds: str, data_dir: Path) -> Path:
    """The two Spark steps of ``ds`` with a driver of their own (the session fixture's): the run's folder."""
    import dataclasses

    from jobs.extract import extract
    from jobs.run_context import RunContext
    from jobs.transform import transform

    run_settings = dataclasses.replace(settings, data_dir=data_dir)
    ctx = RunContext.for_ds(ds)
    extract(run_settings, ctx, spark)
    transform(run_settings, ctx, spark)
    return run_settings.run_folder(ds).path


@pytest.fixture
def empty_db(pg_admin: DatabaseUrl) -> Iterator[DatabaseUrl]:
    """The test database with its tables emptied before the test, as the superuser (tests arrange rows with it)."""
    empty_tables(pg_admin)
    yield pg_admin


AIRFLOW_HOME_KEY = pytest.StashKey[Path]()


def airflow_environment(home: Path) -> dict[str, str]:
    """The throwaway Airflow of a test run: its own home, a SQLite database there, the project's dags/, no examples."""
    return {
        "AIRFLOW_HOME": str(home),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__CORE__DAGS_FOLDER": str(REPO_ROOT / "dags"),
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{home / 'airflow.db'}",
    }


def pytest_configure(config: pytest.Config) -> None:
    """Airflow reads its configuration when first imported, and a test module may import it while pytest collects
    it (the tests of ``jobs.airflow_tasks`` do): so the throwaway Airflow's environment is set before collection,
    and nothing reads or writes ``~/airflow``. The ``airflow_home`` fixture migrates its database when a test needs
    one."""
    import tempfile

    home = Path(tempfile.mkdtemp(prefix="retrain-tests-airflow-"))
    config.stash[AIRFLOW_HOME_KEY] = home
    os.environ.update(airflow_environment(home))
    # A developer's own Spark Connect server is not the tests' to use: each step starts its driver unless a test
    # starts a server of its own (tests/test_spark_connect.py).
    os.environ.pop("SPARK_REMOTE", None)


def pytest_unconfigure(config: pytest.Config) -> None:
    import shutil

    home = config.stash.get(AIRFLOW_HOME_KEY, None)
    if home is not None:
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
def airflow_home(pytestconfig: pytest.Config) -> dict[str, str]:
    """The test run's throwaway Airflow (see ``pytest_configure``) with its database migrated by
    ``airflow db migrate``; the returned environment also serves ``airflow`` subprocesses."""
    import sys

    env = {**airflow_environment(pytestconfig.stash[AIRFLOW_HOME_KEY]), "PYTHONPATH": str(REPO_ROOT)}
    airflow = Path(sys.executable).with_name("airflow")
    migrated = subprocess.run(
        [str(airflow), "db", "migrate"], env={**os.environ, **env}, capture_output=True, text=True, timeout=300
    )
    if migrated.returncode != 0:
        pytest.fail(f"`airflow db migrate` failed:\n{migrated.stdout[-3000:]}\n{migrated.stderr[-3000:]}")
    return env
