"""Anthropic's Message Batch objects and result lines, from the records every batch shares.

A Message Batch is processed like any batch (same statuses, counters and partial files); this
module only says how that looks through Anthropic's API.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from local_batch_api.engines import EngineReply
from local_batch_api.engines.messages import as_anthropic_error
from local_batch_api.processor import CANCELLED_ERROR, EXPIRED_ERROR
from local_batch_api.store import TERMINAL_STATUSES

_PROCESSING_STATUS = {"cancelling": "canceling"}  # the rest: in_progress until terminal, then ended
_ENDED_AT = ("completed_at", "cancelled_at", "expired_at", "failed_at")
_COPY_CHUNK = 1024 * 1024
# Error lines of requests never run, by their code, and the result type Anthropic gives them.
_NEVER_RAN = {EXPIRED_ERROR["code"]: "expired", CANCELLED_ERROR["code"]: "canceled"}


def rfc3339(timestamp: float | None) -> str | None:
    if timestamp is None:
        return None
    return datetime.fromtimestamp(timestamp, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def ended(batch: dict[str, Any]) -> bool:
    return batch["status"] in TERMINAL_STATUSES


def message_batch(batch: dict[str, Any], results_url: str) -> dict[str, Any]:
    """The MessageBatch object; ``results_url`` is given only once the batch has ended."""
    is_ended = ended(batch)
    status = "ended" if is_ended else _PROCESSING_STATUS.get(batch["status"], "in_progress")
    ended_at = next((batch[k] for k in _ENDED_AT if batch.get(k) is not None), None) if is_ended else None
    return {
        "id": batch["id"],
        "type": "message_batch",
        "processing_status": status,
        "request_counts": request_counts(batch),
        "created_at": rfc3339(batch["created_at"]),
        "expires_at": rfc3339(batch["expires_at"]),
        "ended_at": rfc3339(ended_at),
        "cancel_initiated_at": rfc3339(batch.get("cancelling_at")),
        "archived_at": None,
        "results_url": results_url if is_ended else None,
    }


def request_counts(batch: dict[str, Any]) -> dict[str, int]:
    """Every request stays ``processing`` until the batch ends; then each has its outcome."""
    counts = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    if not ended(batch):
        return counts | {"processing": batch["total"]}
    # Requests past the recorded progress have no line: those of a failed batch, or of one
    # cancelled in a data directory older than the batch_cancelled lines.
    unprocessed = batch["total"] - batch["next_line"]
    ran_and_failed = batch["failed"] - batch["expired"] - batch["cancelled"]
    return counts | {
        "succeeded": batch["completed"],
        "errored": ran_and_failed + (unprocessed if batch["status"] == "failed" else 0),
        "canceled": batch["cancelled"] + (unprocessed if batch["status"] == "cancelled" else 0),
        "expired": batch["expired"],
    }


def result_lines(batch: dict[str, Any], paths: tuple[Path, Path, Path]) -> Iterator[bytes]:
    """The results file, line by line: answered requests, then the ones never attempted.

    Only the recorded bytes of the work files are read: a crash may have left more behind.
    """
    input_path, output_path, error_path = paths
    for path, size in ((output_path, batch["output_bytes"]), (error_path, batch["error_bytes"])):
        for raw in _recorded_lines(path, size):
            yield _result_line(orjson.loads(raw))
    unattempted = "canceled" if batch["status"] == "cancelled" else "errored"
    with input_path.open("rb") as source:
        source.seek(batch["next_offset"])
        for raw in source:
            if raw.strip():
                custom_id = orjson.loads(raw)["custom_id"]
                yield _line(custom_id, _unattempted(unattempted))


def _unattempted(kind: str) -> dict[str, Any]:
    if kind == "canceled":
        return {"type": "canceled"}
    error = as_anthropic_error(EngineReply(500, {"error": {"message": "The batch failed."}}))
    return {"type": "errored", "error": error}


def _recorded_lines(path: Path, size: int) -> Iterator[bytes]:
    if size == 0:
        return
    with path.open("rb") as handle:
        left, rest = size, b""
        while left > 0:
            chunk = handle.read(min(_COPY_CHUNK, left))
            if not chunk:
                break
            left -= len(chunk)
            *lines, rest = (rest + chunk).split(b"\n")
            yield from (line for line in lines if line.strip())
        if rest.strip():
            yield rest


def _result_line(line: dict[str, Any]) -> bytes:
    response, error = line.get("response"), line.get("error")
    if error is not None and (never_ran := _NEVER_RAN.get(error.get("code"))) is not None:
        return _line(line["custom_id"], {"type": never_ran})
    if response is not None and response["status_code"] == 200:
        message = response["body"]
        message["usage"] = {**message.get("usage", {}), "service_tier": "batch"}
        return _line(line["custom_id"], {"type": "succeeded", "message": message})
    status = response["status_code"] if response else 500
    body = response["body"] if response else {"error": error}
    return _line(
        line["custom_id"], {"type": "errored", "error": as_anthropic_error(EngineReply(status, body))}
    )


def _line(custom_id: str, result: dict[str, Any]) -> bytes:
    return orjson.dumps({"custom_id": custom_id, "result": result}) + b"\n"
