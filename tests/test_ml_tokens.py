"""Admin tokens: minting, the backend's verification (401/403), and the pipeline's claims-only preflight."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import jwt
import pytest

from jobs.deploy import check_admin_token
from jobs.errors import AdminTokenError, ConfigError
from jobs.ml.tokens import TokenRejected, mint, parse_ttl, verify_admin
from jobs.settings import Settings

SECRET = "test-secret-key-0123456789-abcdefghijklmnop"
REPO = Path(__file__).resolve().parents[1]


def settings_with(token: str | None) -> Settings:
    return Settings.from_env(env={"ADMIN_JWT_TOKEN": token} if token else {}, root=REPO)


def test_a_minted_admin_token_verifies_and_carries_role_and_expiry() -> None:
    token = mint(SECRET, role="admin", ttl=timedelta(hours=1))
    claims = verify_admin(token, SECRET)
    assert claims["role"] == "admin" and claims["exp"] - claims["iat"] == 3600
    assert jwt.get_unverified_header(token)["alg"] == "HS256"


@pytest.mark.parametrize(
    ("token", "status", "words"),
    [
        (None, 401, "Missing bearer token"),
        ("not-a-jwt", 401, "Invalid token"),
        (mint("another-secret-key-of-sufficient-length-42", role="admin", ttl=timedelta(hours=1)), 401, "Invalid"),
        (
            mint(SECRET, role="admin", ttl=timedelta(seconds=1), now=datetime.now(UTC) - timedelta(hours=1)),
            401,
            "expired",
        ),
        (jwt.encode({"role": "admin"}, SECRET, algorithm="HS256"), 401, "no numeric 'exp'"),
        (mint(SECRET, role="analyst", ttl=timedelta(hours=1)), 403, "role 'admin'"),
    ],
)
def test_the_backend_rejects_missing_invalid_expired_and_non_admin_tokens(token, status, words) -> None:
    with pytest.raises(TokenRejected) as caught:
        verify_admin(token, SECRET)
    assert caught.value.status == status and words in caught.value.reason


def test_an_unsigned_token_is_rejected() -> None:
    unsigned = jwt.encode({"role": "admin", "exp": 4_102_444_800}, None, algorithm="none")
    with pytest.raises(TokenRejected) as caught:
        verify_admin(unsigned, SECRET)
    assert caught.value.status == 401


def test_minting_needs_a_long_enough_secret_key() -> None:
    with pytest.raises(ConfigError, match="SECRET_KEY setting is not set"):
        mint(None, role="admin", ttl=timedelta(hours=1))
    with pytest.raises(ConfigError, match="at least 32 characters"):
        mint("short", role="admin", ttl=timedelta(hours=1))


@pytest.mark.parametrize(("text", "seconds"), [("90", 90), ("90s", 90), ("30m", 1800), ("1h", 3600), ("7d", 604800)])
def test_ttl_forms(text: str, seconds: int) -> None:
    assert parse_ttl(text) == timedelta(seconds=seconds)


@pytest.mark.parametrize("text", ["", "0", "1w", "-1h", "h"])
def test_bad_ttl_is_a_config_error(text: str) -> None:
    with pytest.raises(ConfigError, match="--ttl must be a positive duration"):
        parse_ttl(text)


def test_preflight_accepts_an_admin_token_that_outlives_the_run() -> None:
    check_admin_token(settings_with(mint(SECRET, role="admin", ttl=timedelta(hours=3))), valid_for=timedelta(hours=2))


@pytest.mark.parametrize(
    ("token", "words"),
    [
        (None, "ADMIN_JWT_TOKEN setting is not set"),
        ("garbage", "not a JWT"),
        (mint(SECRET, role="viewer", ttl=timedelta(hours=3)), "role 'viewer'"),
        (jwt.encode({"role": "admin"}, SECRET, algorithm="HS256"), "no numeric 'exp'"),
        (jwt.encode({"role": "admin", "exp": 4_102_444_800}, "k" * 64, algorithm="HS512"), "HS256"),
        (mint(SECRET, role="admin", ttl=timedelta(minutes=1), now=datetime.now(UTC) - timedelta(hours=1)), "expired"),
        (mint(SECRET, role="admin", ttl=timedelta(minutes=30)), "before this run can reach deploy_models"),
    ],
)
def test_preflight_fails_fast_with_a_clear_message_that_never_shows_the_token(token, words) -> None:
    with pytest.raises(AdminTokenError) as caught:
        check_admin_token(settings_with(token), valid_for=timedelta(hours=2))
    message = str(caught.value)
    assert words in message
    if token:
        assert token not in message and token.split(".")[-1] not in message


def test_retrain_token_prints_a_token_the_backend_accepts(capsys: pytest.CaptureFixture[str], monkeypatch) -> None:
    from jobs.cli import main

    monkeypatch.setenv("SECRET_KEY", SECRET)
    assert main(["token", "--role", "admin", "--ttl", "2h"]) == 0
    token = capsys.readouterr().out.strip()
    claims = verify_admin(token, SECRET)
    assert claims["role"] == "admin" and claims["exp"] - claims["iat"] == 7200


# -- one validation of a token's claims, by the backend and by deploy's preflight -------------------------------------


def claims_token(**claims: object) -> str:
    return jwt.encode({"sub": "tests", "role": "admin", **claims}, SECRET, algorithm="HS256")


def _claims(case: str, now: int) -> dict[str, object]:
    """Bad claims relative to ``now`` (seconds since the epoch)."""
    return {
        "exp as a numeric string": {"iat": now, "exp": str(now + 3600)},
        "iat as a numeric string": {"iat": str(now), "exp": now + 3600},
        "exp true": {"iat": now, "exp": True},
        "no iat": {"exp": now + 3600},
        "a lifetime of 400 days": {"iat": now, "exp": now + 400 * 86_400},
        "an exp too far to be a date": {"iat": now - 10 * 86_400, "exp": 10**300},
        "issued in two hours": {"iat": now + 7200, "exp": now + 10_000},
    }[case]


@pytest.mark.parametrize(
    ("case", "words"),
    [
        ("exp as a numeric string", "numeric 'exp'"),
        ("iat as a numeric string", "numeric 'iat'"),
        ("exp true", "numeric 'exp'"),
        ("no iat", "numeric 'iat'"),
        ("a lifetime of 400 days", "longest lifetime"),
        ("an exp too far to be a date", "longest lifetime"),
        ("issued in two hours", "issued in the future"),
    ],
)
def test_backend_and_preflight_refuse_the_same_bad_claims(case: str, words: str) -> None:
    token = claims_token(**_claims(case, int(time.time())))
    with pytest.raises(TokenRejected) as caught:
        verify_admin(token, SECRET)
    assert caught.value.status == 401 and words in caught.value.reason
    with pytest.raises(AdminTokenError, match=words):
        check_admin_token(settings_with(token), valid_for=timedelta(minutes=5))


def test_an_oversized_token_is_refused_before_it_is_decoded() -> None:
    huge = mint(SECRET, role="admin", ttl=timedelta(hours=1), subject="x" * 1_000_000)
    with pytest.raises(TokenRejected) as caught:
        verify_admin(huge, SECRET)
    assert caught.value.status == 401 and "longer than" in caught.value.reason
    with pytest.raises(AdminTokenError, match="longer than"):
        check_admin_token(settings_with(huge), valid_for=timedelta(minutes=5))


@pytest.mark.parametrize("text", ["999999999999d", "32d", "9" * 5000])
def test_an_absurd_ttl_is_refused_with_a_clear_message(text: str) -> None:
    with pytest.raises(ConfigError, match="--ttl must be"):
        parse_ttl(text)
    with pytest.raises(ConfigError, match="longest lifetime"):
        mint(SECRET, role="admin", ttl=timedelta(days=400))


def test_retrain_token_refuses_an_absurd_ttl_without_a_traceback(
    capsys: pytest.CaptureFixture[str], caplog: pytest.LogCaptureFixture, monkeypatch
) -> None:
    from jobs.cli import main

    monkeypatch.setenv("SECRET_KEY", SECRET)
    assert main(["token", "--role", "admin", "--ttl", "999999999999d"]) == 2
    assert capsys.readouterr().out == ""
    assert "--ttl must be at most 31d" in caplog.text and all(r.exc_info is None for r in caplog.records)
