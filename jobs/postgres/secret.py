"""The embedded cluster's password: generated at ``initdb``, kept in a file that only its owner can read.

The file sits beside the data directory (``.local/pg.password`` for ``.local/pg``), not inside it, so that it
belongs to the user who runs ``retrain`` even when the server runs as ``postgres``. The password then travels
exactly as a ``DATABASE_URL`` password does: in :class:`~jobs.postgres.url.DatabaseUrl`, to psycopg2's keyword
arguments and Spark's JDBC properties, never into logs, plans or manifests.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

from jobs.errors import ConfigError

PASSWORD_BYTES = 32


def secret_file(data_dir: Path) -> Path:
    """Where the password of the cluster in ``data_dir`` is kept."""
    return data_dir.with_name(f"{data_dir.name}.password")


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
