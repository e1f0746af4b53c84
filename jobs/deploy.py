"""deploy_models: promote the approved versions, make the serving backend reload them, check what it loaded.

The order matters: the production pointers are replaced first (atomically, with a history line), then the backend
is asked to reload them, then the versions and artifact hashes it reports are compared with the promoted ones. If
any of that fails, every pointer is put back as it was and the step fails. A reload that failed or went unanswered
may still have swapped the new set in (a proxy's 502 or a timeout after the backend reloaded), so once a reload was
sent the backend is made to reload the restored pointers and what it reports is checked (:func:`resync_backend`);
when that cannot be done, the error says what the backend serves now and how to fix it. The admin token travels
only in the ``Authorization`` header: it is never logged, and a backend's answer quoted in a message has it masked.
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import jwt
import requests

from jobs.errors import (
    AdminTokenError,
    BackendError,
    DeployError,
    InvalidNameError,
    ReloadMismatchError,
    TokenRefusedError,
)
from jobs.ml.names import check_model_name, check_version_name
from jobs.ml.tokens import ADMIN_ROLE, ALGORITHM, TokenRejected, check_claims, check_size
from jobs.run_context import RunContext, ds_of
from jobs.settings import Settings

if TYPE_CHECKING:
    from jobs.ml.store import ModelStore

log = logging.getLogger(__name__)

RELOAD_PATH = "/admin/reload_models"
ACTOR = "deploy_models"
_MINT_HINT = (
    "Mint one on the backend with `retrain token --role admin` (it signs with SECRET_KEY) and store it where the "
    'tasks read it, e.g. `| retrain airflow set-token` (see docs/operations.md, "The deploy token").'
)
TTL_MARGIN = timedelta(minutes=30)  # between minting a token and the run's start, and for the clocks to differ


def ttl_that_passes(valid_for: timedelta) -> str:
    """A ``retrain token --ttl`` that outlasts ``valid_for`` with a margin, in whole hours (``5h`` for 3 h 45 min)."""
    hours = -(-(valid_for + TTL_MARGIN) // timedelta(hours=1))  # ceiling division
    return f"{max(hours, 1)}h"


def mint_hint(valid_for: timedelta) -> str:
    """How to get a token that passes :func:`check_admin_token` with ``valid_for``, and where to put it."""
    return (
        f"Mint one on the backend with `retrain token --role admin --ttl {ttl_that_passes(valid_for)}` (it signs "
        "with SECRET_KEY) and store it in the Airflow Variable ADMIN_JWT_TOKEN, or in the ADMIN_JWT_TOKEN "
        'environment variable (see docs/operations.md, "The deploy token").'
    )


# -- the token preflight ------------------------------------------------------------------------------------------


def check_admin_token(settings: Settings, *, valid_for: timedelta, now: datetime | None = None) -> None:
    """Fail fast when ``ADMIN_JWT_TOKEN`` cannot last the run: missing, not a JWT, not admin, claims the backend
    would refuse (``jobs.ml.tokens.check_claims``: the same reading), or expiring soon.

    Only the backend knows ``SECRET_KEY``, so the signature cannot be checked here; the claims can, and an expired
    token found before extraction saves a whole run that would fail at its last step.
    """
    hint = mint_hint(valid_for)
    token = settings.admin_jwt_token
    if not token:
        raise AdminTokenError(f"The ADMIN_JWT_TOKEN setting is not set; deploy_models needs an admin JWT. {hint}")
    now = now or datetime.now(UTC)
    try:
        check_size(token)
        try:
            header = jwt.get_unverified_header(token)
            claims = jwt.decode(token, options={"verify_signature": False})
        except jwt.InvalidTokenError:
            raise AdminTokenError(f"ADMIN_JWT_TOKEN is not a JWT (three base64url parts). {hint}") from None
        if header.get("alg") != ALGORITHM:
            raise AdminTokenError(
                f"ADMIN_JWT_TOKEN must be signed with {ALGORITHM}. Got alg {header.get('alg')!r} instead."
            )
        if claims.get("role") != ADMIN_ROLE:
            raise AdminTokenError(
                f"ADMIN_JWT_TOKEN has role {claims.get('role')!r}; reloading models needs role {ADMIN_ROLE!r}. {hint}"
            )
        _, expires = check_claims(claims, now=now)  # the backend's own reading of exp and iat
    except TokenRejected as e:
        more = "" if "retrain token" in e.reason else f" {hint}"
        raise AdminTokenError(f"ADMIN_JWT_TOKEN: {e.reason}{more}") from None
    if expires < now + valid_for:
        raise AdminTokenError(
            f"ADMIN_JWT_TOKEN expires at {expires:%Y-%m-%d %H:%M:%S} UTC, in {_minutes(expires - now)}, before this "
            f"run can reach deploy_models (allowed {_minutes(valid_for)}). {hint}"
        )


def _minutes(delta: timedelta) -> str:
    return f"{delta.total_seconds() / 60:.0f} min"


# -- the reload call ----------------------------------------------------------------------------------------------


def reload_backend(
    backend_url: str, token: str, *, timeout: float, attempts: int, backoff_seconds: float = 1.0
) -> tuple[dict[str, Any], int]:
    """``POST {backend_url}/admin/reload_models``; returns the backend's JSON answer and the attempts it took.

    Connection errors, timeouts and 5xx answers are retried with exponential backoff (a reload is idempotent); a
    4xx answer, or a TLS certificate that cannot be verified, is final: sending the same request again cannot help.
    A 401 or 403 raises :class:`TokenRefusedError`, which the DAG does not retry either. Every error raised carries
    the number of requests sent (``attempts``), which ``deploy.json`` records.
    """
    url = backend_url.rstrip("/") + RELOAD_PATH
    last = ""
    for attempt in range(1, attempts + 1):
        try:
            response = requests.post(url, headers={"Authorization": f"Bearer {token}"}, timeout=timeout)
        except requests.exceptions.SSLError:
            raise _sent(
                BackendError(
                    f"The TLS certificate of {url} could not be verified. If the backend's certificate comes from a "
                    "private CA, point REQUESTS_CA_BUNDLE at that CA's certificate (PEM)."
                ),
                attempt,
            ) from None
        except requests.Timeout:
            last = f"no answer within {timeout:g}s"
        except requests.ConnectionError as e:
            last = f"could not connect ({type(e).__name__})"
        else:
            detail = _detail(response, token)
            if response.status_code in (401, 403):
                raise _sent(
                    TokenRefusedError(
                        f"The backend at {url} refused ADMIN_JWT_TOKEN (HTTP {response.status_code}: {detail}); "
                        f"the same token would be refused again, so this is not retried. {_MINT_HINT}"
                    ),
                    attempt,
                )
            if 400 <= response.status_code < 500:
                raise _sent(
                    BackendError(f"The backend at {url} did not reload (HTTP {response.status_code}: {detail})."),
                    attempt,
                )
            if response.status_code < 300:
                try:
                    return response.json(), attempt
                except ValueError:
                    raise _sent(
                        BackendError(f"The backend at {url} answered {detail!r}, which is not JSON."), attempt
                    ) from None
            last = f"HTTP {response.status_code}: {detail}"
        if attempt < attempts:
            delay = backoff_seconds * 2 ** (attempt - 1)
            log.warning("Reload attempt %d/%d failed (%s); retrying in %.1fs.", attempt, attempts, last, delay)
            time.sleep(delay)
    raise _sent(
        BackendError(
            f"The backend at {url} did not reload after {attempts} attempts; last: {last}. Check that it runs and "
            "that BACKEND_URL points at it."
        ),
        attempts,
    )


def _sent(error: BackendError, attempts: int) -> BackendError:
    """``error`` with the number of reload requests sent before it, for ``deploy.json``."""
    error.attempts = attempts
    return error


def _detail(response: requests.Response, token: str) -> str:
    """A short account of an answer, with the token masked in case a backend echoes the request."""
    try:
        body = response.json()
        text = json.dumps(body.get("detail", body) if isinstance(body, dict) else body)
    except ValueError:
        text = response.text
    return text[:300].replace(token, "<token>") if token else text[:300]


def verify_loaded(answer: dict[str, Any], expected: dict[str, tuple[str, str]]) -> dict[str, dict[str, str]]:
    """The backend's ``models`` for the promoted ones; raises unless each reports the promoted version and hash."""
    loaded = answer.get("models") if isinstance(answer, dict) else None
    if not isinstance(loaded, dict):
        raise ReloadMismatchError("The backend's reload answer has no 'models' mapping of name -> version and hash.")
    reported: dict[str, dict[str, str]] = {}
    problems = []
    for model, (version, sha) in sorted(expected.items()):
        got = loaded.get(model) or {}
        reported[model] = {"version": got.get("version"), "artifact_sha256": got.get("artifact_sha256")}
        if got.get("version") != version:
            problems.append(f"{model}: serves version {got.get('version')!r}, promoted {version!r}")
        elif got.get("artifact_sha256") != sha:
            problems.append(
                f"{model} {version}: artifact sha256 {str(got.get('artifact_sha256'))[:12]}... differs from the "
                f"store's {sha[:12]}... (the backend reads another model store, or the artifact changed)"
            )
    if problems:
        raise ReloadMismatchError("The backend did not load what was promoted: " + "; ".join(problems) + ".")
    return reported


