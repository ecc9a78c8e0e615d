"""Engines answer single API requests (one batch input line's body, or one synchronous call).

The batch processor and the synchronous routes depend only on this interface, so the offline
``local`` engine and a forwarding ``upstream`` engine are interchangeable.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

SUPPORTED_ENDPOINTS = (
    "/v1/chat/completions",
    "/v1/responses",
    "/v1/embeddings",
    "/v1/completions",
    "/v1/moderations",
)


@dataclass(frozen=True, slots=True)
class EngineReply:
    status_code: int  # 200 on success; 4xx/5xx otherwise
    body: dict  # the response body; on error OpenAI's {"error": {"message","type","param","code"}}


class Engine(Protocol):
    async def answer_many(self, url: str, bodies: list[dict]) -> list[EngineReply]:
        """One reply per body, in the same order."""
        ...

    async def aclose(self) -> None: ...


def error_body(
    message: str, type: str = "invalid_request_error", param: str | None = None, code: str | None = None
) -> dict:
    """OpenAI's error envelope."""
    return {"error": {"message": message, "type": type, "param": param, "code": code}}


__all__ = ["SUPPORTED_ENDPOINTS", "Engine", "EngineReply", "error_body"]
