"""The admin dependency of ``POST /admin/reload_models``: a bearer JWT, HS256, ``role: admin``, with ``exp``."""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from jobs.ml.tokens import TokenRejected, verify_admin

log = logging.getLogger(__name__)
_bearer = HTTPBearer(auto_error=False)  # we answer a missing token ourselves: 401 with the same JSON shape


def admin_required(secret_key: str) -> Callable[..., dict[str, Any]]:
    """A dependency returning the token's claims, or answering 401 (not authenticated) / 403 (not an admin)."""

    def require_admin(credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)]) -> dict[str, Any]:
        try:
            return verify_admin(credentials.credentials if credentials else None, secret_key)
        except TokenRejected as e:
            log.warning("Refused a reload request (HTTP %d): %s", e.status, e.reason)
            headers = {"WWW-Authenticate": "Bearer"} if e.status == 401 else None
            raise HTTPException(status_code=e.status, detail=e.reason, headers=headers) from None

    return require_admin