# -- the step -----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DeployResult:
    """What was promoted and what the backend reports; ``status`` is deployed, nothing_approved or rolled_back."""

    ds: str
    status: str
    approved: dict[str, str] = field(default_factory=dict)
    previous: dict[str, str | None] = field(default_factory=dict)
    backend: dict[str, dict[str, str]] = field(default_factory=dict)
    attempts: int = 0
    error: str | None = None
    duration_seconds: float = 0.0

    @property
    def deployed(self) -> dict[str, str]:
        return dict(self.approved) if self.status == "deployed" else {}

    def to_dict(self) -> dict[str, Any]:
        return {
            "ds": self.ds,
            "status": self.status,
            "deployed": self.deployed,
            "approved": self.approved,
            "previous": self.previous,
            "backend": self.backend,
            "attempts": self.attempts,
            "error": self.error,
            "duration_seconds": self.duration_seconds,
        }


def approved_versions(decision_path: Path) -> dict[str, str]:
    """``{model: version}`` of the models whose verdict in ``decision.json`` is ``deploy``."""
    validate = f"`retrain validate --ds {ds_of(decision_path)}`"
    if not decision_path.exists():
        raise DeployError(f"No decision at {decision_path}: run {validate} before deploying.")
    decision = json.loads(decision_path.read_text(encoding="utf-8"))
    models = decision.get("models", {}) if isinstance(decision, dict) else None
    if not isinstance(models, dict):
        raise DeployError(f"{decision_path} has no 'models' mapping: write it again with {validate}.")
    approved = {}
    for name, entry in models.items():
        if isinstance(entry, dict) and entry.get("verdict") == "deploy":
            version = entry.get("challenger_version") or entry.get("version")
            if not version:
                raise DeployError(f"{decision_path}: model {name!r} is approved but names no version.")
            try:  # names become paths in the model store: checked before anything is promoted
                check_model_name(name, where=str(decision_path))
                check_version_name(version, model=name, where=str(decision_path))
            except InvalidNameError as e:
                raise DeployError(f"{e} Nothing was promoted; run {validate} again.") from None
            approved[name] = version
    return approved


