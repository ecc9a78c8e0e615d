"""The APIs (dialects) the server speaks, and what a dialect changes for a batch's processing.

One processor drives every batch; a dialect only says where the batch's requests live and
whether its results become files of the Files API.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Dialect:
    name: str
    # The requests came in the create call (kept in the work directory, not as an uploaded file),
    # and the results are served from the work directory by the batch's own route.
    inline_requests: bool


OPENAI = Dialect("openai", inline_requests=False)
ANTHROPIC = Dialect("anthropic", inline_requests=True)
DIALECTS = {d.name: d for d in (OPENAI, ANTHROPIC)}


# Azure's batch endpoints: named without ``/v1`` on the classic paths, with it on the v1 surface.
AZURE_ENDPOINTS = (
    "/chat/completions",
    "/embeddings",
    "/responses",
    "/v1/chat/completions",
    "/v1/embeddings",
    "/v1/responses",
)


def is_anthropic_path(path: str) -> bool:
    return path == "/v1/messages" or path.startswith("/v1/messages/")


def is_azure_path(path: str) -> bool:
    return path == "/openai" or path.startswith("/openai/")


def engine_url(endpoint: str) -> str:
    """The engine's URL for a batch endpoint; Azure names them without the ``/v1`` prefix."""
    return endpoint if endpoint.startswith("/v1/") else "/v1" + endpoint
