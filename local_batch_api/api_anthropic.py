"""Anthropic's Message Batches API and the synchronous Messages API.

Message Batches are processed by the same processor, store and engine as OpenAI batches; the
requests arrive in the create call and are kept in the work directory (dialect ``anthropic``).
Errors raised here are answered in Anthropic's shape by the application (see ``app.py``).
"""

from __future__ import annotations

import asyncio
import os
import re
from pathlib import Path
from typing import Any

import orjson
from fastapi import APIRouter, Depends, Request
from fastapi.responses import Response, StreamingResponse

from local_batch_api.anthropic_shapes import ended, message_batch, result_lines
from local_batch_api.api_batches import CANCELLABLE
from local_batch_api.dialects import ANTHROPIC
from local_batch_api.engines.messages import MESSAGES_URL
from local_batch_api.errors import APIError, invalid_request
from local_batch_api.faults import METADATA_KEY, Faults
from local_batch_api.ids import new_message_batch_id
from local_batch_api.request_parsing import json_object, limit_param
from local_batch_api.store import fsync_dir, now

CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")


def _require_version(request: Request) -> None:
    if not request.headers.get("anthropic-version"):
        raise invalid_request("anthropic-version: header is required")


router = APIRouter(prefix="/v1/messages", dependencies=[Depends(_require_version)])


def _not_found(batch_id: str) -> APIError:
    return APIError(404, f"Message Batch {batch_id!r} not found.")


def _existing(request: Request, batch_id: str) -> dict[str, Any]:
    batch = request.app.state.server.store.get_batch(batch_id, dialect=ANTHROPIC.name)
    if batch is None:
        raise _not_found(batch_id)
    return batch


def _to_api(request: Request, batch: dict[str, Any]) -> dict[str, Any]:
    results_url = f"{str(request.base_url).rstrip('/')}/v1/messages/batches/{batch['id']}/results"
    return message_batch(batch, results_url)


@router.post("")
async def create_message(request: Request) -> Response:
    body = await json_object(request)
    (reply,) = await request.app.state.server.engine.answer_many(MESSAGES_URL, [body])
    return Response(orjson.dumps(reply.body), status_code=reply.status_code, media_type="application/json")


@router.post("/batches")
async def create_batch(request: Request) -> dict[str, Any]:
    server = request.app.state.server
    max_bytes = server.settings.max_message_batch_bytes
    declared = request.headers.get("content-length", "")
    if (declared.isdigit() and int(declared) > max_bytes) or len(await request.body()) > max_bytes:
        raise invalid_request(f"The batch is larger than {max_bytes} bytes, the maximum for a Message Batch.")
    params = await json_object(request)
    extra = sorted(set(params) - {"requests", METADATA_KEY})
    if extra:
        raise invalid_request(f"{extra[0]}: Extra inputs are not permitted")
    requests = _requests(params.get("requests"), server.settings.max_message_batch_requests)
    faults = _faults(params.get(METADATA_KEY), server.fault_dice.faults_for_new_batch())

    batch_id = new_message_batch_id()
    await asyncio.to_thread(_write_requests, server.store.work_paths(batch_id)[0], requests)
    created = now()
    model = requests[0]["params"].get("model")
    server.store.add_batch(
        {
            "id": batch_id,
            "dialect": ANTHROPIC.name,
            "endpoint": MESSAGES_URL,
            "input_file_id": "",
            "completion_window": "24h",
            "status": "in_progress",  # nothing to validate: the create call checked the batch whole
            "created_at": created,
            "in_progress_at": created,
            "expires_at": created + server.settings.window_seconds,
            "total": len(requests),
            "model": model if isinstance(model, str) else None,
            "faults": faults.to_dict(),
        }
    )
    server.processor.launch(batch_id)
    return _to_api(request, server.store.get_batch(batch_id))


@router.get("/batches")
async def list_batches(
    request: Request, before_id: str | None = None, after_id: str | None = None, limit: str | None = None
) -> dict[str, Any]:
    batches, has_more = request.app.state.server.store.list_batches(
        dialect=ANTHROPIC.name,
        after=after_id,
        before=before_id,
        limit=limit_param(limit, default=20, maximum=1000),
    )
    data = [_to_api(request, b) for b in batches]
    return {
        "data": data,
        "has_more": has_more,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
    }


@router.get("/batches/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str) -> dict[str, Any]:
    return _to_api(request, _existing(request, batch_id))


@router.post("/batches/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> dict[str, Any]:
    server = request.app.state.server
    batch = _existing(request, batch_id)
    if batch["status"] in CANCELLABLE and server.store.update_batch(
        batch_id, only_if_status=batch["status"], status="cancelling", cancelling_at=now()
    ):
        server.processor.notify(batch_id)
    return _to_api(request, server.store.get_batch(batch_id))


@router.get("/batches/{batch_id}/results")
async def batch_results(request: Request, batch_id: str) -> StreamingResponse:
    batch = _existing(request, batch_id)
    if not ended(batch):
        raise invalid_request(f"Message Batch {batch_id!r} has not yet ended; its results are not ready.")
    paths = request.app.state.server.store.work_paths(batch_id)
    return StreamingResponse(result_lines(batch, paths), media_type="application/binary")


@router.delete("/batches/{batch_id}")
async def delete_batch(request: Request, batch_id: str) -> dict[str, Any]:
    store = request.app.state.server.store
    batch = _existing(request, batch_id)
    if not ended(batch):
        raise invalid_request(
            f"Message Batch {batch_id!r} is still being processed; cancel it and wait for it to end first."
        )
    store.delete_batch(batch_id)  # the record first: files without a record are never read again
    for path in store.work_paths(batch_id):
        path.unlink(missing_ok=True)
    return {"id": batch_id, "type": "message_batch_deleted"}


def _write_requests(path: Path, requests: list[dict[str, Any]]) -> None:
    """The requests as input lines, synced and renamed before any record says the batch exists."""
    partial = path.with_suffix(".partial")
    with partial.open("wb") as out:
        out.writelines(
            orjson.dumps({"custom_id": r["custom_id"], "body": r["params"]}) + b"\n" for r in requests
        )
        out.flush()
        os.fsync(out.fileno())
    os.replace(partial, path)
    fsync_dir(path.parent)


def _requests(value: Any, max_requests: int) -> list[dict[str, Any]]:
    """The requests, checked as a whole: any bad one refuses the batch. Params are checked later."""
    if not isinstance(value, list) or not value:
        raise invalid_request("requests: a non-empty list of requests is required")
    if len(value) > max_requests:
        raise invalid_request(
            f"requests: a Message Batch holds at most {max_requests} requests, not {len(value)}"
        )
    seen: set[str] = set()
    for n, item in enumerate(value):
        if not isinstance(item, dict) or not isinstance(item.get("params"), dict):
            raise invalid_request(f"requests.{n}.params: Field required")
        custom_id = item.get("custom_id")
        if not isinstance(custom_id, str) or not CUSTOM_ID.match(custom_id):
            raise invalid_request(
                f"requests.{n}.custom_id: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'"
            )
        if custom_id in seen:
            raise invalid_request(f"requests.{n}.custom_id: duplicate custom_id {custom_id!r}")
        seen.add(custom_id)
    return value


def _faults(value: Any, base: Faults) -> Faults:
    """Per-batch faults: Message Batches carry no metadata, so they come as a body field."""
    if value is None:
        return base
    if isinstance(value, str):
        return Faults.from_metadata({METADATA_KEY: value}, base)
    if not isinstance(value, dict):
        raise invalid_request(f"{METADATA_KEY} must be a JSON object.")
    return Faults.from_mapping(value, base)
