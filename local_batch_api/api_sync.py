"""The synchronous endpoints, answered by the same engine that answers batch lines."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import Response

from local_batch_api.errors import invalid_request, not_found
from local_batch_api.request_parsing import json_object

router = APIRouter()  # mounted under /v1, and under Azure's /openai/v1

KNOWN_MODELS = (
    "gpt-5",
    "gpt-5-mini",
    "gpt-5-nano",
    "gpt-4.1",
    "gpt-4.1-mini",
    "gpt-4.1-nano",
    "gpt-4o",
    "gpt-4o-mini",
    "o4-mini",
    "text-embedding-3-small",
    "text-embedding-3-large",
    "text-embedding-ada-002",
    "omni-moderation-latest",
)
_MODELS_CREATED = 1_700_000_000


async def _answer(request: Request, url: str) -> Response:
    body = await json_object(request)
    if body.get("stream"):
        raise invalid_request("Streaming is not supported by this server.", param="stream")
    engine = request.app.state.server.engine
    (reply,) = await engine.answer_many(url, [body])
    return Response(orjson.dumps(reply.body), status_code=reply.status_code, media_type="application/json")


@router.post("/chat/completions")
async def chat_completions(request: Request) -> Response:
    return await _answer(request, "/v1/chat/completions")


@router.post("/responses")
async def responses(request: Request) -> Response:
    return await _answer(request, "/v1/responses")


@router.post("/embeddings")
async def embeddings(request: Request) -> Response:
    return await _answer(request, "/v1/embeddings")


@router.post("/completions")
async def completions(request: Request) -> Response:
    return await _answer(request, "/v1/completions")


@router.post("/moderations")
async def moderations(request: Request) -> Response:
    return await _answer(request, "/v1/moderations")


def _model(model_id: str) -> dict[str, Any]:
    return {"id": model_id, "object": "model", "created": _MODELS_CREATED, "owned_by": "system"}


@router.get("/models")
async def list_models() -> dict[str, Any]:
    return {"object": "list", "data": [_model(m) for m in KNOWN_MODELS]}


@router.get("/models/{model_id}")
async def retrieve_model(model_id: str) -> dict[str, Any]:
    if model_id not in KNOWN_MODELS:
        raise not_found("Model", model_id, param="model")
    return _model(model_id)
