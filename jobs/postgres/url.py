"""Parse ``DATABASE_URL`` into what psycopg2 and Spark's JDBC reader need, keeping the password out of sight.

The password lives only in :attr:`DatabaseUrl.password` and in the JDBC *properties*; the JDBC URL, ``repr`` and
every message use :meth:`DatabaseUrl.redacted`, so it cannot leak into logs, errors or Spark's plan. A password given
as a query parameter (``?password=...``, as libpq accepts it) is the password too, and overrides the one of the
userinfo, as in libpq. A URL that cannot be parsed is refused with a message that quotes none of it: its pieces may
be pieces of a password that was not URL-encoded.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qsl, quote, unquote, urlsplit

from jobs.errors import ConfigError

_SCHEMES = ("postgresql", "postgres")
_DEFAULT_PORT = 5432
#: query parameters whose values are secrets: masked in every printable form, kept out of the JDBC URL
SECRET_PARAMS = frozenset({"password", "sslpassword"})
_ENCODE_HINT = (
    "Expected postgresql://user:password@host:port/db; URL-encode special characters in the user and password "
    "(e.g. '@' as %40, ':' as %3A, '/' as %2F, '#' as %23), or pass the password as ?password=<URL-encoded>."
)


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
        """Parse ``postgresql://user:password@host:port/db?sslmode=...`` (user and password URL-encoded).

        ``?user=`` and ``?password=`` in the query override the userinfo's, as libpq reads them. No message quotes
        the URL or Python's own error about it, which names the text it could not read.
        """
        try:
            parts = urlsplit(url)
            port = parts.port
        except ValueError:
            raise ConfigError(
                "DATABASE_URL is not a valid URL: its host:port part cannot be read (a port must be a number "
                f"from 0 to 65535, an IPv6 address must be in brackets). {_ENCODE_HINT}"
            ) from None
        if parts.scheme not in _SCHEMES:
            raise ConfigError(
                "DATABASE_URL must start with postgresql:// or postgres://. "
                + ("Got another scheme instead." if parts.scheme else "Got no scheme instead.")
            )
        if parts.fragment or "#" in url or "@" in parts.path:
            raise ConfigError(
                f"DATABASE_URL is not a valid URL: a '#', or an '@' after the host, is left outside the password. "
                f"{_ENCODE_HINT}"
            )
        database = unquote(parts.path.lstrip("/"))
        if not parts.hostname or not database:
            raise ConfigError(
                "DATABASE_URL must name a host and a database, as in postgresql://user:password@host:5432/db."
            )
        query = parse_qsl(parts.query, keep_blank_values=True)
        overrides = {k: v for k, v in query if k in ("user", "password")}
        return cls(
            host=parts.hostname,
            port=port or _DEFAULT_PORT,
            database=database,
            user=overrides.get("user", unquote(parts.username or "")),
            password=overrides.get("password", unquote(parts.password or "")),
            params=tuple((k, v) for k, v in query if k not in ("user", "password")),
        )

    def secrets(self) -> list[str]:
        """Every secret this URL holds (the password, an ``sslpassword``): what a redaction must mask."""
        return [s for s in (self.password, *(v for k, v in self.params if k in SECRET_PARAMS)) if s]

    @property
    def jdbc_url(self) -> str:
        """The JDBC URL: host, port, database and non-secret parameters only, never the credentials."""
        query = "&".join(f"{quote(k)}={quote(v)}" for k, v in self.params if k not in SECRET_PARAMS)
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
        query = "&".join(f"{k}={'***' if k in SECRET_PARAMS else v}" for k, v in self.params)
        return f"postgresql://{auth}{self.host}:{self.port}/{self.database}" + (f"?{query}" if query else "")

    def full_url(self) -> str:
        """The whole URL, password included (URL-encoded): only for tools that need it, never for logs or messages."""
        if not self.password:
            return self.redacted()
        return self.redacted().replace(":***@", f":{quote(self.password, safe='')}@", 1)

    def __str__(self) -> str:
        return self.redacted()


def secrets_of(url: str) -> list[str]:
    """The secrets of a ``DATABASE_URL`` as written, for masking: parsed when it can be, guessed when it cannot.

    A URL that does not parse (a password with an unencoded '/' or '#') still holds its password; the guess is the
    userinfo (before the last '@'), the text after its first ':', and every ``password=`` value of the query.
    """
    try:
        return DatabaseUrl.parse(url).secrets()
    except ConfigError:
        pass
    rest = url.split("://", 1)[-1]
    userinfo = rest.rsplit("@", 1)[0] if "@" in rest else ""
    guesses = [userinfo, userinfo.partition(":")[2]]
    guesses += [v for k, v in parse_qsl(rest.partition("?")[2], keep_blank_values=True) if k in SECRET_PARAMS]
    return [g for guess in guesses for g in {guess, unquote(guess)} if g]
