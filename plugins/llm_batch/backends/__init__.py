"""Batch providers behind one interface: see ``base.BatchBackend`` and the records it speaks.

A provider's module is named ``<provider>_backend``, never after its SDK: Airflow imports every
file under ``plugins/`` by its bare name too, and a file called ``openai.py`` would shadow the
``openai`` package in every worker.
"""

from __future__ import annotations

import logging

from llm_batch.backends.base import BatchBackend
from llm_batch.backends.errors import BackendError, BatchAlreadyEnded, BatchNotFound, CredentialsRejected
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
    "ResultLine",
    "RetryPolicy",
    "SubmissionTag",
    "SubmitResult",
    "batch_backend",
]


def batch_backend(conn_id: str) -> BatchBackend:
    """The backend of a connection's provider.

    Every connection is served by the OpenAI backend (OpenAI, Azure's v1 surface, the local
    server); other providers will be chosen here by connection type.
    """
    from llm_batch.backends.openai_backend import OpenAIBatchBackend

    return OpenAIBatchBackend(conn_id)
