"""The Files API: upload, list, retrieve, download and delete."""

from __future__ import annotations

import os
import posixpath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse
from starlette.datastructures import UploadFile
from starlette.formparsers import MultiPartException

from local_batch_api.errors import APIError, invalid_request, not_found
from local_batch_api.ids import new_file_id
from local_batch_api.request_parsing import limit_param, list_page
from local_batch_api.store import FileRecord, Store, fsync_dir, now

router = APIRouter(prefix="/files")  # mounted under /v1, and under Azure's /openai prefixes

PURPOSES = ("batch", "assistants", "fine-tune", "vision", "user_data", "evals")
DEFAULT_BATCH_FILE_TTL = 30 * 24 * 3600
_COPY_CHUNK = 1024 * 1024


def _store(request: Request) -> Store:
    return request.app.state.server.store


@router.post("")
async def upload_file(request: Request) -> dict[str, Any]:
    max_bytes = request.app.state.server.settings.max_upload_bytes
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > max_bytes + 64 * 1024:
        raise _too_large(max_bytes)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise invalid_request("Uploads must be multipart/form-data with 'file' and 'purpose' fields.")
    try:
        form = await request.form(max_files=1, max_fields=8)
    except MultiPartException as exc:
        raise invalid_request(f"Could not parse the multipart body: {exc.message}") from None
    upload = form.get("file")
    if not isinstance(upload, UploadFile):
        raise invalid_request(
            "Missing required parameter: 'file'.", param="file", code="missing_required_parameter"
        )
    purpose = form.get("purpose")
    if purpose not in PURPOSES:
        raise invalid_request(
            f"Invalid value for 'purpose': {purpose!r}; expected one of {', '.join(PURPOSES)}.",
            param="purpose",
            code="invalid_value",
        )
    filename = _safe_filename(upload.filename)
    if purpose == "batch" and not filename.endswith(".jsonl"):
        raise invalid_request("Invalid file format for Batch API. Must be .jsonl", param="file")
    ttl = _expires_after(form.get("expires_after[anchor]"), form.get("expires_after[seconds]"))
    if ttl is None and purpose == "batch":
        ttl = DEFAULT_BATCH_FILE_TTL

    store = _store(request)
    file_id = new_file_id()
    target = store.file_path(file_id)
    partial = target.with_suffix(".partial")
    size = 0
    try:
        with partial.open("wb") as out:
            while chunk := await upload.read(_COPY_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    raise _too_large(max_bytes)
                out.write(chunk)
            out.flush()
            os.fsync(out.fileno())  # the bytes are on disk before the name and the record say so
        os.replace(partial, target)
        fsync_dir(target.parent)
    finally:
        partial.unlink(missing_ok=True)
        await upload.close()
    created = int(now())
    record = FileRecord(file_id, size, created, filename, purpose, created + ttl if ttl else None)
    store.add_file(record)
    return record.to_api()


@router.get("")
async def list_files(
    request: Request,
    purpose: str | None = None,
    after: str | None = None,
    limit: str | None = None,
    order: str = "desc",
) -> dict[str, Any]:
    if order not in ("asc", "desc"):
        raise invalid_request(
            "Invalid 'order': expected 'asc' or 'desc'.", param="order", code="invalid_value"
        )
    files, has_more = _store(request).list_files(
        purpose=purpose,
        after=after,
        limit=limit_param(limit, default=10_000, maximum=10_000),
        ascending=order == "asc",
    )
    return list_page([f.to_api() for f in files], has_more)


@router.get("/{file_id}")
async def retrieve_file(request: Request, file_id: str) -> dict[str, Any]:
    return _existing(request, file_id).to_api()


@router.get("/{file_id}/content")
async def file_content(request: Request, file_id: str) -> FileResponse:
    record = _existing(request, file_id)
    return FileResponse(_store(request).file_path(record.id), media_type="application/octet-stream")


@router.delete("/{file_id}")
async def delete_file(request: Request, file_id: str) -> dict[str, Any]:
    record = _existing(request, file_id)
    _store(request).delete_file(record.id)
    return {"id": record.id, "object": "file", "deleted": True}


def _existing(request: Request, file_id: str) -> FileRecord:
    record = _store(request).get_file(file_id)
    if record is None:
        raise not_found("File", file_id)
    return record


def _safe_filename(name: str | None) -> str:
    base = posixpath.basename((name or "").replace("\\", "/")).strip()
    return base[:255] or "upload"


def _expires_after(anchor: Any, seconds: Any) -> int | None:
    if anchor is None and seconds is None:
        return None
    if anchor != "created_at":
        raise invalid_request("expires_after[anchor] must be 'created_at'.", param="expires_after.anchor")
    try:
        value = int(str(seconds))
    except ValueError:
        value = -1
    if not 3600 <= value <= 2_592_000:
        raise invalid_request(
            "expires_after[seconds] must be between 3600 and 2592000.", param="expires_after.seconds"
        )
    return value


def _too_large(max_bytes: int) -> APIError:
    return APIError(413, f"File is too large; the maximum upload size is {max_bytes} bytes.", param="file")
