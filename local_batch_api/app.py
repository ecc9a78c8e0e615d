"""The FastAPI application: wiring of state, auth, fault injection and OpenAI-shaped errors."""

from __future__ import annotations

import contextlib
import logging
import secrets
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from local_batch_api import api_batches, api_files, api_local, api_sync
from local_batch_api.engines import Engine
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

    return LocalEngine()


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

    app = FastAPI(title="Local OpenAI Batch API", lifespan=lifespan, docs_url=None, redoc_url=None)
    app.include_router(api_files.router)
    app.include_router(api_batches.router)
    app.include_router(api_sync.router)
    app.include_router(api_local.router)

    @app.middleware("http")
    async def auth_and_faults(request: Request, call_next):
        path = request.url.path
        # Everything but the health check, the schema and unknown paths included: with a key
        # set, an unauthenticated caller learns nothing about the server.
        if settings.api_key and path != "/_local/health" and not _authorized(request, settings.api_key):
            return _error_response(
                APIError(
                    401,
                    "Incorrect API key provided. You can find your API key at the server's configuration.",
                    code="invalid_api_key",
                )
            )
        if path.startswith("/v1/"):
            dice: ApiFaultDice = request.app.state.server.fault_dice
            if dice.roll():
                return _error_response(_transient_error(dice))
        return await call_next(request)

    @app.exception_handler(APIError)
    async def api_error(_: Request, exc: APIError) -> JSONResponse:
        return _error_response(exc)

    @app.exception_handler(RequestValidationError)
    async def validation_error(_: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {}
        param = ".".join(str(p) for p in first.get("loc", ())[1:]) or None
        return _error_response(
            APIError(400, f"Invalid request: {first.get('msg', 'bad input')}.", param=param)
        )

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        if exc.status_code == 404:
            message = f"Invalid URL ({request.method} {request.url.path})"
        elif exc.status_code == 405:
            message = f"Method {request.method} not allowed for {request.url.path}"
        else:
            message = str(exc.detail)
        return _error_response(APIError(exc.status_code, message))

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.Error)
    async def storage_error(request: Request, exc: Exception) -> JSONResponse:
        """A full disk is the caller's to know (and to fix by deleting files); the rest is ours."""
        if disk_full(exc):
            log.warning("%s %s: the disk is full (%s)", request.method, request.url.path, exc)
            return _error_response(
                APIError(507, "The server's disk is full; delete files to make room.", type="server_error")
            )
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return await server_error(request, exc)

    @app.exception_handler(Exception)
    async def server_error(_: Request, exc: Exception) -> JSONResponse:
        return _error_response(
            APIError(500, "The server had an error while processing your request.", type="server_error")
        )

    return app


def _authorized(request: Request, api_key: str) -> bool:
    scheme, _, token = request.headers.get("authorization", "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), api_key.encode())


def _transient_error(dice: ApiFaultDice) -> APIError:
    faults = dice.faults
    headers = {
        "retry-after": str(max(0, round(faults.retry_after_seconds))),
        "retry-after-ms": str(int(faults.retry_after_seconds * 1000)),
    }
    if faults.api_error_status == 429:
        return APIError(
            429,
            "Rate limit reached for requests.",
            type="requests",
            code="rate_limit_exceeded",
            headers=headers,
        )
    return APIError(
        faults.api_error_status,
        "The server had an error while processing your request.",
        type="server_error",
        headers=headers,
    )


def _error_response(exc: APIError) -> JSONResponse:
    return JSONResponse(exc.body(), status_code=exc.status_code, headers=exc.headers)
