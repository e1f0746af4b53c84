"""The reference serving backend: ``create_app(settings)`` builds it, ``retrain-serve`` runs it with uvicorn.

Routes: ``POST /predict/{model}`` (JSON inputs -> prediction, logged into ``health_records``),
``POST /admin/reload_models`` (admin JWT; all-or-nothing reload of the production pointers), ``GET /models``,
``GET /healthz`` (liveness) and ``GET /readyz`` (readiness: models loaded, database writable). Run one process:
the models live in the process, so a reload reaches only the worker it lands on.
"""

# No `from __future__ import annotations` here: FastAPI resolves the routes' annotations at runtime, and the admin
# dependency is a local of create_app that a string annotation could not name.
import contextlib
import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Header, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from jobs.errors import ModelLoadError, RetrainError
from jobs.ml.tokens import require_secret
from jobs.settings import Settings
from serving.auth import admin_required
from serving.guard import RequestGuard
from serving.inputs import BadRequest, read_request
from serving.predict import score
from serving.public import hide_paths
from serving.records import RecordLog, RecordLogUnavailable, UnknownUserError
from serving.registry import ModelRegistry

log = logging.getLogger(__name__)


def create_app(settings: Settings, *, max_db_connections: int = 8) -> FastAPI:
    """The FastAPI app; it loads the production models on start-up (an empty set if they cannot all load)."""
    secret_key = require_secret(settings.secret_key)
    registry = ModelRegistry(settings.model_store, settings.models_dir)
    records = RecordLog(settings.database(), max_connections=max_db_connections)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        # A failure is logged by the registry and shown by /models (last_error); a reload can fix it.
        with contextlib.suppress(ModelLoadError):
            await run_in_threadpool(registry.reload)
        yield
        records.close()

    app = FastAPI(title="retrain reference serving backend", lifespan=lifespan)
    app.add_middleware(  # outermost: ids, 413, 408, 500
        RequestGuard,
        max_body_bytes=settings.serving_max_body_bytes,
        body_timeout_seconds=settings.serving_client_timeout_seconds,
    )
    app.state.registry = registry
    app.state.records = records
    folders = {"MODEL_STORE": settings.model_store, "MODELS_DIR": settings.models_dir}

    def public(description: dict[str, Any]) -> dict[str, Any]:
        """``registry.describe()`` for any caller: the last error without the server's paths."""
        last = description.get("last_error")
        if not last:
            return description
        return {**description, "last_error": {**last, "error": hide_paths(last["error"], folders)}}

    @app.get("/healthz")
    def healthz() -> dict[str, Any]:
        """Liveness: the process answers. Restarting it would not bring back a database or a model."""
        return {"status": "ok", "models": len(registry.models)}

    findings = ReadinessLog()

    @app.get("/readyz")
    def readyz() -> JSONResponse:
        """Readiness: a prediction asked now could be served and logged. 503 says why not, without the server's
        URLs or paths (the route needs no token); the log has the detail."""
        return _readiness(registry, records, findings)

    @app.get("/models")
    def models() -> dict[str, Any]:
        return public(registry.describe())

    require_admin = admin_required(secret_key)

    @app.post("/admin/reload_models")
    def reload_models(claims: Annotated[dict[str, Any], Depends(require_admin)]) -> Any:
        try:
            registry.reload()
        except ModelLoadError as e:
            # 409, not 5xx: the store's production set cannot be loaded, and asking again will not change that.
            content = {"detail": hide_paths(str(e), folders), "model": e.model, **public(registry.describe())}
            return JSONResponse(status_code=409, content=content)
        log.info("Models reloaded (token subject %r).", claims.get("sub"))
        return registry.describe()

    @app.post("/predict/{model}")
    async def predict(model: str, request: Request, x_user_id: Annotated[str | None, Header()] = None) -> Any:
        body = await request.body()  # at most SERVING_MAX_BODY_BYTES: RequestGuard answers 413 beyond
        depth = settings.serving_max_json_depth
        request_id = request.state.request_id  # RequestGuard's, also in the answer's header
        return await run_in_threadpool(_predict, registry, records, model, body, x_user_id, depth, request_id)

    return app


