"""Turning a finished batch into result rows, failure rows and a follow-up shard.

The batch's result lines are streamed from its backend line by line and joined to the shard's
index on ``custom_id``; their order means nothing. Every request of the shard ends in exactly one
bucket: a result, a failure with its reason, or a retry (expired, cancelled, rate limited,
server error or never run) that goes into the next round while rounds remain.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

import orjson
import pyarrow as pa

from llm_batch import answers
from llm_batch.backends import BatchBackend, BatchState, LineOutcome, ResultLine
from llm_batch.clock import utcnow
from llm_batch.digests import content_digest
from llm_batch.handoffs import ShardOutcome, ShardSpec
from llm_batch.job import BatchJob
from llm_batch.pricing import cost_of
from llm_batch.retryable import PermanentError, is_retryable_batch_failure, is_retryable_status
from llm_batch.sharding import custom_id_of, shard_index, shard_lines
from llm_batch.storage import ObjectStoragePath, write_bytes, write_table
from llm_batch.warehouse.tables import FAILURE_SCHEMA, results_schema

log = logging.getLogger(__name__)

# Requests the batch never ran: the next round sends them again, under these reasons.
NEVER_RAN = {LineOutcome.EXPIRED: "batch_expired", LineOutcome.CANCELLED: "batch_cancelled"}


class BatchFailedError(PermanentError, RuntimeError):
    """The batch as a whole failed (e.g. validation); nothing of it can be landed."""


@dataclass
class Collected:
    vendor: str  # the provider that ran the batch, recorded on each row beside its model
    results: list[dict[str, Any]] = field(default_factory=list)
    failures: list[dict[str, Any]] = field(default_factory=list)
    retry: dict[str, str] = field(default_factory=dict)  # custom_id -> reason
    input_tokens: int = 0
    output_tokens: int = 0


def describe_batch_errors(summary: dict[str, Any], limit: int = 20) -> str:
    errors = summary.get("errors") or []
    lines = []
    for error in errors[:limit]:
        where = f"line {error['line']}" if error.get("line") is not None else "batch"
        param = f" ({error['param']})" if error.get("param") else ""
        lines.append(f"  {where}: {error.get('code')}{param}: {error.get('message')}")
    more = f"\n  ... and {len(errors) - limit} more" if len(errors) > limit else ""
    return "\n".join(lines) + more


def collect_shard(
    backend: BatchBackend, job: BatchJob, spec: ShardSpec, summary: dict[str, Any], *, submission_key: str
) -> ShardOutcome:
    """Parse the batch's result lines; write results, failures and the next round's shard next to the input.

    ``summary`` is the wait step's XCom (``BatchState.to_summary()``, or a summary of an earlier version).
    """
    batch_id, state = summary["id"], BatchState.from_summary(summary)
    model = summary.get("model") or job.model  # the batch's model, as priced; a line may name its snapshot
    index = _index(spec)
    collected = Collected(vendor=backend.name.value)
    seen: set[str] = set()
    if summary["status"] == "failed":
        codes = {e.get("code") for e in summary.get("errors") or []}
        if not is_retryable_batch_failure(codes):
            raise BatchFailedError(
                f"Batch {batch_id} for shard {spec.shard} (round {spec.attempt}) failed; nothing of it is "
                "loaded:\n" + describe_batch_errors(summary)
            )
        # e.g. the enqueued-token limit: the content is fine, so the whole shard goes to the next round.
        collected.retry = {custom_id: "_".join(sorted(codes)) for custom_id in index}
        seen.update(index)
    for line in backend.results(state):
        if line.custom_id not in index or line.custom_id in seen:
            kind = "output" if line.outcome is LineOutcome.ANSWERED else "error"
            log.warning("Ignoring %s line for unknown or repeated custom_id %r", kind, line.custom_id)
            continue
        seen.add(line.custom_id)
        if line.outcome is LineOutcome.ANSWERED:
            _take_output(job, model, line, index, batch_id, spec, collected)
        else:
            _take_error(line, index, batch_id, spec, collected)
    for custom_id in index.keys() - seen:
        collected.retry[custom_id] = "not_executed"  # e.g. left unfinished by a cancel

    retry_spec = None
    if collected.retry:
        if spec.attempt < job.max_attempts:
            retry_spec = _write_retry_shard(spec, collected.retry, index)
        else:
            for custom_id, reason in collected.retry.items():
                detail = f"still failing after {spec.attempt} rounds"
                collected.failures.append(
                    _failure(index[custom_id], custom_id, "batch", reason, detail, batch_id, spec, collected)
                )

    base = ObjectStoragePath(spec.index_path).parent  # the run's directory
    stem = f"shard-{spec.shard:03d}-round-{spec.attempt}"
    results_path = base / f"{stem}.results.parquet"
    failures_path = base / f"{stem}.failures.parquet"
    write_table(
        results_path,
        results_table(job, collected.results, answered_at=_finished_at(state)),
    )
    write_table(failures_path, failures_table(collected.failures))
    cost = cost_of(model, collected.input_tokens, collected.output_tokens)
    reasons = Counter(f["reason"] for f in collected.failures) + Counter(collected.retry.values())
    log.info(
        "Batch %s (%s): %d results, %d failures, %d to retry; %s",
        batch_id,
        summary["status"],
        len(collected.results),
        len(collected.failures),
        len(collected.retry) if retry_spec else 0,
        dict(reasons) or "no failures",
    )
    return ShardOutcome(
        batch_id=batch_id,
        submission_key=submission_key,
        status=summary["status"],
        shard=spec.shard,
        attempt=spec.attempt,
        results_path=str(results_path),
        failures_path=str(failures_path),
        results=len(collected.results),
        failures=len(collected.failures),
        retries=len(collected.retry) if retry_spec else 0,
        failure_reasons=dict(Counter(f["reason"] for f in collected.failures)),
        retry_reasons=dict(Counter(collected.retry.values())) if retry_spec else {},
        input_tokens=collected.input_tokens,
        output_tokens=collected.output_tokens,
        cost_usd=cost.batch_usd,
        sync_cost_usd=cost.sync_usd,
        model=model,
        retry_spec=retry_spec,
    )


def _index(spec: ShardSpec) -> dict[str, dict[str, Any]]:
    """The shard's requests by custom_id."""
    return {row["custom_id"]: row for row in shard_index(spec).to_pylist()}


