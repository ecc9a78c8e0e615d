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
    return backend_for(provider_of(conn.conn_type, conn.host, conn.extra_dejson), conn_id)


async def abatch_backend(conn_id: str) -> BatchBackend:
    """:func:`batch_backend` for the triggerer: the connection is read without blocking the loop."""
    from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

    conn = await get_async_connection(conn_id)
    return backend_for(provider_of(conn.conn_type, conn.host, await get_async_extra_dejson(conn)), conn_id)


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
