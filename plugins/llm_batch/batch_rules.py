"""The Batch API's documented limits and the rules every line of an input file must follow.

The service checks a file only after the batch is created, and then fails the whole batch with
one error per bad line. Checking the lines here first costs nothing and names the row at fault.
The rules and error codes are the service's own; a test keeps them in step with the local
server, which plays the service in tests and the demo.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

import orjson

from llm_batch.retryable import PermanentError

MB = 1024 * 1024
MAX_REQUESTS_PER_FILE = 50_000
MAX_FILE_BYTES = 200 * MB

# The endpoints a batch can target, by the names the service uses in its messages.
ENDPOINT_NAMES = {
    "/v1/chat/completions": "Chat Completions",
    "/v1/responses": "Responses",
    "/v1/embeddings": "Embeddings",
    "/v1/completions": "Completions",
    "/v1/moderations": "Moderations",
}
MODEL_OPTIONAL = frozenset({"/v1/moderations"})
REQUIRED_KEYS = ("custom_id", "method", "url", "body")


class LinesBreakBatchRules(PermanentError, ValueError):
    """Request lines the service would refuse; the same rows give the same lines, so no retry helps."""


@dataclass(frozen=True)
class RuleBreak:
    """One broken rule, with the code, message and ``param`` the service reports for it."""

    code: str
    message: str
    param: str | None = None
    line: int | None = None  # 1-based, counting blank lines


def check_lines(lines: Iterable[bytes], endpoint: str) -> list[RuleBreak]:
    """The first rule each bad line breaks, in line order; blank lines are skipped.

    The file-wide rules (unique ``custom_id``, one model) count only lines that pass the others.
    """
    file = _FileSoFar()
    breaks = []
    for number, raw in enumerate(lines, start=1):
        if not raw.strip():
            continue
        broken = _check_line(raw, endpoint, file)
        if broken is not None:
            breaks.append(replace(broken, line=number))
    return breaks


@dataclass
class _FileSoFar:
    """What the lines before this one settled for the file: the ids taken and the model."""

    custom_ids: set[str] = field(default_factory=set)
    model: str | None = None

    def admit(self, custom_id: str, model: str | None) -> RuleBreak | None:
        if custom_id in self.custom_ids:
            return RuleBreak(
                "duplicate_custom_id",
                f"The custom_id '{custom_id}' for this request is a duplicate of another request.",
            )
        self.custom_ids.add(custom_id)
        if model is not None and self.model is None:
            self.model = model
        elif model is not None and model != self.model:
            return RuleBreak(
                "mismatched_model",
                f"The model '{model}' for this request does not match the rest of the batch.",
            )
        return None


def _check_line(raw: bytes, endpoint: str, file: _FileSoFar) -> RuleBreak | None:
    try:
        request = orjson.loads(raw)
    except orjson.JSONDecodeError:
        request = None
    if not isinstance(request, dict):
        return RuleBreak("invalid_json_line", "This line is not parseable as valid JSON.")
    return _check_request(request, endpoint) or file.admit(request["custom_id"], request["body"].get("model"))


def _check_request(request: dict[str, Any], endpoint: str) -> RuleBreak | None:
    """The rules a line must follow on its own, in the order the service applies them."""
    missing = next((key for key in REQUIRED_KEYS if request.get(key) is None), None)
    if missing is not None:
        return RuleBreak("missing_required_parameter", f"Missing required parameter: '{missing}'.", missing)
    custom_id, body = request["custom_id"], request["body"]
    if not isinstance(custom_id, str) or not custom_id:
        return RuleBreak("invalid_request", "The custom_id must be a non-empty string.", "custom_id")
    if request["method"] != "POST":
        return RuleBreak("invalid_request", "Only the POST method is supported.", "method")
    if request["url"] != endpoint:
        return RuleBreak(
            "invalid_url", "The URL provided for this request does not match the batch endpoint.", "url"
        )
    if not isinstance(body, dict):
        return RuleBreak("invalid_request", "The body must be a JSON object.", "body")
    if body.get("stream"):
        name = ENDPOINT_NAMES.get(endpoint, endpoint)
        return RuleBreak(
            "streaming_unsupported", f"{name}: Streaming is not supported in the Batch API.", "body.stream"
        )
    model = body.get("model")
    if model is None and endpoint not in MODEL_OPTIONAL:
        return RuleBreak("invalid_request", "Model parameter is required.", "body.model")
    if model is not None and not isinstance(model, str):
        return RuleBreak("invalid_request", "Model parameter must be a string.", "body.model")
    return None
