"""The embedded cluster's passwords: generated at random, kept in files that only their owner can read.

Two roles, two secrets: the application role's (``.local/pg.password`` for ``.local/pg``: the pipeline and the
backend) and the superuser's (``.local/pg.superuser.password``: creating roles and the database, the schema, the
demo's data). The files sit beside the data directory, not inside it, so that they belong to the user who runs
``retrain`` even when the server runs as ``postgres``. A password then travels exactly as a ``DATABASE_URL``
password does: in :class:`~jobs.postgres.url.DatabaseUrl`, to psycopg2's keyword arguments and Spark's JDBC
properties, never into logs, plans or manifests.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from jobs.errors import ConfigError

PASSWORD_BYTES = 32


def secret_file(data_dir: Path) -> Path:
    """Where the application role's password of the cluster in ``data_dir`` is kept."""
    return data_dir.with_name(f"{data_dir.name}.password")


def superuser_secret_file(data_dir: Path) -> Path:
    """Where the superuser's password of the cluster in ``data_dir`` is kept (never the application's)."""
    return data_dir.with_name(f"{data_dir.name}.superuser.password")


def new_password() -> str:
    """A random password of URL-safe characters, so that it needs no quoting in a URL or a pwfile."""
    return secrets.token_urlsafe(PASSWORD_BYTES)


def write_secret(path: Path, password: str) -> None:
    """Write ``password`` to ``path`` with mode 0600, created so (never widened, even for an instant)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    staging = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(staging, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as out:
            out.write(password + "\n")
        os.replace(staging, path)
    finally:
        staging.unlink(missing_ok=True)


def read_secret(path: Path) -> str | None:
    """The password in ``path``; ``None`` when there is none yet. A file others can read is refused, as ssh does."""
    try:
        mode = path.stat().st_mode
    except FileNotFoundError:
        return None
    if stat.S_IMODE(mode) & 0o077:
        raise ConfigError(
            f"{path} holds the embedded PostgreSQL's password but other users may read it (mode "
            f"{stat.S_IMODE(mode):04o}). Restrict it with `chmod 600 {path}`."
        )
    return path.read_text(encoding="utf-8").strip() or None
