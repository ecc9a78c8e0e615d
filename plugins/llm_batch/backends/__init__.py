"""Batch providers behind one interface: see ``base.BatchBackend`` and the records it speaks.

A provider's module is named ``<provider>_backend``, never after its SDK: Airflow imports every
file under ``plugins/`` by its bare name too, and a file called ``openai.py`` would shadow the
``openai`` package in every worker.
"""

from __future__ import annotations

import logging

from llm_batch.backends.base import BatchBackend
from llm_batch.backends.errors import BackendError, BatchAlreadyEnded, BatchNotFound, CredentialsRejected
from llm_batch.backends.providers import Provider, provider_of
from llm_batch.backends.records import (
    BatchInput,
    BatchState,
    BatchStatus,
    LineOutcome,
    ResultLine,
    SubmissionTag,
    SubmitResult,
)
from llm_batch.backends.retry import RetryPolicy
from llm_batch.backends.shared_clients import shared_read
from llm_batch.retryable import PermanentError

# The SDKs' HTTP clients log "HTTP Request: GET ..." at INFO for every call: in a wait that polls
# every minute, one such line beside each progress line, saying nothing a user needs. Warnings
# (and the SDKs' own retry messages) still show.
for _name in ("httpx", "httpx2"):
    logging.getLogger(_name).setLevel(logging.WARNING)

__all__ = [
    "BackendError",
    "BatchAlreadyEnded",
    "BatchBackend",
    "BatchInput",
    "BatchNotFound",
    "BatchState",
    "BatchStatus",
    "CredentialsRejected",
    "InvalidConnectionExtra",
    "LineOutcome",
    "Provider",
    "ResultLine",
    "RetryPolicy",
    "SubmissionTag",
    "SubmitResult",
    "abatch_backend",
    "backend_for",
    "batch_backend",
]


def batch_backend(conn_id: str) -> BatchBackend:
    """The backend of a connection's provider (see ``providers``: by connection type and extras)."""
    from airflow.providers.common.compat.sdk import BaseHook

    conn = BaseHook.get_connection(conn_id)
    extras = conn.extra_dejson
    backend = backend_for(provider_of(conn.conn_type, conn.host, extras), conn_id)
    backend.enqueued_token_limits = _token_limits(conn_id, extras)
    return backend


async def abatch_backend(conn_id: str) -> BatchBackend:
    """:func:`batch_backend` for the triggerer: the connection is read without blocking the loop."""
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    async def read() -> tuple[str, str | None, dict]:
        conn = await get_async_connection(conn_id)
        return conn.conn_type, conn.host, await get_async_extra_dejson(conn)

    conn_type, host, extras = await shared_read(f"connection:{conn_id}", read)
    return backend_for(provider_of(conn_type, host, extras), conn_id)


class InvalidConnectionExtra(PermanentError, ValueError):
    """A batch connection's extra is malformed: the connection must be fixed, not the task retried."""


def _token_limits(conn_id: str, extras: dict) -> dict[str, int]:
    """The ``enqueued_token_limits`` extra: model (or Azure deployment) name -> tokens."""
    declared = extras.get("enqueued_token_limits") or {}
    if not isinstance(declared, dict) or not all(
        isinstance(tokens, int) and tokens > 0 for tokens in declared.values()
    ):
        raise InvalidConnectionExtra(
            f"connection {conn_id!r}: the enqueued_token_limits extra must map model names to "
            f'positive whole numbers of tokens, e.g. {{"gpt-4o-mini": 2000000}}; got {declared!r}'
        )
    return dict(declared)


def backend_for(provider: Provider, conn_id: str) -> BatchBackend:
    """A provider's backend on a connection; SDKs are imported only for the provider in use."""
    if provider is Provider.ANTHROPIC:
        from llm_batch.backends.anthropic_backend import AnthropicBatchBackend

        return AnthropicBatchBackend(conn_id)
    if provider is Provider.AZURE:
        from llm_batch.backends.azure_backend import AzureOpenAIBatchBackend

        return AzureOpenAIBatchBackend(conn_id)
    from llm_batch.backends.openai_backend import OpenAIBatchBackend

    return OpenAIBatchBackend(conn_id)
