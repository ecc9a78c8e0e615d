"""Idempotent submission of one shard: a retry, a crash or a clear re-attaches, never pays twice.

The identity of a submission excludes the try number: the account (connection id and base URL),
job, interval, shard, attempt (the follow-up round, not Airflow's try) and the digest of the
exact bytes sent. The same identity always maps to the same batch; different bytes, or another
account, are a different batch. Ledger rows written before the account was part of the identity
are still found, so an upgrade never pays twice.

Order of effects, each recorded before the next: claim of the submission (one submitter of a key
at a time; the others wait and re-attach), ledger intent, admission under the model's
enqueued-token limit (``llm_batch.capacity``; a shard that does not fit waits), claim of its
requests (rows in flight in another run are left to it), input upload, batch create, ledger
batch id. The backend's create
carries the identity with the batch, so a create that timed out but succeeded is found again,
not duplicated.
"""

from __future__ import annotations

import logging

from llm_batch import capacity, inflight
from llm_batch.backends import BatchBackend, BatchInput, BatchNotFound, BatchState, RetryPolicy, SubmissionTag
from llm_batch.clock import utcnow
from llm_batch.handoffs import ShardSpec, Submission
from llm_batch.job import BatchJob
from llm_batch.ledger import BatchLedger, LedgerEntry
from llm_batch.retryable import is_retryable_batch_failure
from llm_batch.storage import ObjectStoragePath

log = logging.getLogger(__name__)

LOOKUP_RETRY = RetryPolicy(tries=3, base=1.0, cap=30.0)
# How long a submitter waits for another one making the same submission (an upload can be large).
CLAIM_TIMEOUT_SECONDS = 900.0


def submit_shard(
    backend: BatchBackend,
    ledger: BatchLedger,
    job: BatchJob,
    spec: ShardSpec,
    *,
    run_id: str | None = None,
    claim_timeout: float = CLAIM_TIMEOUT_SECONDS,
) -> Submission:
    """The shard's batch: created now, or the one an earlier try (or an earlier version) created.

    The answer's ``spec`` is the shard as sent: without the requests other runs had in flight
    or answered meanwhile. Its ``batch_id`` is ``None`` when that left nothing to send.
    """
    key = spec.submission_key_for(backend.account)
    with ledger.claim(key, timeout=claim_timeout):
        return _submit_claimed(backend, ledger, job, spec, key, run_id)


def resubmit(
    backend: BatchBackend,
    ledger: BatchLedger,
    job: BatchJob,
    submission: Submission,
    *,
    run_id: str | None = None,
    claim_timeout: float = CLAIM_TIMEOUT_SECONDS,
) -> Submission:
    """Send a submission whose batch the service refused for the token limit again, under its key.

    Its input is already uploaded and its requests claimed: only a new batch is made (the next
    generation), once the model has room.
    """
    with ledger.claim(submission.submission_key, timeout=claim_timeout):
        return _submit_claimed(backend, ledger, job, submission.spec, submission.submission_key, run_id)


def submission_of_batch(
    ledger: BatchLedger, spec: ShardSpec, batch_id: str, run_id: str | None
) -> Submission:
    """The submission that made ``batch_id``, as the ledger has it; ``spec`` is its shard as built."""
    entry = ledger.of_batch(batch_id)
    if entry is None:
        raise BatchNotFound(f"batch {batch_id} is in no ledger row: it was not made by this pipeline")
    sent = inflight.narrowed(spec, entry.content_digest, entry.requests)
    return _result(batch_id, entry.submission_key, sent, reattached=True, reused=_reused(entry, run_id))


