"""The project-local PostgreSQL: a cluster in ``.local/pg`` that stands in for ``DATABASE_URL`` when it is unset.

It uses the machine's server binaries (``pg_config --bindir``, else the newest ``/usr/lib/postgresql/*/bin``),
listens on 127.0.0.1 only, on its own port (54329 by default, so a system PostgreSQL on 5432 is left alone), with
its unix socket inside the data directory. ``initdb`` refuses to run as root, so as root every server command runs
as the ``postgres`` user through ``runuser``.

It holds health records, so it is locked like a real server: ``scram-sha-256`` authentication for every connection
(TCP and unix socket alike), with random passwords kept in files only their owner can read
(:mod:`jobs.postgres.secret`). Two roles, each with its own password:

- the superuser ``postgres`` creates the roles, the database and the tables (it owns them) and loads the demo's
  data (:meth:`EmbeddedPostgres.admin_url`); its password is in ``.local/pg.superuser.password``;
- the application role ``retrain``, the one the pipeline and the backend use (``retrain db url``), is not a
  superuser and may do only what they need (:data:`APPLICATION_GRANTS`): read ``users`` and ``health_records``, and
  insert a prediction into ``health_records`` (not its outcome). Whoever holds its password can neither read other
  databases' files, nor change the schema, nor rewrite or delete records, nor mark one as verified.

A cluster created by an older version is brought to this state the next time it starts: one with ``trust``
authentication is given passwords; one whose superuser shared the application's password gets its own, and the
tables the application role owned pass to the superuser.

Tuned for a throwaway development database: ``wal_level = minimal`` lets a COPY into a table truncated in the same
transaction skip the WAL, and ``synchronous_commit = off`` makes commits cheap. Neither loses data on a clean stop.
"""

from __future__ import annotations

import logging
import os
import pwd
import re
import shutil
import socket
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from importlib import resources
from pathlib import Path

from jobs.errors import EmbeddedPostgresError, PortInUseError
from jobs.postgres.secret import new_password, read_secret, secret_file, superuser_secret_file, write_secret
from jobs.postgres.url import DatabaseUrl
from jobs.settings import EMBEDDED_PG_DATABASE, EMBEDDED_PG_USER, Settings

log = logging.getLogger(__name__)

SUPERUSER = "postgres"
SERVER_OS_USER = "postgres"
AUTH_METHOD = "scram-sha-256"
_CONF_MARKER = "# --- retrain: project-local settings ---"
_INSTALL_HINT = "Install them with `make setup` (as root it runs apt-get) or `apt-get install postgresql`."
_SCHEMA_LOCK = 4_242_001  # advisory lock id: concurrent apply_schema calls must not race on CREATE ... IF NOT EXISTS
_ROLE_ATTRIBUTES = "LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION NOBYPASSRLS"
#: the backend's INSERT (serving/records.py) names these columns; the outcome columns are not among them
LOGGED_COLUMNS = ("user_id", "record_type", "data", "prediction", "confidence", "model_version", "created_at")
#: everything the application role may do: the pipeline reads, the backend logs predictions ({role}, {columns})
APPLICATION_GRANTS = (
    "GRANT SELECT ON users, health_records TO {role}",
    "GRANT INSERT ({columns}) ON health_records TO {role}",
    "GRANT USAGE ON SEQUENCE health_records_id_seq TO {role}",
)


@dataclass(frozen=True)
class ClusterStatus:
    """What ``retrain db status`` prints."""

    running: bool
    pid: int | None
    port: int | None
    data_dir: Path


def find_bin_dir() -> Path:
    """The directory of ``initdb``/``pg_ctl``/``postgres``: ``pg_config --bindir``, else the newest installed."""
    pg_config = shutil.which("pg_config")
    if pg_config:
        try:
            out = subprocess.run([pg_config, "--bindir"], capture_output=True, text=True, check=True).stdout.strip()
        except (OSError, subprocess.CalledProcessError):
            out = ""
        # libpq-dev's pg_config may point at a directory without the server binaries.
        if out and (Path(out) / "initdb").exists():
            return Path(out)

    def version(path: Path) -> tuple[int, ...]:
        return tuple(int(p) for p in re.findall(r"\d+", path.parent.name)) or (0,)

    installed = sorted((p for p in Path("/usr/lib/postgresql").glob("*/bin") if (p / "initdb").exists()), key=version)
    if installed:
        return installed[-1]
    raise EmbeddedPostgresError(
        "The PostgreSQL server binaries (initdb, pg_ctl, postgres) were not found: neither `pg_config --bindir` nor "
        f"/usr/lib/postgresql/*/bin has them. {_INSTALL_HINT} Or set DATABASE_URL to use another PostgreSQL."
    )


