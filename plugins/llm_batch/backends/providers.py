"""Which provider serves a connection: the one place that reads a connection's type and extras.

A job moves between providers by its connection alone:

- ``anthropic`` connections (no provider package ships that type: ``password`` is the API key,
  ``host`` the base URL, empty for Anthropic itself), and common-ai's ``pydanticai`` connections
  whose ``model`` extra starts with ``anthropic:``: Anthropic's Message Batches;
- ``openai`` connections with an ``azure_endpoint`` or ``api_version`` extra, and common-ai's
  ``pydanticai_azure`` connections: Azure OpenAI's classic data plane (the job's model names the
  deployment);
- every other ``openai`` connection, Azure's v1 surface (host ending in ``/openai/v1``) included:
  the OpenAI Batch API.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from typing import Any


class Provider(enum.StrEnum):
    OPENAI = "openai"
    AZURE = "azure"
    ANTHROPIC = "anthropic"


ANTHROPIC_CONN_TYPES = frozenset({"anthropic"})
AZURE_CONN_TYPES = frozenset({"pydanticai_azure"})
AZURE_EXTRAS = ("azure_endpoint", "api_version")


def provider_of(conn_type: str | None, host: str | None, extras: Mapping[str, Any]) -> Provider:
    """The provider of a connection, from its type, host and extras."""
    if conn_type in ANTHROPIC_CONN_TYPES:
        return Provider.ANTHROPIC
    if conn_type == "pydanticai" and str(extras.get("model") or "").startswith("anthropic:"):
        return Provider.ANTHROPIC
    if conn_type in AZURE_CONN_TYPES:
        return Provider.AZURE if not _is_v1_surface(host) else Provider.OPENAI
    if any(extras.get(name) for name in AZURE_EXTRAS) and not _is_v1_surface(host):
        return Provider.AZURE
    return Provider.OPENAI


def _is_v1_surface(host: str | None) -> bool:
    return bool(host) and str(host).rstrip("/").endswith("/openai/v1")