def _submit_claimed(
    backend: BatchBackend, ledger: BatchLedger, job: BatchJob, spec: ShardSpec, key: str, run_id: str | None
) -> Submission:
    entry = ledger.get(key)
    if entry is None:
        legacy = _legacy_batch(backend, ledger, spec)
        if legacy is not None:
            made_by = ledger.get(spec.legacy_submission_key)
            return _result(
                legacy.id, spec.legacy_submission_key, spec, reattached=True, reused=_reused(made_by, run_id)
            )
        ledger.record_intent(_intent(job, spec, key, run_id, generation=1, account=backend.account))
        entry = ledger.get(key)
    elif entry.batch_id:
        state = backend.retrieve(entry.batch_id, retry=LOOKUP_RETRY)
        if not _failed_for_a_retryable_reason(state):
            log.info(
                "Re-attaching shard %s round %s to batch %s (%s)",
                spec.shard,
                spec.attempt,
                state.id,
                state.status,
            )
            return _result(
                state.id,
                key,
                inflight.narrowed(spec, entry.content_digest, entry.requests),
                reattached=True,
                reused=_reused(entry, run_id),
            )
        log.warning(
            "Batch %s failed for a reason worth retrying (%s); submitting again", state.id, _codes(state)
        )
        ledger.update(
            key,
            generation=entry.generation + 1,
            batch_id=None,
            status="resubmitting",
            error=_codes(state),
            intent_at=utcnow(),
            finished_at=None,
            run_id=run_id,  # the run that submits again pays for the new batch
        )
        entry = ledger.get(key)

    # What a crashed try handed over, for providers that recognise a batch by its requests.
    sent = (
        _batch_input(job, inflight.narrowed(spec, entry.content_digest, entry.requests), key)
        if entry.input_file_id
        else None
    )
    orphan = backend.find(
        key, entry.generation, not_before=entry.intent_at, sent=sent, recorded=ledger.holds_batch
    )
    if orphan is not None:
        log.warning("Found batch %s created before a crash; re-attaching instead of paying twice", orphan.id)
        ledger.update(key, batch_id=orphan.id, status=orphan.status.value, submitted_at=utcnow())
        return _result(
            orphan.id,
            key,
            inflight.narrowed(spec, entry.content_digest, entry.requests),
            reattached=True,
            reused=_reused(entry, run_id),
        )

    if entry.status in ("intent", "resubmitting"):
        # Not admitted yet: raises AwaitingCapacity if it does not fit under the token limit.
        capacity.admit(ledger, backend, job, key, capacity.tokens_of(spec))
        entry = ledger.get(key)
    if entry.input_file_id:  # uploaded before a crash: its requests were claimed then
        spec = inflight.narrowed(spec, entry.content_digest, entry.requests)
    else:
        spec = inflight.claim_shard(ledger.warehouse, job, spec, key, run_id)
        ledger.update(key, content_digest=spec.digest, requests=spec.requests)
        if not spec.requests:
            log.info(
                "Shard %s round %s: every request is answered or in flight in another run; nothing to send",
                spec.shard,
                spec.attempt,
            )
            ledger.update(key, status="left_to_other_runs", finished_at=utcnow())
            return _result(None, key, spec, reattached=False)
    batch_input = _batch_input(job, spec, key)
    uploaded = entry.input_file_id or backend.upload(batch_input)
    ledger.update(key, input_file_id=uploaded, status="uploaded")
    tag = SubmissionTag(key, entry.generation, _labels(job, spec))
    submitted = backend.create_or_find(batch_input, tag, uploaded=uploaded)
    state = submitted.state
    if submitted.recovered:
        log.warning("Creating batch %s seemed to fail but had worked; using it", state.id)
    ledger.update(key, batch_id=state.id, status=state.status.value, submitted_at=utcnow())
    log.info(
        "Created batch %s for shard %s round %s: %s requests",
        state.id,
        spec.shard,
        spec.attempt,
        spec.requests,
    )
    return _result(state.id, key, spec, reattached=False)


def _legacy_batch(backend: BatchBackend, ledger: BatchLedger, spec: ShardSpec) -> BatchState | None:
    """The batch an earlier version submitted for this shard under the key without the account.

    Re-attached only if this account knows it (a batch of another account is not found here)
    and it is not a failure worth submitting again; otherwise the shard is submitted afresh
    under the new identity.
    """
    legacy_key = spec.legacy_submission_key
    entry = ledger.get(legacy_key)
    if entry is None:
        return None
    if entry.batch_id:
        try:
            state = backend.retrieve(entry.batch_id, retry=LOOKUP_RETRY)
        except BatchNotFound:
            log.warning(
                "Batch %s of an earlier version is not in %s; submitting afresh",
                entry.batch_id,
                backend.account,
            )
            return None
    else:
        state = backend.find(legacy_key, entry.generation, not_before=entry.intent_at)
        if state is None:
            return None
        ledger.update(legacy_key, batch_id=state.id, status=state.status.value, submitted_at=utcnow())
    if _failed_for_a_retryable_reason(state):
        return None
    log.info(
        "Re-attaching shard %s round %s to batch %s of an earlier version", spec.shard, spec.attempt, state.id
    )
    return state


def _batch_input(job: BatchJob, spec: ShardSpec, key: str) -> BatchInput:
    def read() -> bytes:
        with ObjectStoragePath(spec.path).open("rb") as handle:
            return handle.read()

    return BatchInput(
        name=f"{spec.job}-{key[:16]}.jsonl", endpoint=job.endpoint, requests=spec.requests, read=read
    )


def _labels(job: BatchJob, spec: ShardSpec) -> dict[str, str]:
    return {
        "job": job.name,
        "interval": spec.interval_label,
        "shard": str(spec.shard),
        "attempt": str(spec.attempt),
    }


def _failed_for_a_retryable_reason(state: BatchState) -> bool:
    return state.status == "failed" and is_retryable_batch_failure(state.problem_codes)


def _codes(state: BatchState) -> str:
    return ", ".join(sorted(state.problem_codes))


def _intent(
    job: BatchJob, spec: ShardSpec, key: str, run_id: str | None, generation: int, account: str
) -> LedgerEntry:
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
        account=account,
    )


def _reused(made_by: LedgerEntry | None, run_id: str | None) -> bool:
    """Whether another run made the batch (its intent names that run), so that run carries its cost."""
    return made_by is not None and None not in (made_by.run_id, run_id) and made_by.run_id != run_id


def _result(
    batch_id: str | None, key: str, spec: ShardSpec, *, reattached: bool, reused: bool = False
) -> Submission:
    return Submission(batch_id=batch_id, submission_key=key, reattached=reattached, spec=spec, reused=reused)
