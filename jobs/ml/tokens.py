"""Admin JWTs: minted by ``retrain token`` and verified by the serving backend, both with ``SECRET_KEY`` (HS256).

Part of the contract between the pipeline and the serving backend, so it lives here and ``serving`` imports it.
Pure PyJWT, no web framework, so the command line can mint a token without importing FastAPI. A token's text is
never put into a log line or an error message: messages describe the token (its role, its expiry), not its value.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from jobs.errors import ConfigError

ALGORITHM = "HS256"
ADMIN_ROLE = "admin"
MIN_SECRET_LENGTH = 32  # an HMAC-SHA256 key shorter than the hash output weakens it (RFC 7518 section 3.2)

_TTL = re.compile(r"^\s*(\d+)\s*([smhd]?)\s*$")
_UNIT_SECONDS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}


class TokenRejected(Exception):
    """A token that does not authenticate (``status`` 401) or does not authorise (403); ``reason`` is safe to show."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def require_secret(secret_key: str | None) -> str:
    """The signing key, or a :class:`ConfigError` saying how to set one."""
    if not secret_key:
        raise ConfigError(
            "The SECRET_KEY setting is not set: the serving backend needs it to verify admin tokens and "
            "`retrain token` to sign them. Generate one with "
            "`python -c 'import secrets; print(secrets.token_urlsafe(32))'`."
        )
    if len(secret_key) < MIN_SECRET_LENGTH:
        raise ConfigError(
            f"The SECRET_KEY setting must be at least {MIN_SECRET_LENGTH} characters long for HS256. "
            f"Got {len(secret_key)} characters instead."
        )
    return secret_key


def parse_ttl(text: str) -> timedelta:
    """``"90"``/``"90s"``, ``"30m"``, ``"1h"``, ``"7d"`` as a duration."""
    match = _TTL.match(text)
    if not match or int(match.group(1)) == 0:
        raise ConfigError(f"--ttl must be a positive duration such as 3600, 30m, 1h or 7d. Got {text!r} instead.")
    return timedelta(seconds=int(match.group(1)) * _UNIT_SECONDS[match.group(2)])


def mint(
    secret_key: str | None, *, role: str, ttl: timedelta, subject: str = "retrain", now: datetime | None = None
) -> str:
    """A signed token with ``role``, ``iat``, ``exp`` (``now + ttl``) and ``sub``."""
    issued = now or datetime.now(UTC)
    claims = {"sub": subject, "role": role, "iat": issued, "exp": issued + ttl}
    return jwt.encode(claims, require_secret(secret_key), algorithm=ALGORITHM)


def verify_admin(token: str | None, secret_key: str) -> dict[str, Any]:
    """The claims of a valid admin token; raises :class:`TokenRejected` (401 or 403) otherwise."""
    if not token:
        raise TokenRejected(401, "Missing bearer token: send 'Authorization: Bearer <admin JWT>'.")
    try:
        claims = jwt.decode(token, secret_key, algorithms=[ALGORITHM], options={"require": ["exp"]})
    except jwt.ExpiredSignatureError:
        raise TokenRejected(401, "The token has expired: mint a new one with `retrain token --role admin`.") from None
    except jwt.MissingRequiredClaimError:
        raise TokenRejected(401, "The token has no 'exp' claim: admin tokens must expire.") from None
    except jwt.InvalidTokenError:
        raise TokenRejected(401, "Invalid token: not an HS256 JWT signed with this backend's SECRET_KEY.") from None
    role = claims.get("role")
    if role != ADMIN_ROLE:
        raise TokenRejected(403, f"The token's role is {role!r}; reloading models needs role 'admin'.")
    return claims
