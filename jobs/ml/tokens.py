"""Admin JWTs: minted by ``retrain token`` and verified by the serving backend, both with ``SECRET_KEY`` (HS256).

Part of the contract between the pipeline and the serving backend, so it lives here and ``serving`` imports it.
Pure PyJWT, no web framework, so the command line can mint a token without importing FastAPI. A token's text is
never put into a log line or an error message: messages describe the token (its role, its expiry), not its value.

:func:`check_claims` is the one reading of a token's times, used by the backend (:func:`verify_admin`) and by
deploy's preflight (``jobs.deploy.check_admin_token``), so the two never disagree about a token: ``exp`` and ``iat``
must be JSON numbers (PyJWT alone would take ``"exp": "1900000000"``), and the lifetime is bounded, so a leaked
token cannot be valid for years.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from jobs.errors import ConfigError

ALGORITHM = "HS256"
ADMIN_ROLE = "admin"
MIN_SECRET_LENGTH = 32  # an HMAC-SHA256 key shorter than the hash output weakens it (RFC 7518 section 3.2)
#: the longest lifetime (exp - iat) a token may have: a weekly run's token, renewed each week, with room to spare
MAX_TTL = timedelta(days=31)
#: a minted token is about 200 bytes; anything far longer is not ours, and is refused before it is decoded
MAX_TOKEN_BYTES = 4096
#: how far in the future an 'iat' may be, for clocks that differ a little between machines
CLOCK_SKEW = timedelta(minutes=1)

_TTL = re.compile(r"^\s*(\d{1,12})\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenRejected(Exception):
    """A token that does not authenticate (``status`` 401) or does not authorise (403); ``reason`` is safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def require_secret(secret_key: str | None) -> str:
    """The signing key, or a :class:`ConfigError` saying how to set one."""
    generate = "Generate one with `python3 -c 'import secrets; print(secrets.token_urlsafe(32))'`."
    if not secret_key:
        raise ConfigError(
            "The SECRET_KEY setting is not set: the serving backend needs it to verify admin tokens and "
            f"`retrain token` to sign them. {generate}"
        )
    if len(secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"The SECRET_KEY setting must be at least {MIN_SECRET_LENGTH} characters long for HS256. "
            f"Got {len(secret_key)} characters instead. {generate}"
        )
    return secret_key


def parse_ttl(text: str) -> timedelta:
    """``"90"``/``"90s"``, ``"30m"``, ``"1h"``, ``"7d"`` as a duration, at most :data:`MAX_TTL`."""
    match = _TTL.match(text)
    if not match or int(match.group(1)) == 0:
        shown = text if len(text) <= 40 else text[:40] + "..."
        raise ConfigError(f"--ttl must be a positive duration such as 3600, 30m, 1h or 7d. Got {shown!r} instead.")
    seconds = int(match.group(1)) * _UNIT_SECONDS[match.group(2)]
    if seconds > MAX_TTL.total_seconds():
        raise ConfigError(
            f"--ttl must be at most {_days(MAX_TTL)}, the longest lifetime the backend and deploy accept. "
            f"Got {text.strip()!r} instead: mint a shorter token and renew it before it expires."
        )
    return timedelta(seconds=seconds)


def _days(delta: timedelta) -> str:
    return f"{delta.days}d" if delta.days and not delta.seconds else f"{delta.total_seconds():g}s"


def mint(
    secret_key: str | None, *, role: str, ttl: timedelta, subject: str = "retrain", now: datetime | None = None
) -> str:
    """A signed token with ``role``, ``iat``, ``exp`` (``now + ttl``) and ``sub``; ``ttl`` at most :data:`MAX_TTL`."""
    if not timedelta(0) < ttl <= MAX_TTL:
        raise ConfigError(
            f"A token's lifetime must be positive and at most {_days(MAX_TTL)}, the longest lifetime the backend "
            f"and deploy accept. Got {ttl} instead."
        )
    issued = now or datetime.now(UTC)
    claims = {"sub": subject, "role": role, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, require_secret(secret_key), algorithm=ALGORITHM)


def check_size(token: str) -> None:
    """Refuse a token longer than :data:`MAX_TOKEN_BYTES` before anything decodes it (401)."""
    if len(token) > MAX_TOKEN_BYTES:
        raise TokenRejected(
            401, f"The token is longer than {MAX_TOKEN_BYTES} characters: not a token minted by `retrain token`."
        )


def check_claims(claims: Mapping[str, Any], *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """``(issued, expires)`` of a token's claims; raises :class:`TokenRejected` (401) unless ``iat`` and ``exp`` are
    JSON numbers, the token was not issued in the future, lives at most :data:`MAX_TTL` and has not expired.

    The numbers are compared before they become dates, so an absurd ``exp`` (``1e300``) is refused, not an
    OverflowError.
    """
    expires_at, issued_at = _numeric(claims, "exp"), _numeric(claims, "iat")
    now_ts = (now or datetime.now(UTC)).timestamp()
    if issued_at > now_ts + CLOCK_SKEW.total_seconds():
        raise TokenRejected(401, "The token says it was issued in the future ('iat'): check the clocks, mint again.")
    if expires_at - issued_at > MAX_TTL.total_seconds():
        raise TokenRejected(
            401,
            f"The token's lifetime (exp - iat) exceeds {_days(MAX_TTL)}, the longest lifetime accepted: "
            "mint a shorter one with `retrain token --role admin --ttl 7d`.",
        )
    if expires_at <= now_ts:
        expired = datetime.fromtimestamp(expires_at, UTC)
        raise TokenRejected(
            401,
            f"The token expired at {expired:%Y-%m-%d %H:%M:%S} UTC: mint a new one with `retrain token --role admin`.",
        )
    return datetime.fromtimestamp(issued_at, UTC), datetime.fromtimestamp(expires_at, UTC)


def _numeric(claims: Mapping[str, Any], name: str) -> float:
    value = claims.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise TokenRejected(
            401, f"The token has no numeric {name!r} claim (seconds since 1970); admin tokens carry 'iat' and 'exp'."
        )
    return float(value)


def verify_admin(token: str | None, secret_key: str, *, now: datetime | None = None) -> dict[str, Any]:
    """The claims of a valid admin token; raises :class:`TokenRejected` (401 or 403) otherwise."""
    if not token:
        raise TokenRejected(401, "Missing bearer token: send 'Authorization: Bearer <admin JWT>'.")
    check_size(token)
    try:
        # The times are checked by check_claims, as deploy checks them, not by PyJWT (which takes numeric strings).
        claims = jwt.decode(
            token, secret_key, algorithms=[ALGORITHM], options={"verify_exp": False, "verify_iat": False}
        )
    except jwt.InvalidTokenError:
        raise TokenRejected(
            401,
            "Invalid token: not an HS256 JWT signed with this backend's SECRET_KEY. Mint one where that key is set: "
            "`retrain token --role admin`.",
        ) from None
    check_claims(claims, now=now)
    role = claims.get("role")
    if role != ADMIN_ROLE:
        raise TokenRejected(403, f"The token's role is {role!r}; reloading models needs role 'admin'.")
    return claims
