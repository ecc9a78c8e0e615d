"""The Batches API: create, retrieve, list and cancel. Processing happens in the processor."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from local_batch_api.dialects import AZURE_ENDPOINTS, is_azure_path
from local_batch_api.engines import SUPPORTED_ENDPOINTS
from local_batch_api.errors import APIError, invalid_request, not_found
from local_batch_api.faults import Faults
from local_batch_api.ids import new_batch_id
from local_batch_api.request_parsing import json_object, limit_param, list_page
from local_batch_api.store import batch_to_api, now

router = APIRouter(prefix="/batches")  # mounted under /v1, and under Azure's /openai prefixes

CANCELLABLE = frozenset({"validating", "in_progress", "finalizing"})


@router.post("")
async def create_batch(request: Request) -> dict[str, Any]:
    server = request.app.state.server
    params = await json_object(request)
    input_file_id = params.get("input_file_id")
    if not isinstance(input_file_id, str) or not input_file_id:
        raise invalid_request(
            "Missing required parameter: 'input_file_id'.",
            param="input_file_id",
            code="missing_required_parameter",
        )
    endpoint = params.get("endpoint")
    supported = AZURE_ENDPOINTS if is_azure_path(request.url.path) else SUPPORTED_ENDPOINTS
    if endpoint not in supported:
        raise invalid_request(
            f"Invalid value: {endpoint!r}. Supported values are: {', '.join(map(repr, supported))}.",
            param="endpoint",
            code="invalid_value",
        )
    if params.get("completion_window") != "24h":
        raise invalid_request(
            f"Invalid value: {params.get('completion_window')!r}. Supported values are: '24h'.",
            param="completion_window",
            code="invalid_value",
        )
    metadata = _metadata(params.get("metadata"))
    output_expires_after = _output_expires_after(params.get("output_expires_after"))
    faults = Faults.from_metadata(metadata, server.fault_dice.faults_for_new_batch())

    created = now()
    batch = {
        "id": new_batch_id(),
        "endpoint": endpoint,
        "input_file_id": input_file_id,
        "completion_window": "24h",
        "status": "validating",
        "created_at": created,
        "expires_at": created + server.settings.window_seconds,
        "metadata": metadata,
        "output_expires_after": output_expires_after,
        "faults": faults.to_dict(),
    }
    server.store.add_batch(batch)
    server.processor.launch(batch["id"])
    return batch_to_api(server.store.get_batch(batch["id"]))


@router.get("")
async def list_batches(
    request: Request, after: str | None = None, limit: str | None = None
) -> dict[str, Any]:
    batches, has_more = request.app.state.server.store.list_batches(
        dialect="openai", after=after, limit=limit_param(limit, default=20, maximum=100)
    )
    return list_page([batch_to_api(b) for b in batches], has_more)


@router.get("/{batch_id}")
async def retrieve_batch(request: Request, batch_id: str) -> dict[str, Any]:
    batch = request.app.state.server.store.get_batch(batch_id, dialect="openai")
    if batch is None:
        raise not_found("Batch", batch_id)
    return batch_to_api(batch)


@router.post("/{batch_id}/cancel")
async def cancel_batch(request: Request, batch_id: str) -> dict[str, Any]:
    server = request.app.state.server
    batch = server.store.get_batch(batch_id, dialect="openai")
    if batch is None:
        raise not_found("Batch", batch_id)
    status = batch["status"]
    if status in CANCELLABLE:
        if server.store.update_batch(
            batch_id, only_if_status=status, status="cancelling", cancelling_at=now()
        ):
            server.processor.notify(batch_id)
    elif status not in ("cancelling", "cancelled"):
        raise APIError(409, f"Cannot cancel a batch with status '{status}'.")
    return batch_to_api(server.store.get_batch(batch_id))


def _metadata(value: Any) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict):
        raise invalid_request(
            "Invalid type for 'metadata': expected an object.", param="metadata", code="invalid_type"
        )
    if len(value) > 16:
        raise invalid_request("Invalid 'metadata': at most 16 pairs.", param="metadata", code="invalid_type")
    for key, item in value.items():
        if len(key) > 64:
            raise invalid_request(
                f"Invalid 'metadata': key {key[:20]!r}... is longer than 64 characters.",
                param="metadata",
                code="invalid_type",
            )
        if not isinstance(item, str):
            raise invalid_request(
                f"Invalid type for 'metadata.{key}': expected a string.",
                param="metadata",
                code="invalid_type",
            )
        if len(item) > 512:
            raise invalid_request(
                f"Invalid 'metadata.{key}': longer than 512 characters.",
                param="metadata",
                code="invalid_type",
            )
    return value


def _output_expires_after(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    seconds = value.get("seconds") if isinstance(value, dict) else None
    if (
        not isinstance(value, dict)
        or value.get("anchor") != "created_at"
        or not isinstance(seconds, int)
        or not 3600 <= seconds <= 2_592_000
    ):
        raise invalid_request(
            "output_expires_after must be {anchor: 'created_at', seconds: 3600..2592000}.",
            param="output_expires_after",
        )
    return {"anchor": "created_at", "seconds": seconds}