def deploy(settings: Settings, ctx: RunContext, *, backoff_seconds: float = 1.0) -> DeployResult:
    """Promote what ``validate`` approved, reload the backend, verify; on any failure restore the pointers and raise."""
    from jobs.ml.store import ModelStore

    started = time.monotonic()
    folder = settings.run_folder(ctx.ds_str)
    approved = approved_versions(folder.decision)
    if not approved:
        log.info("Nothing approved for ds=%s: the backend is not called.", ctx.ds_str)
        return _write(folder.deploy_summary, DeployResult(ctx.ds_str, "nothing_approved", duration_seconds=0.0))

    store = ModelStore(settings.model_store)
    previous = {model: store.production(model) for model in approved}
    previous_versions = {model: (p.version if p else None) for model, p in previous.items()}
    attempts = 0
    promoted: dict[str, Any] = {}
    installed: dict[str, Any] = {}
    reload_sent = False
    try:
        check_admin_token(settings, valid_for=timedelta(seconds=settings.reload_timeout_seconds))
        expected = {}
        for model, version in sorted(approved.items()):
            pointer = store.promote(
                model, version, reason=f"approved by validate_models for ds={ctx.ds_str}", actor=ACTOR
            )
            promoted[model] = previous[model]
            installed[model] = pointer
            expected[model] = (version, pointer.artifact_sha256)
            log.info("Promoted %s %s (was %s).", model, version, previous_versions[model] or "none")
        reload_sent = True  # from here on the backend may have loaded the promoted set, even if no answer says so
        answer, attempts = _reload_with_settings(settings, backoff_seconds)
        backend = verify_loaded(answer, expected)
    except Exception as e:
        if isinstance(e, BackendError):  # the requests sent before it failed, not 0
            attempts = e.attempts
        message = f"{e} " + _restore(store, promoted, installed, ctx)
        serving: dict[str, dict[str, str]] = {}
        if reload_sent:  # a failed or unanswered reload may have swapped the set in: point the backend back
            try:
                # A refused token would be refused again: the backend is only asked what it serves.
                serving, account = resync_backend(
                    settings,
                    store,
                    sorted(approved),
                    backoff_seconds=backoff_seconds,
                    reload=not isinstance(e, TokenRefusedError),
                )
            except Exception as failed:  # the original error stays the one raised; this one is told in it
                log.exception("Could not put the backend back on the restored set.")
                account = f"The backend could not be put back on the restored set ({failed}). {_FIX_HINT}"
            message += " " + account
        message = settings.redact(message)  # deploy.json, the report and the task's error are read by people
        _write(
            folder.deploy_summary,
            DeployResult(
                ctx.ds_str,
                "rolled_back",
                approved,
                previous_versions,
                serving,
                attempts,
                message,
                round(time.monotonic() - started, 3),
            ),
        )
        raise (e.__class__ if isinstance(e, DeployError) else DeployError)(message) from e

    result = DeployResult(
        ctx.ds_str,
        "deployed",
        approved,
        previous_versions,
        backend,
        attempts,
        None,
        round(time.monotonic() - started, 3),
    )
    log.info("Deployed %s; the backend serves them.", _describe(approved))
    return _write(folder.deploy_summary, result)


