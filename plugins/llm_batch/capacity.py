"""Waves under the enqueued-token limit: a shard is sent only while its model has room in its account.

A provider caps the tokens an organisation may have enqueued in running batches, per model (per
deployment on Azure); a batch over the cap fails with ``token_limit_exceeded``. Before a
submission uploads anything it asks for admission, under one lock per account and model: the
tokens of every batch the ledger holds there, whichever job or run made it, plus its own, must
stay under the limit. Admitted, it records its tokens in its ledger row, so the next one counts
them; they stop counting once the batch ends. A shard that does not fit raises
:class:`AwaitingCapacity`: the submit task queues it, and its wait task (deferred, holding no
worker) asks again until there is room.

The limit is the job's ``shard_limits.max_enqueued_tokens``, else the batch connection's
``enqueued_token_limits`` extra (model or deployment name -> tokens), else the model's published
default (``llm_batch.models``, OpenAI's only). With none known, shards are admitted as they come.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING

from llm_batch.backends import BackendError, BatchBackend, Provider, RetryPolicy
from llm_batch.clock import utcnow
from llm_batch.inflight import RUNNING_HOLD, SUBMITTING_HOLD
from llm_batch.models import default_enqueued_token_limit
from llm_batch.warehouse import queries

if TYPE_CHECKING:
    from llm_batch.handoffs import ShardSpec
    from llm_batch.job import BatchJob
    from llm_batch.ledger import BatchLedger

log = logging.getLogger(__name__)

ADMISSION_LOCK_TIMEOUT_SECONDS = 120.0
LOOK_RETRY = RetryPolicy(tries=2, base=0.5, cap=2.0)  # a look that fails counts the batch as running


class AwaitingCapacity(Exception):
    """The shard does not fit under its model's enqueued-token limit now; ask again later."""


def token_limit(job: BatchJob, backend: BatchBackend) -> int | None:
    """The enqueued-token limit of the job's model in the backend's account, if any is known."""
    declared = job.shard_limits.max_enqueued_tokens
    if declared is not None:
        return declared
    from_connection = backend.enqueued_token_limits.get(job.model)
    if from_connection is not None:
        return int(from_connection)
    # The published figures are OpenAI's: an Azure deployment's quota is its own, set per deployment.
    return default_enqueued_token_limit(job.model) if backend.name == Provider.OPENAI else None


def bounded(job: BatchJob, backend: BatchBackend) -> BatchJob:
    """The job with its shards cut to fit the limit: a shard over it could never be admitted."""
    limit = token_limit(job, backend)
    if limit is None or limit == job.shard_limits.max_enqueued_tokens:
        return job
    return dataclasses.replace(
        job, shard_limits=dataclasses.replace(job.shard_limits, max_enqueued_tokens=limit)
    )


def tokens_of(spec: ShardSpec) -> int:
    """The enqueued tokens a shard will hold: its requests' estimate (at least one a request)."""
    return max(spec.estimated_tokens, spec.requests)


def admit(ledger: BatchLedger, backend: BatchBackend, job: BatchJob, key: str, tokens: int) -> None:
    """Record submission ``key``'s ``tokens`` as enqueued, or raise :class:`AwaitingCapacity`.

    A shard alone over the limit is admitted when nothing else is enqueued (the limit may have
    been lowered since it was built), with a warning: the service decides.
    """
    limit = token_limit(job, backend)
    with ledger.warehouse.exclusive(
        f"llm_batch_capacity:{backend.account}:{job.model}", timeout=ADMISSION_LOCK_TIMEOUT_SECONDS
    ):
        if limit is not None:
            enqueued = _enqueued(ledger, backend, job, key, look=False)
            if enqueued and enqueued + tokens > limit:
                enqueued = _enqueued(ledger, backend, job, key, look=True)
            if enqueued and enqueued + tokens > limit:
                # Still being made: the requests it has claimed stay held while it waits.
                ledger.update(key, intent_at=utcnow())
                raise AwaitingCapacity(
                    f"{job.model} has {enqueued:,} tokens enqueued in running batches; this shard's "
                    f"{tokens:,} would pass the limit of {limit:,}. Waiting for batches to end"
                )
            if tokens > limit:
                log.warning(
                    "This shard's %s tokens are over %s's enqueued-token limit of %s on their own",
                    f"{tokens:,}",
                    job.model,
                    f"{limit:,}",
                )
        # Admitted now: the claims the submission makes next hold from this moment.
        ledger.update(
            key, account=backend.account, estimated_tokens=tokens, status="admitted", intent_at=utcnow()
        )


def _enqueued(ledger: BatchLedger, backend: BatchBackend, job: BatchJob, key: str, *, look: bool) -> int:
    """Tokens of the model enqueued in the account, by the ledger; with ``look``, the batches it
    holds as running are looked at first, since one may have ended before its run collected it."""
    now = utcnow()
    rows = queries.enqueued_batches(
        ledger.warehouse,
        backend.account,
        job.model,
        excluding=key,
        admitted_since=now - SUBMITTING_HOLD,
        running_since=now - RUNNING_HOLD,
    ).to_pylist()
    enqueued = 0
    for row in rows:
        if look and row["batch_id"] is not None and _has_ended(backend, row["batch_id"]):
            ledger.update(row["submission_key"], status="ended")  # its run collects it still
            continue
        enqueued += row["estimated_tokens"]
    return enqueued


def _has_ended(backend: BatchBackend, batch_id: str) -> bool:
    try:
        return backend.retrieve(batch_id, retry=LOOK_RETRY).is_terminal
    except BackendError as error:
        log.warning("Batch %s: could not look whether it still runs (%s); counting it", batch_id, error)
        return False
