"""Parsing of request bodies, with OpenAI's 400 for anything that is not a JSON object."""

from __future__ import annotations

from typing import Any

import orjson
from fastapi import Request

from local_batch_api.errors import invalid_request


async def json_object(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        value = orjson.loads(raw) if raw else None
    except orjson.JSONDecodeError:
        raise invalid_request(
            "We could not parse the JSON body of your request. The body must be valid JSON."
        ) from None
    if not isinstance(value, dict):
        raise invalid_request("The request body must be a JSON object.")
    return value


def limit_param(value: str | None, *, default: int, maximum: int) -> int:
    if value is None:
        return default
    try:
        limit = int(value)
    except ValueError:
        raise invalid_request(
            f"Invalid 'limit': expected an integer, got {value!r}.", param="limit"
        ) from None
    if not 1 <= limit <= maximum:
        raise invalid_request(f"Invalid 'limit': must be between 1 and {maximum}.", param="limit")
    return limit


def list_page(data: list[dict[str, Any]], has_more: bool) -> dict[str, Any]:
    """A page of a list endpoint, with the cursor ids the SDK's paginator follows."""
    return {
        "object": "list",
        "data": data,
        "first_id": data[0]["id"] if data else None,
        "last_id": data[-1]["id"] if data else None,
        "has_more": has_more,
    }
