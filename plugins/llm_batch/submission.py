"""Idempotent submission of one shard: a retry, a crash or a clear re-attaches, never pays twice.

The identity of a submission excludes the try number: job, interval, shard, attempt (the
follow-up round, not Airflow's try) and the digest of the exact bytes sent. The same identity
always maps to the same batch; different bytes are a different batch.

Order of effects, each recorded before the next: ledger intent, file upload, batch create,
ledger batch id. The create call carries the identity in its metadata and is never retried
blindly by the SDK, so a create that timed out but succeeded is found again, not duplicated.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import io
import logging
import time
from dataclasses import asdict, dataclass
from typing import Any

import openai
from openai import OpenAI

from llm_batch.job import BatchJob
from llm_batch.ledger import BatchLedger, LedgerEntry, utcnow
from llm_batch.storage import ObjectStoragePath

log = logging.getLogger(__name__)

METADATA_KEY = "llm_batch_key"
METADATA_GENERATION = "llm_batch_generation"
ORPHAN_SCAN_LIMIT = 500
CLOCK_SLACK = dt.timedelta(minutes=10)
CREATE_TRIES = 6
# Batch-level failures that say nothing about the content: submitting the same bytes later may work.
RETRYABLE_BATCH_ERRORS = frozenset({"token_limit_exceeded", "rate_limit_exceeded", "server_error"})


@dataclass(frozen=True)
class ShardSpec:
    """One shard of one follow-up round, as XCom carries it between tasks (no secrets, no data)."""

    job: str
    interval_label: str
    shard: int
    attempt: int
    path: str  # the JSONL file on the run's ObjectStoragePath
    index_path: str  # custom_id -> key, row date, request fingerprint of the shard's first round
    requests: int
    bytes: int
    estimated_tokens: int
    digest: str
    identity_salt: str = ""  # set by forced runs, so they pay for fresh answers instead of re-attaching

    @property
    def submission_key(self) -> str:
        parts = [
            self.job,
            self.interval_label,
            str(self.shard),
            str(self.attempt),
            self.digest,
            self.identity_salt,
        ]
        identity = "\x00".join(parts)
        return hashlib.sha256(identity.encode()).hexdigest()[:40]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ShardSpec:
        return cls(**{k: data[k] for k in cls.__dataclass_fields__ if k in data})


def submit_shard(
    client: OpenAI, ledger: BatchLedger, job: BatchJob, spec: ShardSpec, *, run_id: str | None = None
) -> dict[str, Any]:
    """Return ``{"batch_id", "submission_key", "reattached", "spec"}`` for the shard's batch."""
    key = spec.submission_key
    entry = ledger.get(key)
    if entry is None:
        ledger.record_intent(_intent(job, spec, key, run_id, generation=1))
        entry = ledger.get(key)
    elif entry.batch_id:
        batch = client.batches.retrieve(entry.batch_id)
        if not _failed_for_a_retryable_reason(batch):
            log.info(
                "Re-attaching shard %s round %s to batch %s (%s)",
                spec.shard,
                spec.attempt,
                batch.id,
                batch.status,
            )
            return _result(batch.id, key, spec, reattached=True)
        log.warning(
            "Batch %s failed for a reason worth retrying (%s); submitting again", batch.id, _codes(batch)
        )
        ledger.update(
            key, generation=entry.generation + 1, batch_id=None, status="resubmitting", error=_codes(batch)
        )
        entry = ledger.get(key)

    orphan = find_batch(client, key, entry.generation, not_before=entry.intent_at - CLOCK_SLACK)
    if orphan is not None:
        log.warning("Found batch %s created before a crash; re-attaching instead of paying twice", orphan.id)
        ledger.update(key, batch_id=orphan.id, status=orphan.status, submitted_at=utcnow())
        return _result(orphan.id, key, spec, reattached=True)

    file_id = entry.input_file_id or _upload(client, spec, key)
    ledger.update(key, input_file_id=file_id, status="uploaded")
    batch = _create(client, job, spec, key, entry.generation, file_id)
    ledger.update(key, batch_id=batch.id, status=batch.status, submitted_at=utcnow())
    log.info(
        "Created batch %s for shard %s round %s: %s requests",
        batch.id,
        spec.shard,
        spec.attempt,
        spec.requests,
    )
    return _result(batch.id, key, spec, reattached=False)


