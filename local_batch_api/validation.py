"""Validation of a batch input file, line by line, with the codes the service reports.

The file is streamed, never held whole, so a 200 MB file costs a line's worth of memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson

from local_batch_api.engines.tokens import text_tokens

REQUIRED_FIELDS = ("custom_id", "method", "url", "body")
_ENDPOINT_NAMES = {
    "/v1/chat/completions": "Chat Completions",
    "/v1/responses": "Responses",
    "/v1/embeddings": "Embeddings",
    "/v1/completions": "Completions",
    "/v1/moderations": "Moderations",
}
_MODEL_OPTIONAL = {"/v1/moderations"}


@dataclass
class ValidationResult:
    total: int = 0
    model: str | None = None
    enqueued_tokens: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)


# Where a request body holds the prompt: the service counts enqueued tokens of the prompt, not
# of the JSON around it (keys, custom_id, schema).
_PROMPT_KEYS = frozenset({"messages", "content", "text", "input", "instructions", "system", "prompt"})


def prompt_texts(value: Any, key: str | None = None) -> Iterable[str]:
    """The prompt's strings in a request body (message contents, input, instructions), in order."""
    if isinstance(value, str):
        if key in _PROMPT_KEYS:
            yield value
    elif isinstance(value, list):
        for item in value:
            yield from prompt_texts(item, key)
    elif isinstance(value, dict):
        for name, item in value.items():
            if name in _PROMPT_KEYS or key in _PROMPT_KEYS:
                yield from prompt_texts(item, name)


def batch_error(
    code: str, message: str, *, param: str | None = None, line: int | None = None
) -> dict[str, Any]:
    return {"code": code, "message": message, "param": param, "line": line}


def validate_input_file(path: Path, endpoint: str, *, max_requests: int, max_bytes: int) -> ValidationResult:
    """Check every line; each bad line gives one error entry naming its 1-based line number."""
    result = ValidationResult()
    size = path.stat().st_size
    if size == 0:
        result.errors.append(batch_error("empty_file", "The input file is empty.", param="input_file_id"))
        return result
    if size > max_bytes:
        result.errors.append(
            batch_error(
                "file_too_large",
                f"The input file is {size} bytes; the maximum for a batch is {max_bytes} bytes.",
                param="input_file_id",
            )
        )
        return result
    with path.open("rb") as handle:
        return validate_lines(handle, endpoint, max_requests=max_requests, result=result)


def validate_lines(
    lines: Iterable[bytes], endpoint: str, *, max_requests: int, result: ValidationResult | None = None
) -> ValidationResult:
    """The per-line rules, for any iterable of raw lines (clients use it to check before uploading)."""
    result = result or ValidationResult()
    seen: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue  # a trailing blank line is not a request
        result.total += 1
        if result.total > max_requests:
            result.errors = [
                batch_error(
                    "too_many_requests",
                    f"The input file has more than {max_requests} requests, the maximum for a batch.",
                    param="input_file_id",
                )
            ]
            return result
        error = _check_line(raw, number, endpoint, seen, result)
        if error is not None:
            result.errors.append(error)
    if result.total == 0:
        result.errors.append(
            batch_error("empty_file", "The input file has no requests.", param="input_file_id")
        )
    return result


def _check_line(
    raw: bytes, number: int, endpoint: str, seen: set[str], result: ValidationResult
) -> dict[str, Any] | None:
    try:
        line = orjson.loads(raw)
    except orjson.JSONDecodeError:
        line = None
    if not isinstance(line, dict):
        return batch_error("invalid_json_line", "This line is not parseable as valid JSON.", line=number)
    for name in REQUIRED_FIELDS:
        if name not in line or line[name] is None:
            return batch_error(
                "missing_required_parameter",
                f"Missing required parameter: '{name}'.",
                param=name,
                line=number,
            )
    custom_id, body = line["custom_id"], line["body"]
    if not isinstance(custom_id, str) or not custom_id:
        return batch_error(
            "invalid_request", "The custom_id must be a non-empty string.", param="custom_id", line=number
        )
    if line["method"] != "POST":
        return batch_error(
            "invalid_request", "Only the POST method is supported.", param="method", line=number
        )
    if line["url"] != endpoint:
        return batch_error(
            "invalid_url",
            "The URL provided for this request does not match the batch endpoint.",
            param="url",
            line=number,
        )
    if not isinstance(body, dict):
        return batch_error("invalid_request", "The body must be a JSON object.", param="body", line=number)
    if body.get("stream"):
        return batch_error(
            "streaming_unsupported",
            f"{_ENDPOINT_NAMES.get(endpoint, endpoint)}: Streaming is not supported in the Batch API.",
            param="body.stream",
            line=number,
        )
    model = body.get("model")
    if model is None and endpoint not in _MODEL_OPTIONAL:
        return batch_error("invalid_request", "Model parameter is required.", param="body.model", line=number)
    if model is not None and not isinstance(model, str):
        return batch_error(
            "invalid_request", "Model parameter must be a string.", param="body.model", line=number
        )
    if custom_id in seen:
        return batch_error(
            "duplicate_custom_id",
            f"The custom_id '{custom_id}' for this request is a duplicate of another request.",
            line=number,
        )
    seen.add(custom_id)
    if model is not None:
        if result.model is None:
            result.model = model
        elif model != result.model:
            return batch_error(
                "mismatched_model",
                f"The model '{model}' for this request does not match the rest of the batch.",
                line=number,
            )
    result.enqueued_tokens += text_tokens("".join(prompt_texts(body)))
    return None
