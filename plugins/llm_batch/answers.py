"""Structured answers: the JSON schema sent with each request, and checking what comes back.

The schema sent to the model and the validator of its answers come from one Pydantic model, so
they cannot drift apart. Structured outputs need a strict schema: every property required and
no additional properties, at every level.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ValidationError


def strict_json_schema(model: type[BaseModel]) -> dict[str, Any]:
    schema = model.model_json_schema()
    _make_strict(schema)
    for definition in schema.get("$defs", {}).values():
        _make_strict(definition)
    return schema


def _make_strict(node: Any) -> None:
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node["additionalProperties"] = False
            node["required"] = list(node["properties"])
        for key, value in node.items():
            if key != "$defs":
                _make_strict(value)
    elif isinstance(node, list):
        for item in node:
            _make_strict(item)


class AnswerError(ValueError):
    """An answer that cannot be stored: with a reason code for the failures table."""

    def __init__(self, reason: str, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


def parse_answer(model: type[BaseModel], content: str | None) -> dict[str, Any]:
    """Validate the model's JSON text against the schema; the fields as plain Python values."""
    if content is None or not content.strip():
        raise AnswerError("empty_answer", "the model returned no content")
    try:
        return model.model_validate_json(content).model_dump(mode="python")
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "answer"
        reason = "invalid_json" if first["type"] == "json_invalid" else "schema_violation"
        raise AnswerError(reason, f"{where}: {first['msg']}") from None