def _restore(store: ModelStore, previous: dict[str, Any], installed: dict[str, Any], ctx: RunContext) -> str:
    """Put back each pointer this deployment replaced, unless someone changed it since; says what happened."""
    restored, kept = {}, []
    for model, pointer in previous.items():
        try:
            store.restore(
                model, pointer, reason=f"deploy_models for ds={ctx.ds_str} failed", replacing=installed[model]
            )
            restored[model] = pointer.version if pointer else None
        except Exception as e:  # keep restoring the others; the step fails anyway
            log.error("Could not restore the production pointer of %s: %s", model, e)
            kept.append(str(e))
    account = f"The production pointers were restored to {_describe(restored)}." if restored else ""
    return " ".join([account, *kept]).strip() or "No production pointer had been changed."


# -- putting the backend back after a failed deployment -----------------------------------------------------------


def _reload_with_settings(settings: Settings, backoff_seconds: float) -> tuple[dict[str, Any], int]:
    """:func:`reload_backend` as the settings configure it: their backend, token, timeout and attempts."""
    return reload_backend(
        settings.backend_url,
        settings.admin_jwt_token or "",
        timeout=settings.reload_timeout_seconds,
        attempts=settings.reload_attempts,
        backoff_seconds=backoff_seconds,
    )


def resync_backend(
    settings: Settings, store: ModelStore, models: list[str], *, backoff_seconds: float = 1.0, reload: bool = True
) -> tuple[dict[str, dict[str, str]], str]:
    """Make the backend serve what the store names now for ``models``, and check what it reports.

    Called after any failed or unanswered reload: a reload whose answer was lost (a timeout, a proxy's 502) may
    still have swapped the promoted set in. The backend is asked to reload the restored pointers and its answer is
    compared, version and sha256, with them; when it cannot reload, ``GET /models`` says what it serves. Returns
    what the backend reports (empty when unknown) and a sentence for the error message: what the backend serves
    now and, when that is not the store's set, how to fix it. ``reload=False`` (the backend refused the token):
    only ``GET /models``.
    """
    wanted = {model: store.production(model) for model in models}
    answer: dict[str, Any] | None = None
    why = ""
    if reload:
        try:
            answer, _ = _reload_with_settings(settings, backoff_seconds)
            how = "After reloading the restored pointers, the backend"
        except DeployError as e:
            why = f" It could not be made to reload them: {e}"
    if answer is None:
        try:
            answer = _serving_now(settings)
        except DeployError as unknown:
            return {}, (
                f"What the backend serves now is unknown:{why} {unknown} It may still serve what this deployment "
                f"promoted, if a reload reached it before its answer was lost. {_FIX_HINT}"
            )
        how = f"GET {settings.backend_url.rstrip('/')}/models says the backend"
    reported, problems = _compare(answer, wanted)
    serves = _describe_serving(reported)
    if not problems:
        log.info("The backend serves the restored set: %s.", serves)
        return reported, f"{how} serves the restored set: {serves}.{why}"
    log.error("The backend does not serve the restored set: %s.", "; ".join(problems))
    return reported, (f"{how} serves {serves}, not what the store names: {'; '.join(problems)}.{why} {_FIX_HINT}")