def _take_output(job, model: str, line: ResultLine, index, batch_id, spec, collected: Collected) -> None:
    custom_id = line.custom_id
    row = index[custom_id]
    body = line.body or {}
    strategy = job.endpoint_strategy
    input_tokens, output_tokens = strategy.usage(body)
    collected.input_tokens += input_tokens
    collected.output_tokens += output_tokens
    try:
        fields = strategy.answer_fields(job, body)
    except answers.AnswerError as exc:
        failure = _failure(row, custom_id, "answer", exc.reason, exc.detail, batch_id, spec, collected)
        collected.failures.append(failure)
        return
    collected.results.append(
        {
            **fields,
            "key": row["key"],
            "row_date": row["row_date"],
            "custom_id": custom_id,
            "request_fingerprint": row["request_fingerprint"],
            "vendor": collected.vendor,
            "model": body.get("model") or model,
            "prompt_version": job.prompt_version,
            "batch_id": batch_id,
            "input_tokens": input_tokens,
            "output_tokens": output_tokens,
        }
    )


def _take_error(line: ResultLine, index, batch_id, spec, collected: Collected) -> None:
    custom_id, status = line.custom_id, line.status_code
    if line.outcome in NEVER_RAN:
        collected.retry[custom_id] = NEVER_RAN[line.outcome]
    elif status is not None and is_retryable_status(status):
        collected.retry[custom_id] = "rate_limited" if status == 429 else f"server_error_{status}"
    else:
        reason = line.error_code or f"http_{status}"
        detail = line.error_message or "no message"
        collected.failures.append(
            _failure(index[custom_id], custom_id, "request", reason, detail, batch_id, spec, collected)
        )


def _failure(
    row, custom_id, stage, reason, detail, batch_id, spec: ShardSpec, collected: Collected
) -> dict[str, Any]:
    return {
        "key": row["key"],
        "row_date": row["row_date"],
        "custom_id": custom_id,
        "request_fingerprint": row["request_fingerprint"],
        "stage": stage,
        "reason": reason,
        "detail": str(detail)[:2000],
        "batch_id": batch_id,
        "vendor": collected.vendor,
        "attempt": spec.attempt,
    }


def _write_retry_shard(spec: ShardSpec, retry: dict[str, str], index: dict[str, dict[str, Any]]) -> ShardSpec:
    """The next round: the same request lines, byte for byte, of the requests to try again."""
    chunks = [line for line in shard_lines(spec.path) if custom_id_of(line) in retry]
    content = b"".join(chunks)
    path = (
        ObjectStoragePath(spec.index_path).parent / f"shard-{spec.shard:03d}-round-{spec.attempt + 1}.jsonl"
    )
    write_bytes(path, content)
    return ShardSpec(
        job=spec.job,
        interval_label=spec.interval_label,
        shard=spec.shard,
        attempt=spec.attempt + 1,
        path=str(path),
        index_path=spec.index_path,
        requests=len(chunks),
        bytes=len(content),
        estimated_tokens=sum(index[c]["estimated_tokens"] for c in retry if c in index),
        digest=content_digest(content),
        identity_salt=spec.identity_salt,
    )


def _finished_at(state: BatchState) -> dt.datetime:
    """When the batch ended, by the service's clock: collecting the same batch again gives the same rows."""
    ended = state.times.ended_at
    return dt.datetime.fromtimestamp(ended, dt.UTC).replace(tzinfo=None) if ended else utcnow()


def results_table(
    job: BatchJob, rows: list[dict[str, Any]], *, answered_at: dt.datetime | None = None
) -> pa.Table:
    schema = results_schema(job)
    now = answered_at or utcnow()
    # Answer fields typed as text may hold nested values (lists, objects): they land as JSON text.
    text_fields = [f.name for f in job.endpoint_strategy.answer_columns(job) if f.type == pa.string()]
    for row in rows:
        row["answered_at"] = now
        for name in text_fields:
            value = row.get(name)
            if value is not None and not isinstance(value, str):
                row[name] = orjson.dumps(value).decode()
    return pa.Table.from_pylist(rows, schema=schema)


def failures_table(rows: list[dict[str, Any]]) -> pa.Table:
    return pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA)