def find_batch(client: OpenAI, key: str, generation: int, *, not_before: dt.datetime) -> Any | None:
    """The newest batch carrying this identity in its metadata (the list has no server-side filter)."""
    cutoff = not_before.replace(tzinfo=dt.UTC).timestamp()
    for scanned, batch in enumerate(client.batches.list(limit=100)):
        if scanned >= ORPHAN_SCAN_LIMIT or batch.created_at < cutoff:
            return None
        metadata = batch.metadata or {}
        if metadata.get(METADATA_KEY) == key and metadata.get(METADATA_GENERATION) == str(generation):
            return batch
    return None


def _upload(client: OpenAI, spec: ShardSpec, key: str) -> str:
    filename = f"{spec.job}-{key[:16]}.jsonl"
    with ObjectStoragePath(spec.path).open("rb") as handle:
        content = handle.read()
    return client.files.create(file=(filename, io.BytesIO(content)), purpose="batch").id


def _create(client: OpenAI, job: BatchJob, spec: ShardSpec, key: str, generation: int, file_id: str) -> Any:
    """Create the batch, retrying transient errors ourselves: after a lost answer, look before retrying."""
    once = client.with_options(max_retries=0)
    metadata = {
        METADATA_KEY: key,
        METADATA_GENERATION: str(generation),
        "job": job.name,
        "interval": spec.interval_label,
        "shard": str(spec.shard),
        "attempt": str(spec.attempt),
    }
    started = utcnow()
    for attempt in range(1, CREATE_TRIES + 1):
        try:
            return once.batches.create(
                input_file_id=file_id, endpoint=job.endpoint, completion_window="24h", metadata=metadata
            )
        except (openai.APIConnectionError, openai.InternalServerError) as exc:
            # The request may have been applied even though no answer arrived.
            found = find_batch(client, key, generation, not_before=started - CLOCK_SLACK)
            if found is not None:
                return found
            if attempt == CREATE_TRIES:
                raise
            delay = min(60.0, 2.0**attempt)
            log.warning("Creating the batch failed (%s); retrying in %.0f s", type(exc).__name__, delay)
        except openai.RateLimitError as exc:  # rejected before anything was created
            if attempt == CREATE_TRIES:
                raise
            delay = _retry_after(exc) or min(60.0, 2.0**attempt)
            log.warning("Rate limited creating the batch; retrying in %.1f s", delay)
        time.sleep(delay)
    raise AssertionError("unreachable")


def _retry_after(exc: openai.APIStatusError) -> float | None:
    headers = exc.response.headers
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return None


def _failed_for_a_retryable_reason(batch: Any) -> bool:
    if batch.status != "failed" or not batch.errors or not batch.errors.data:
        return False
    return all(error.code in RETRYABLE_BATCH_ERRORS for error in batch.errors.data)


def _codes(batch: Any) -> str:
    return ", ".join(sorted({e.code or "unknown" for e in (batch.errors.data if batch.errors else [])}))


def _intent(job: BatchJob, spec: ShardSpec, key: str, run_id: str | None, generation: int) -> LedgerEntry:
    return LedgerEntry(
        submission_key=key,
        job=job.name,
        interval_label=spec.interval_label,
        run_id=run_id,
        shard=spec.shard,
        attempt=spec.attempt,
        generation=generation,
        content_digest=spec.digest,
        job_fingerprint=job.fingerprint(),
        model=job.model,
        endpoint=job.endpoint,
        requests=spec.requests,
        input_file_id=None,
        batch_id=None,
        status="intent",
        completed=None,
        failed=None,
        input_tokens=None,
        output_tokens=None,
        cost_usd=None,
        sync_cost_usd=None,
        error=None,
        intent_at=utcnow(),
        submitted_at=None,
        finished_at=None,
    )


def _result(batch_id: str, key: str, spec: ShardSpec, *, reattached: bool) -> dict[str, Any]:
    return {"batch_id": batch_id, "submission_key": key, "reattached": reattached, "spec": spec.to_dict()}
