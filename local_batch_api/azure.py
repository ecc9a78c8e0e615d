"""Azure OpenAI's data plane: the OpenAI handlers under ``/openai`` and ``/openai/v1``.

The classic paths (``/openai/files``, ``/openai/batches``) need ``?api-version=``; Azure answers
a missing one with its bare 404, as it does any path it does not serve. The v1 surface takes
no version, or ``preview`` / ``latest``. Keys come in the ``api-key`` header (or as a bearer token).
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import Request

from local_batch_api.errors import APIError

CLASSIC_PREFIX = "/openai"
V1_PREFIX = "/openai/v1"
# Batches came with 2024-07-01-preview; every dated version since (preview or not) has them.
FIRST_BATCH_VERSION = "2024-07-01"
_DATED_VERSION = re.compile(r"^(\d{4}-\d{2}-\d{2})(-preview)?$")
_V1_VERSIONS = frozenset({"preview", "latest", "v1"})


class AzureError(APIError):
    """Azure's own refusals: ``{"error": {"code", "message"}}`` with the code as a string."""

    def __init__(self, status_code: int, code: str, message: str) -> None:
        super().__init__(status_code, message, code=code)

    def body(self) -> dict[str, Any]:
        return {"error": {"code": self.code, "message": self.message}}


def resource_not_found() -> AzureError:
    return AzureError(404, "404", "Resource not found")


def access_denied() -> AzureError:
    return AzureError(
        401,
        "401",
        "Access denied due to invalid subscription key or wrong API endpoint. Make sure to provide a "
        "valid key for an active subscription and use a correct regional API endpoint for your resource.",
    )


def _unsupported_version() -> AzureError:
    return AzureError(400, "BadRequest", "API version not supported")


def require_classic_api_version(request: Request) -> None:
    version = request.query_params.get("api-version")
    if not version:
        raise resource_not_found()
    dated = _DATED_VERSION.match(version)
    if dated is None or dated.group(1) < FIRST_BATCH_VERSION:
        raise _unsupported_version()


def check_v1_api_version(request: Request) -> None:
    version = request.query_params.get("api-version")
    if version is not None and version not in _V1_VERSIONS:
        raise _unsupported_version()