_FIX_HINT = (
    "To fix it, make the backend reload the production pointers once it answers: `curl -X POST "
    '"$BACKEND_URL/admin/reload_models" -H "Authorization: Bearer $ADMIN_JWT_TOKEN"`, with a token it accepts (or '
    'restart it), then check `curl "$BACKEND_URL/models"`.'
)


def _serving_now(settings: Settings) -> dict[str, Any]:
    """``GET {backend_url}/models``: what the backend serves, as the reload API reports it (no token needed)."""
    url = settings.backend_url.rstrip("/") + "/models"
    try:
        response = requests.get(url, timeout=settings.reload_timeout_seconds)
    except requests.RequestException as e:
        raise DeployError(f"GET {url} failed too ({type(e).__name__}).") from None
    if response.status_code != 200:
        raise DeployError(f"GET {url} answered HTTP {response.status_code}.")
    try:
        return response.json()
    except ValueError:
        raise DeployError(f"GET {url} did not answer JSON.") from None


def _compare(answer: Any, wanted: dict[str, Any]) -> tuple[dict[str, dict[str, str]], list[str]]:
    """What the backend reports for ``wanted``'s models, and how it differs from them (a None pointer: not served)."""
    loaded = answer.get("models") if isinstance(answer, dict) else None
    if not isinstance(loaded, dict):
        return {}, ["its answer has no 'models' mapping of name -> version and hash"]
    reported: dict[str, dict[str, str]] = {}
    problems = []
    for model, pointer in sorted(wanted.items()):
        got = loaded.get(model)
        if not isinstance(got, dict):
            if pointer is not None:
                problems.append(f"{model}: not served, the store names {pointer.version}")
            continue
        reported[model] = {"version": got.get("version"), "artifact_sha256": got.get("artifact_sha256")}
        if pointer is None:
            problems.append(f"{model}: serves {got.get('version')!r}, the store names no production version")
        elif got.get("version") != pointer.version:
            problems.append(f"{model}: serves {got.get('version')!r}, the store names {pointer.version}")
        elif got.get("artifact_sha256") != pointer.artifact_sha256:
            problems.append(
                f"{model} {pointer.version}: serves sha256 {str(got.get('artifact_sha256'))[:12]}..., the store's "
                f"is {pointer.artifact_sha256[:12]}..."
            )
    return reported, problems


def _describe_serving(reported: dict[str, dict[str, str]]) -> str:
    return (
        ", ".join(
            f"{model} {got['version']} (sha256 {str(got['artifact_sha256'])[:12]}...)"
            for model, got in sorted(reported.items())
        )
        or "none of these models"
    )


def _describe(versions: dict[str, str | None]) -> str:
    return ", ".join(f"{m} {v or '(none)'}" for m, v in sorted(versions.items())) or "nothing"


def _write(path: Path, result: DeployResult) -> DeployResult:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result.to_dict(), indent=2) + "\n", encoding="utf-8")
    return result