class ReadinessLog:
    """Logs what the readiness probe finds when it changes: a probe every few seconds must not repeat a warning."""

    def __init__(self) -> None:
        self._last: str | None = None  # the database's last problem; None while it takes records

    def found(self, problem: str | None) -> None:
        if problem == self._last:
            return
        if problem:
            log.warning("Not ready: %s", problem)
        else:
            log.info("Ready again: the database takes records.")
        self._last = problem


def _readiness(registry: ModelRegistry, records: RecordLog, findings: ReadinessLog) -> JSONResponse:
    models = len(registry.models)
    reasons = []
    if not models:
        reasons.append(
            "no model is loaded: put a version in production (deploy, or `retrain models promote`), then reload"
        )
    try:
        records.check()
        database = "ok"
        findings.found(None)
    except RecordLogUnavailable as e:
        findings.found(str(e))
        database = "refused" if e.reachable else "unreachable"
        why = "refuses to log records" if e.reachable else "cannot be reached"
        reasons.append(f"the database {why}: the backend's log says why")
    content: dict[str, Any] = {"status": "not ready" if reasons else "ready", "models": models, "database": database}
    if reasons:
        content["reasons"] = reasons
    return JSONResponse(status_code=503 if reasons else 200, content=content)


#: how much of a name the client sent an answer repeats: enough to recognise it, not a path's 16 KB back
SHOWN_NAME_CHARS = 64


def _shown(name: str) -> str:
    """``name`` quoted, cut to :data:`SHOWN_NAME_CHARS` characters (saying so) when longer."""
    if len(name) <= SHOWN_NAME_CHARS:
        return repr(name)
    return f"{name[:SHOWN_NAME_CHARS]!r}... ({len(name)} characters)"


def _error(status: int, detail: str, **extra: Any) -> JSONResponse:
    return JSONResponse(status_code=status, content={"detail": detail, **extra})


def _predict(
    registry: ModelRegistry,
    records: RecordLog,
    model: str,
    body: bytes,
    x_user_id: str | None,
    max_depth: int,
    request_id: str,
) -> JSONResponse | dict[str, Any]:
    from jobs.ml.recipes import coerce_inputs

    loaded = registry.models.get(model)  # one read of the set: a concurrent reload cannot change it under us
    if loaded is None:
        known = ", ".join(sorted(registry.models)) or "none"
        return _error(
            404,
            f"Unknown model {_shown(model)}. Models in production: {known}. A model is served once a version of it "
            "is in production: deployed by the pipeline, or `retrain models promote`, then a reload.",
        )
    try:
        request = read_request(body, x_user_id, max_depth=max_depth)
    except BadRequest as e:
        return _error(422, e.detail, **({"field": e.field} if e.field else {}))
    user_id, inputs, text = request.user_id, request.inputs, request.text
    try:
        coerced = coerce_inputs(loaded.recipe, inputs, loaded.inputs)
    except RetrainError as e:
        return _error(422, str(e))  # the message names the field
    prediction, confidence = score(loaded.estimator, loaded.recipe, coerced, loaded.threshold)
    try:
        record_id = records.insert(
            user_id=user_id,
            record_type=model,
            data=text,
            prediction=prediction,
            confidence=confidence,
            model_version=loaded.version,
        )
    except UnknownUserError as e:
        return _error(422, str(e), field="user_id")
    except RecordLogUnavailable as e:
        log.error("%s (request id %s)", e, request_id)
        why = "the backend cannot reach its database" if not e.reachable else "its database refused the record"
        return _error(
            503,
            f"The prediction could not be logged: {why}, so none is returned and nothing was stored. Try again "
            f"later; if it persists, give the backend's operator the request id {request_id}: its log says why.",
            request_id=request_id,
        )
    return {
        "model": model,
        "version": loaded.version,
        "prediction": prediction,
        "confidence": round(confidence, 6),
        "record_id": record_id,
    }