def apply_schema(db: DatabaseUrl) -> None:
    """Create the backend's tables and indexes (``jobs/postgres/schema.sql``) where they are missing."""
    import psycopg2

    from jobs.postgres.classify import classify

    sql = resources.files("jobs.postgres").joinpath("schema.sql").read_text(encoding="utf-8")
    try:
        conn = psycopg2.connect(**db.psycopg_kwargs())
        try:
            with conn, conn.cursor() as cur:  # one transaction
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                cur.execute(sql)
        finally:
            conn.close()
    except psycopg2.Error as e:
        raise classify(e, db, "applying jobs/postgres/schema.sql") from e
    log.debug("Schema applied to %s", db.redacted())


def port_is_free(port: int, host: str = "127.0.0.1") -> bool:
    """True when nothing listens on ``host:port`` (SO_REUSEADDR as PostgreSQL sets it, so TIME_WAIT is no clash)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((host, port))
        except OSError:
            return False
    return True


class EmbeddedPostgres:
    """One PostgreSQL cluster in ``data_dir``, served on 127.0.0.1:``port``."""

    def __init__(self, data_dir: Path, port: int, bin_dir: Path | None = None) -> None:
        self.data_dir = data_dir
        self.port = port
        self.bin_dir = bin_dir

    @classmethod
    def from_settings(cls, settings: Settings) -> EmbeddedPostgres:
        return cls(data_dir=settings.embedded_pg_dir, port=settings.embedded_pg_port)

    def __repr__(self) -> str:
        return f"EmbeddedPostgres(data_dir={str(self.data_dir)!r}, port={self.port})"

    @property
    def log_file(self) -> Path:
        return self.data_dir / "server.log"

    @property
    def secret_file(self) -> Path:
        """The application role's password file."""
        return secret_file(self.data_dir)

    @property
    def superuser_secret_file(self) -> Path:
        return superuser_secret_file(self.data_dir)

    def database_url(self) -> DatabaseUrl:
        """The pipeline's role and database, with the password (it shows only as ``***``)."""
        return self._url(EMBEDDED_PG_USER, EMBEDDED_PG_DATABASE, self.secret_file)

    def admin_url(self) -> DatabaseUrl:
        """The superuser in the pipeline's database: for set-up and the demo's data, never the pipeline's runs."""
        return self._url(SUPERUSER, EMBEDDED_PG_DATABASE, self.superuser_secret_file)

    def _url(self, user: str, database: str, secret: Path) -> DatabaseUrl:
        url = DatabaseUrl.parse(f"postgresql://{user}@127.0.0.1:{self.port}/{database}")
        return replace(url, password=read_secret(secret) or "")

    # -- lifecycle ---------------------------------------------------------------------------------------------

    def status(self) -> ClusterStatus:
        """Running when ``postmaster.pid`` names a live process; its port is the one the server really uses."""
        pid_file = self.data_dir / "postmaster.pid"
        try:
            lines = pid_file.read_text().splitlines()
            pid, port = int(lines[0]), int(lines[3])
        except (OSError, ValueError, IndexError):
            return ClusterStatus(running=False, pid=None, port=None, data_dir=self.data_dir)
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return ClusterStatus(running=False, pid=None, port=None, data_dir=self.data_dir)
        except PermissionError:
            pass  # alive, owned by another user
        return ClusterStatus(running=True, pid=pid, port=port, data_dir=self.data_dir)

    def start(self) -> None:
        """Create the cluster if needed, start it, and make sure the role, database and schema exist. Idempotent."""
        current = self.status()
        if current.running:
            if current.port != self.port:
                raise EmbeddedPostgresError(
                    f"The embedded PostgreSQL in {self.data_dir} is already running on port {current.port}, not "
                    f"{self.port}. Stop it first (`retrain db stop` with RETRAIN_PG_PORT={current.port}) to change "
                    "the port."
                )
            log.info("Embedded PostgreSQL already running on 127.0.0.1:%s (pid %s)", self.port, current.pid)
        else:
            if not port_is_free(self.port):
                raise PortInUseError(
                    f"Port {self.port} on 127.0.0.1 is already in use by another process, so the embedded "
                    f"PostgreSQL ({self.data_dir}) cannot listen there. Stop that process or pick another port, "
                    f"e.g. `RETRAIN_PG_PORT={self.port + 1} retrain db start` (and keep RETRAIN_PG_PORT set for "
                    "later commands)."
                )
            self._prepare_data_dir()
            if not (self.data_dir / "PG_VERSION").exists():
                self._initdb()
            self._pg_ctl_start()
        if read_secret(self.superuser_secret_file) is None:
            if read_secret(self.secret_file) is None:
                self._lock_trusting_cluster()
            else:
                self._separate_superuser()
        self._ensure_database()
        apply_schema(self.admin_url())
        self._grant_application_role()

    def stop(self, mode: str = "fast") -> None:
        """Stop the server. Idempotent.

        ``fast`` disconnects sessions and flushes data; ``immediate`` aborts like a crash (used to test that a
        reader killed mid-way leaves nothing behind).
        """
        if not self.status().running:
            log.info("Embedded PostgreSQL (%s) is not running", self.data_dir)
            return
        self._grant_traverse()
        result = self._run([self._bin("pg_ctl"), "-D", str(self.data_dir), "-m", mode, "-w", "-t", "60", "stop"])
        if result.returncode != 0 and self.status().running:
            raise EmbeddedPostgresError(
                f"Could not stop the embedded PostgreSQL in {self.data_dir}: {result.stderr.strip()}{self._log_tail()}"
            )
        log.info("Stopped the embedded PostgreSQL (%s)", self.data_dir)

    # -- steps ---------------------------------------------------------------------------------------------------

    def _bin(self, name: str) -> str:
        if self.bin_dir is None:
            self.bin_dir = find_bin_dir()
        path = self.bin_dir / name
        if not path.exists():
            raise EmbeddedPostgresError(f"{path} does not exist. {_INSTALL_HINT}")
        return str(path)

    @staticmethod
    def _as_root() -> bool:
        return os.geteuid() == 0

    def _run(self, cmd: list[str]) -> subprocess.CompletedProcess[str]:
        """Run a server binary, as ``postgres`` when we are root (initdb and postgres refuse to run as root)."""
        if self._as_root():
            cmd = ["runuser", "-u", SERVER_OS_USER, "--", *cmd]
        env = {**os.environ, "LC_ALL": "C", "LANG": "C"}
        try:
            return subprocess.run(cmd, capture_output=True, text=True, env=env, cwd="/", timeout=180)
        except (OSError, subprocess.TimeoutExpired) as e:
            raise EmbeddedPostgresError(f"Running {cmd[0]} failed: {e}") from e

    def _prepare_data_dir(self) -> None:
        """Create the data directory; as root hand it to ``postgres`` and make sure ``postgres`` can reach it."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if any(self.data_dir.iterdir()) and not (self.data_dir / "PG_VERSION").exists():
            raise EmbeddedPostgresError(
                f"{self.data_dir} is not empty but holds no PostgreSQL cluster (no PG_VERSION). Point RETRAIN_PG_DIR "
                "at an empty or missing directory, or remove this one."
            )
        if self._as_root():
            try:
                user = pwd.getpwnam(SERVER_OS_USER)
            except KeyError as e:
                raise EmbeddedPostgresError(
                    f"Running as root, the server must run as the '{SERVER_OS_USER}' user, which does not exist. "
                    f"{_INSTALL_HINT}"
                ) from e
            os.chown(self.data_dir, user.pw_uid, user.pw_gid)
            self._grant_traverse()
        os.chmod(self.data_dir, 0o700)

    def _grant_traverse(self) -> None:
        """As root, let ``postgres`` traverse every parent of the data directory (search permission only).

        A parent such as pytest's ``/tmp/pytest-of-root`` (mode 0700) would otherwise stop ``postgres`` from
        reaching its own data directory. Adding the execute bit lets it pass through without listing anything.
        pytest resets that directory to 0700 when another session starts, so this is repeated before every server
        command; the running server itself works relative to its data directory and is unaffected.
        """
        if not self._as_root():
            return
        user = pwd.getpwnam(SERVER_OS_USER)
        groups = {g for g in os.getgrouplist(SERVER_OS_USER, user.pw_gid)}
        for parent in reversed(self.data_dir.resolve().parents):
            st = parent.stat()
            if st.st_uid == user.pw_uid:
                bit = stat.S_IXUSR
            elif st.st_gid in groups:
                bit = stat.S_IXGRP
            else:
                bit = stat.S_IXOTH
            if not st.st_mode & bit:
                log.info(
                    "Granting search (execute) permission on %s so that '%s' can reach %s",
                    parent,
                    SERVER_OS_USER,
                    self.data_dir,
                )
                os.chmod(parent, stat.S_IMODE(st.st_mode) | bit)

    def _initdb(self) -> None:
        log.info("Creating the embedded PostgreSQL cluster in %s", self.data_dir)
        password = new_password()
        with self._pwfile(password) as pwfile:
            result = self._run(
                [
                    self._bin("initdb"),
                    "-D",
                    str(self.data_dir),
                    "-U",
                    SUPERUSER,
                    f"--pwfile={pwfile}",
                    f"--auth={AUTH_METHOD}",
                    "--encoding=UTF8",
                    "--no-locale",
                    "--no-sync",
                ]
            )
        if result.returncode != 0:
            raise EmbeddedPostgresError(
                f"initdb failed for {self.data_dir} (exit code {result.returncode}):\n{_tail(result.stderr)}"
            )
        write_secret(self.superuser_secret_file, password)
        log.info("The superuser's password is in %s (readable by its owner only)", self.superuser_secret_file)
        socket_dir = str(self.data_dir.resolve()).replace("'", "''")
        with open(self.data_dir / "postgresql.conf", "a", encoding="utf-8") as conf:
            conf.write(
                f"\n{_CONF_MARKER}\n"
                "listen_addresses = '127.0.0.1'\n"
                f"unix_socket_directories = '{socket_dir}'\n"
                "wal_level = minimal\n"
                "max_wal_senders = 0\n"
                "synchronous_commit = off\n"
            )

    def _pg_ctl_start(self) -> None:
        self._grant_traverse()
        result = self._run(
            [
                self._bin("pg_ctl"),
                "-D",
                str(self.data_dir),
                "-l",
                str(self.log_file),
                "-w",
                "-t",
                "60",
                "-o",
                f"-p {int(self.port)}",
                "start",
            ]
        )
        if result.returncode != 0 or not self.status().running:
            raise EmbeddedPostgresError(
                f"The embedded PostgreSQL in {self.data_dir} failed to start on 127.0.0.1:{self.port} "
                f"(pg_ctl exit code {result.returncode}). {result.stderr.strip()}{self._log_tail()}"
            )
        log.info("Started the embedded PostgreSQL on 127.0.0.1:%s (data dir %s)", self.port, self.data_dir)

    def _superuser_connection(self, database: str = "postgres"):
        """A connection as the superuser, with its own password; the error says which file to restore."""
        import psycopg2

        admin = self._url(SUPERUSER, database, self.superuser_secret_file)
        try:
            return psycopg2.connect(**admin.psycopg_kwargs())
        except psycopg2.Error as e:
            raise EmbeddedPostgresError(
                f"Cannot connect to the embedded PostgreSQL on 127.0.0.1:{self.port} as {SUPERUSER!r} with the "
                f"password in {self.superuser_secret_file}: {str(e).strip()}{self._log_tail()}"
            ) from None

    def _ensure_database(self) -> None:
        """The application role (not a superuser, with its own password) and its database, owned by the superuser.

        Idempotent, and it repairs: a role that was given more rights loses them, a missing password file gets a
        new password, and a database the application role owned passes to the superuser.
        """
        from psycopg2 import sql

        conn = self._superuser_connection()
        try:
            conn.autocommit = True  # CREATE DATABASE refuses to run inside a transaction
            role = sql.Identifier(EMBEDDED_PG_USER)
            with conn.cursor() as cur:
                cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (EMBEDDED_PG_USER,))
                exists = cur.fetchone() is not None
                password = read_secret(self.secret_file)
                fresh = password is None
                if fresh:
                    password = new_password()
                verb = "ALTER" if exists else "CREATE"
                cur.execute(sql.SQL(f"{verb} ROLE {{}} {_ROLE_ATTRIBUTES}").format(role))
                if fresh or not exists:
                    verifier = _verifier(password, EMBEDDED_PG_USER, conn)
                    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(role), (verifier,))
                if fresh:
                    write_secret(self.secret_file, password)
                    if exists:
                        log.warning("The role %r had no password file: it has a new password", EMBEDDED_PG_USER)
                    log.info("The application role's password is in %s (readable by its owner only)", self.secret_file)
                cur.execute(
                    "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = %s", (EMBEDDED_PG_DATABASE,)
                )
                found = cur.fetchone()
                database = sql.Identifier(EMBEDDED_PG_DATABASE)
                if found is None:
                    owner = sql.Identifier(SUPERUSER)
                    cur.execute(sql.SQL("CREATE DATABASE {} OWNER {}").format(database, owner))
                    log.info("Created role and database %r", EMBEDDED_PG_DATABASE)
                elif found[0] != SUPERUSER:
                    cur.execute(sql.SQL("ALTER DATABASE {} OWNER TO {}").format(database, sql.Identifier(SUPERUSER)))
        finally:
            conn.close()

    def _grant_application_role(self) -> None:
        """Give the application role exactly :data:`APPLICATION_GRANTS` (what it held before is taken back first).

        An older cluster's application role owned the tables: ownership passes to the superuser (``REASSIGN
        OWNED``), which also ends every right an owner has (``ALTER``, ``DROP``, ``TRUNCATE``, ``UPDATE``).
        """
        from psycopg2 import sql

        role = sql.Identifier(EMBEDDED_PG_USER)
        columns = sql.SQL(", ").join(sql.Identifier(c) for c in LOGGED_COLUMNS)
        conn = self._superuser_connection(EMBEDDED_PG_DATABASE)
        try:
            with conn, conn.cursor() as cur:  # one transaction: the role never holds a half-made set of rights
                cur.execute("SELECT pg_advisory_xact_lock(%s)", (_SCHEMA_LOCK,))
                cur.execute(sql.SQL("REASSIGN OWNED BY {} TO {}").format(role, sql.Identifier(SUPERUSER)))
                cur.execute(sql.SQL("REVOKE ALL ON users, health_records FROM {}").format(role))
                cur.execute(sql.SQL("REVOKE ALL ON SEQUENCE health_records_id_seq FROM {}").format(role))
                for grant in APPLICATION_GRANTS:
                    cur.execute(sql.SQL(grant).format(role=role, columns=columns))
        finally:
            conn.close()

    def _separate_superuser(self) -> None:
        """Give the superuser of an older cluster, which shared the application role's password, its own."""
        import psycopg2
        from psycopg2 import sql

        shared = self._url(SUPERUSER, "postgres", self.secret_file)
        try:
            conn = psycopg2.connect(**shared.psycopg_kwargs())
        except psycopg2.Error:
            raise EmbeddedPostgresError(
                f"The superuser's password file of the embedded PostgreSQL ({self.superuser_secret_file}) is missing, "
                f"so the roles of the cluster in {self.data_dir} cannot be managed. Restore the file, or recreate the "
                f"cluster: `retrain db stop`, remove {self.data_dir}, then `retrain db start` and `retrain db seed`."
            ) from None
        password = new_password()
        try:
            with conn, conn.cursor() as cur:  # the new password counts only once its file is written
                verifier = _verifier(password, SUPERUSER, conn)
                cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(SUPERUSER)), (verifier,))
                write_secret(self.superuser_secret_file, password)
        except BaseException:
            self.superuser_secret_file.unlink(missing_ok=True)
            raise
        finally:
            conn.close()
        log.warning(
            "The superuser of the embedded PostgreSQL in %s had the application role's password: it has its own now, "
            "in %s",
            self.data_dir,
            self.superuser_secret_file,
        )

    @contextmanager
    def _pwfile(self, password: str) -> Iterator[str]:
        """A private temporary file with the password for ``initdb --pwfile``, readable by the server's user only."""
        fd, name = tempfile.mkstemp(prefix="retrain-pw-")  # mode 0600
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out:
                out.write(password + "\n")
            if self._as_root():
                user = pwd.getpwnam(SERVER_OS_USER)
                os.chown(name, user.pw_uid, user.pw_gid)
            yield name
        finally:
            os.unlink(name)

    def _lock_trusting_cluster(self) -> None:
        """Give a cluster created with ``trust`` authentication passwords and switch it to ``scram-sha-256``.

        Clusters made by earlier versions of this module trusted every local connection. The passwords are set
        while trust still lets us in; only then is ``pg_hba.conf`` rewritten and reloaded, so a failure half-way
        leaves a working (if unlocked) cluster that the next start locks again.
        """
        import psycopg2
        from psycopg2 import sql

        hba = self.data_dir / "pg_hba.conf"
        try:
            rules = hba.read_text(encoding="utf-8")
        except OSError as e:
            raise EmbeddedPostgresError(f"Cannot read {hba}: {e}") from e
        if not re.search(r"^\s*(local|host)\S*\s.*\btrust\s*$", rules, re.MULTILINE):
            raise EmbeddedPostgresError(
                f"The password files of the embedded PostgreSQL ({self.superuser_secret_file} and "
                f"{self.secret_file.name}) are missing, so nothing can connect to the cluster in {self.data_dir}. "
                "Restore them, or recreate the cluster: "
                f"`retrain db stop`, remove {self.data_dir}, then `retrain db start` and `retrain db seed`."
            )
        log.warning(
            "The embedded PostgreSQL in %s trusts every local connection: locking it with passwords", self.data_dir
        )
        url = DatabaseUrl.parse(f"postgresql://{SUPERUSER}@127.0.0.1:{self.port}/postgres")
        conn = psycopg2.connect(**url.psycopg_kwargs())
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute("SELECT rolname FROM pg_roles WHERE rolname IN (%s, %s)", (SUPERUSER, EMBEDDED_PG_USER))
                for (role,) in cur.fetchall():
                    password = new_password()  # one each: the application's never logs in as the superuser
                    verifier = _verifier(password, role, conn)
                    cur.execute(sql.SQL("ALTER ROLE {} PASSWORD %s").format(sql.Identifier(role)), (verifier,))
                    write_secret(self.superuser_secret_file if role == SUPERUSER else self.secret_file, password)
                hba.write_text(
                    re.sub(r"\btrust(\s*)$", rf"{AUTH_METHOD}\1", rules, flags=re.MULTILINE), encoding="utf-8"
                )
                cur.execute("SELECT pg_reload_conf()")
        finally:
            conn.close()

    def _log_tail(self, lines: int = 20) -> str:
        try:
            text = self.log_file.read_text(errors="replace")
        except OSError:
            return ""
        return f"\nLast lines of {self.log_file}:\n{_tail(text, lines)}"


def _verifier(password: str, role: str, conn) -> str:
    """The SCRAM verifier of ``password``, computed by libpq: the plain password never reaches the server's logs."""
    from psycopg2.extensions import encrypt_password

    return encrypt_password(password, role, conn, AUTH_METHOD)


def _tail(text: str, lines: int = 20) -> str:
    return "\n".join(text.strip().splitlines()[-lines:])


def loading_database(settings: Settings) -> DatabaseUrl:
    """Where demo data is loaded and outcomes are written: ``DATABASE_URL`` as given (its role must be allowed to),
    else the embedded cluster as its superuser, because the application role may only read and log predictions."""
    if not settings.uses_embedded_database:
        return settings.database()
    return EmbeddedPostgres.from_settings(settings).admin_url()
