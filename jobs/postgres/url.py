"""Parse ``DATABASE_URL`` into what psycopg2 and Spark's JDBC reader need, keeping the password out of sight.

The password lives only in :attr:`DatabaseUrl.password` and in the JDBC *properties*; the JDBC URL, ``repr`` and
every message use :meth:`DatabaseUrl.redacted`, so it cannot leak into logs, errors or Spark's plan.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from jobs.errors import ConfigError

_SCHEMES = ("postgresql", "postgres")
_DEFAULT_PORT = 5432


@dataclass(frozen=True)
class DatabaseUrl:
    """A parsed PostgreSQL connection URL."""

    host: str
    port: int
    database: str
    user: str
    password: str = field(repr=False, default="")
    params: tuple[tuple[str, str], ...] = ()

    @classmethod
    def parse(cls, url: str) -> DatabaseUrl:
        """Parse ``postgresql://user:password@host:port/db?sslmode=...`` (user and password URL-encoded)."""
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError as e:
            raise ConfigError(
                f"DATABASE_URL is not a valid URL ({e}). Expected postgresql://user:password@host:port/db; "
                "URL-encode special characters in the user and password (e.g. '@' as %40)."
            ) from e
        if parts.scheme not in _SCHEMES:
            raise ConfigError(
                f"DATABASE_URL must start with postgresql:// or postgres://. Got {parts.scheme or 'no'} scheme instead."
            )
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database:
            raise ConfigError(
                "DATABASE_URL must name a host and a database, as in postgresql://user:password@host:5432/db."
            )
        return cls(
            host=parts.hostname,
            port=port or _DEFAULT_PORT,
            database=database,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            params=tuple(parse_qsl(parts.query, keep_blank_values=True)),
        )

    @property
    def jdbc_url(self) -> str:
        """The JDBC URL: host, port, database and non-secret parameters only, never the credentials."""
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in self.params if k not in ("user", "password"))
        return f"jdbc:postgresql://{self.host}:{self.port}/{quote(self.database)}" + (f"?{query}" if query else "")

    def jdbc_properties(self) -> dict[str, str]:
        """Properties for ``spark.read.jdbc``: the credentials travel here, not in the URL."""
        props = {"user": self.user, "driver": "org.postgresql.Driver"}
        if self.password:
            props["password"] = self.password
        return props

    def psycopg_kwargs(self) -> dict[str, str | int]:
        """Keyword arguments for ``psycopg2.connect``."""
        kwargs: dict[str, str | int] = {"host": self.host, "port": self.port, "dbname": self.database}
        if self.user:
            kwargs["user"] = self.user
        if self.password:
            kwargs["password"] = self.password
        kwargs.update(dict(self.params))
        return kwargs

    def redacted(self) -> str:
        """The URL with the password masked: the only form that may appear in logs and messages."""
        auth = quote(self.user, safe="") + (":***" if self.password else "") + "@" if self.user else ""
        query = "&".join(f"{k}={v}" for k, v in self.params)
        return f"postgresql://{auth}{self.host}:{self.port}/{self.database}" + (f"?{query}" if query else "")

    def full_url(self) -> str:
        """The whole URL, password included (URL-encoded): only for tools that need it, never for logs or messages."""
        if not self.password:
            return self.redacted()
        return self.redacted().replace(":***@", f":{quote(self.password, safe='')}@", 1)

    def __str__(self) -> str:
        return self.redacted()
