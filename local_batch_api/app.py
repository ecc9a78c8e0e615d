"""The FastAPI application: wiring of routes, state, auth, fault injection and errors.

One process speaks three dialects over the same store, processor and engine:

- OpenAI: ``/v1/files``, ``/v1/batches`` and the synchronous ``/v1/...`` endpoints (bearer key);
- Azure OpenAI: the same handlers under ``/openai/...?api-version=`` and ``/openai/v1/...``
  (``api-key`` header or bearer key);
- Anthropic: ``/v1/messages`` and ``/v1/messages/batches...`` (``x-api-key``), errors in
  Anthropic's shape.
"""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from local_batch_api import api_anthropic, api_batches, api_files, api_local, api_sync, azure
from local_batch_api.dialects import is_anthropic_path, is_azure_path
from local_batch_api.engines import Engine
from local_batch_api.engines.messages import anthropic_error
from local_batch_api.errors import APIError
from local_batch_api.faults import ApiFaultDice
from local_batch_api.processor import BatchProcessor
from local_batch_api.settings import Settings
from local_batch_api.store import Store, disk_full

log = logging.getLogger(__name__)


@dataclass
class ServerState:
    settings: Settings
    store: Store
    engine: Engine
    processor: BatchProcessor
    fault_dice: ApiFaultDice


def build_engine(settings: Settings) -> Engine:
    if settings.engine == "upstream":
        from local_batch_api.engines.upstream import UpstreamEngine

        if not settings.upstream_base_url:
            raise SystemExit("--engine upstream needs --upstream-base-url")
        return UpstreamEngine(
            settings.upstream_base_url,
            api_key=settings.upstream_api_key,
            concurrency=settings.upstream_concurrency,
            max_retries=settings.upstream_max_retries,
        )
    from local_batch_api.engines.local import LocalEngine
    from local_batch_api.engines.messages import MessagesEngine

    return MessagesEngine(LocalEngine())  # the upstream engine forwards /v1/messages as it is


def create_app(settings: Settings) -> FastAPI:
    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        store = Store(settings.data_dir, settings.crash_at)
        engine = build_engine(settings)
        processor = BatchProcessor(store, settings, engine)
        app.state.server = ServerState(settings, store, engine, processor, ApiFaultDice(settings.faults))
        await processor.start()
        try:
            yield
        finally:
            await processor.stop()
            await engine.aclose()
            store.close()

    app = FastAPI(title="Local Batch API", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(api_anthropic.router)  # before /v1's: its paths are more specific
    for router in (api_files.router, api_batches.router, api_sync.router):
        app.include_router(router, prefix="/v1")
    azure_v1 = [Depends(azure.check_v1_api_version)]
    for router in (api_files.router, api_batches.router, api_sync.router):
        app.include_router(router, prefix=azure.V1_PREFIX, dependencies=azure_v1, include_in_schema=False)
    classic = [Depends(azure.require_classic_api_version)]
    for router in (api_files.router, api_batches.router):
        app.include_router(router, prefix=azure.CLASSIC_PREFIX, dependencies=classic, include_in_schema=False)
    app.include_router(api_local.router)

    @app.middleware("http")
    async def auth_and_faults(request: Request, call_next):
        path = request.url.path
        # Everything but the health check, the schema and unknown paths included: with a key
        # set, an unauthenticated caller learns nothing about the server.
        if settings.api_key and path != "/_local/health" and not _authorized(request, settings.api_key):
            return _error_response(path, _unauthorized(path))
        if not path.startswith(("/v1/", "/openai/")):
            return await call_next(request)
        dice: ApiFaultDice = request.app.state.server.fault_dice
        if dice.roll():
            return _error_response(path, _transient_error(dice, path))
        response = await call_next(request)
        call = _applying_call(request.method, path)
        if call and response.status_code < 300 and dice.lose_answer(call):
            log.info("%s %s took effect; its answer is lost on purpose (fault)", request.method, path)
            return _error_response(path, _transient_error(dice, path, status=500))
        return response

    @app.exception_handler(APIError)
    async def api_error(request: Request, exc: APIError) -> JSONResponse:
        return _error_response(request.url.path, exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return _error_response(
            request.url.path, APIError(400, f"Invalid request: {first.get('msg', 'bad input')}.", param=param)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        path = request.url.path
        if is_azure_path(path) and exc.status_code in (404, 405):
            return _error_response(path, azure.resource_not_found())
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {path})"
        elif exc.status_code == 405:
            message = f"Method {request.method} not allowed for {path}"
        else:
            message = str(exc.detail)
        return _error_response(path, APIError(exc.status_code, message))

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        """A full disk is the caller's to know (and to fix by deleting files); the rest is ours."""
        if disk_full(exc):
            log.warning("%s %s: the disk is full (%s)", request.method, request.url.path, exc)
            return _error_response(
                request.url.path,
                APIError(507, "The server's disk is full; delete files to make room.", type="server_error"),
            )
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return await server_error(request, exc)

    @app.exception_handler(Exception)
    async def server_error(request: Request, exc: Exception) -> JSONResponse:
        return _error_response(
            request.url.path,
            APIError(500, "The server had an error while processing your request.", type="server_error"),
        )

    return app


def _authorized(request: Request, api_key: str) -> bool:
    """A bearer key; also ``x-api-key`` on Anthropic's paths, ``api-key`` on Azure's.

    (The anthropic SDK sends its key as a bearer token; other Anthropic clients send x-api-key.)
    """
    path = request.url.path
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and _same(token.strip(), api_key):
        return True
    if is_anthropic_path(path):
        return _same(request.headers.get("x-api-key", ""), api_key)
    if is_azure_path(path):
        return _same(request.headers.get("api-key", ""), api_key)
    return False


def _same(given: str, api_key: str) -> bool:
    return secrets.compare_digest(given.encode(), api_key.encode())


def _unauthorized(path: str) -> APIError:
    if is_anthropic_path(path):
        return APIError(401, "invalid x-api-key", type="authentication_error")
    if is_azure_path(path):
        return azure.access_denied()
    return APIError(
        401,
        "Incorrect API key provided. You can find your API key at the server's configuration.",
        code="invalid_api_key",
    )


def _transient_error(dice: ApiFaultDice, path: str, status: int | None = None) -> APIError:
    """An injected transient error, of the faults' status unless ``status`` is given."""
    faults = dice.faults
    status = status or faults.api_error_status
    headers = {
        "retry-after": str(max(0, round(faults.retry_after_seconds))),
        "retry-after-ms": str(int(faults.retry_after_seconds * 1000)),
    }
    if is_anthropic_path(path):
        message = {429: "Rate limited.", 529: "Overloaded"}.get(status, "Internal server error")
        return APIError(status, message, headers=headers)
    if status == 429:
        return APIError(
            429,
            "Rate limit reached for requests.",
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    return APIError(
        status,
        "The server had an error while processing your request.",
        type="server_error",
        headers=headers,
    )


def _applying_call(method: str, path: str) -> str | None:
    """Which call that takes effect this is (``create``, ``upload``, ``cancel``), in any dialect."""
    if method != "POST":
        return None
    path = path.rstrip("/")
    if path.endswith("/cancel"):
        return "cancel"
    if path.endswith("/batches"):
        return "create"
    if path.endswith("/files"):
        return "upload"
    return None


def _error_response(path: str, exc: APIError) -> JSONResponse:
    """The error in the shape of the dialect the path belongs to."""
    body = anthropic_error(exc.status_code, exc.message) if is_anthropic_path(path) else exc.body()
    return JSONResponse(body, status_code=exc.status_code, headers=exc.headers)
