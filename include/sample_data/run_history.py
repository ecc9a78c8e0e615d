"""A history of runs written through the library's own write paths, for the Batch runs page's
tests, its benchmark and its screenshot: ledger rows (``BatchLedger``), results and failures
(``load_run``) and run reports (the runs table's ``record_run``).

Nothing is made up at the SQL level, so the page reads exactly what a real run leaves behind.
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from llm_batch.backends.providers import Provider
from llm_batch.handoffs import RunReport, ShardOutcome
from llm_batch.ledger import BatchLedger, LedgerEntry
from llm_batch.load import load_run
from llm_batch.pricing import cost_of, total
from llm_batch.run_window import RunWindow
from llm_batch.storage import ObjectStoragePath, write_table
from llm_batch.warehouse import queries
from llm_batch.warehouse.tables import FAILURE_SCHEMA, results_schema

if TYPE_CHECKING:
    from llm_batch.job import BatchJob
    from llm_batch.warehouse import Warehouse

INPUT_TOKENS_PER_ROW = 140
OUTPUT_TOKENS_PER_ROW = 32
LABELS = ("positive", "neutral", "negative")


@dataclass(frozen=True)
class PastRun:
    """One run to write: its day, how many rows each shard answered, and what failed and why."""

    day: dt.date
    run_id: str
    reported_at: dt.datetime
    shard_results: tuple[int, ...] = (100,)
    failure_reasons: Mapping[str, int] = field(default_factory=dict)  # failed after sending
    rejected: Mapping[str, int] = field(default_factory=dict)  # refused before sending
    rounds: int = 1


@dataclass(frozen=True)
class WrittenRun:
    report: RunReport
    batch_ids: list[str]
    keys: list[str]


def write_run(warehouse: Warehouse, files: Path, job: BatchJob, run: PastRun) -> WrittenRun:
    """Write one finished run: ledger rows, results, failures and its report, as the pipeline does."""
    window = RunWindow(run.day, run.day + dt.timedelta(days=1))
    ledger = BatchLedger(warehouse)
    run_dir = files / job.name / window.label / _digest(run.run_id)
    outcomes: list[ShardOutcome] = []
    keys: list[str] = []
    reasons = list(_spread(run.failure_reasons, len(run.shard_results)))
    for shard, (answered, failed) in enumerate(zip(run.shard_results, reasons, strict=True)):
        batch_id = "batch_" + _digest(f"{job.name}/{run.run_id}/{shard}")
        shard_keys = [f"{run.day:%Y%m%d}-{shard:02d}-{i:05d}" for i in range(answered + sum(failed.values()))]
        keys.extend(shard_keys)
        results = _results(job, run, batch_id, shard_keys[:answered])
        failures = _failures(run.day, batch_id, shard_keys[answered:], failed, stage="request")
        results_path, failures_path = (
            run_dir / f"results-{shard}.parquet",
            run_dir / f"failures-{shard}.parquet",
        )
        write_table(ObjectStoragePath(results_path.as_uri()), results)
        write_table(ObjectStoragePath(failures_path.as_uri()), failures)
        cost = cost_of(job.model, _sum(results, "input_tokens"), _sum(results, "output_tokens"))
        outcome = ShardOutcome(
            batch_id=batch_id,
            submission_key=_digest(batch_id),
            status="completed",
            shard=shard,
            attempt=run.rounds,
            results_path=results_path.as_uri(),
            failures_path=failures_path.as_uri(),
            results=results.num_rows,
            failures=failures.num_rows,
            retries=0,
            failure_reasons=dict(failed),
            retry_reasons={},
            input_tokens=_sum(results, "input_tokens"),
            output_tokens=_sum(results, "output_tokens"),
            cost_usd=cost.batch_usd,
            sync_cost_usd=cost.sync_usd,
            model=job.model,
        )
        _ledger_row(ledger, job, run, window, outcome, requests=len(shard_keys))
        outcomes.append(outcome)
    rejected_keys = [f"{run.day:%Y%m%d}-rejected-{i:05d}" for i in range(sum(run.rejected.values()))]
    rejections = _failures(run.day, None, rejected_keys, run.rejected, stage="build")
    rejections_path = run_dir / "rejections.parquet"
    write_table(ObjectStoragePath(rejections_path.as_uri()), rejections)
    load_run(job, window, warehouse, outcomes, rejections_path.as_uri(), logical_date=run.day)
    report = _report(job, run, window, outcomes, rows_in=len(keys) + len(rejected_keys))
    queries.record_run(warehouse, _report_row(report, run.reported_at))
    return WrittenRun(report=report, batch_ids=[o.batch_id for o in outcomes], keys=keys)


def write_in_flight(
    warehouse: Warehouse,
    job: BatchJob,
    *,
    run_id: str,
    day: dt.date,
    shard: int,
    requests: int,
    submitted_at: dt.datetime,
    batch_id: str | None = None,
) -> str:
    """A ledger row of a batch created and not yet collected; returns its batch id."""
    window = RunWindow(day, day + dt.timedelta(days=1))
    batch_id = batch_id or "batch_" + _digest(f"{job.name}/{run_id}/{shard}/in-flight")
    entry = _entry(job, run_id, window, shard, 1, requests, intent_at=submitted_at - dt.timedelta(seconds=5))
    ledger = BatchLedger(warehouse)
    ledger.record_intent(entry)
    ledger.update(entry.submission_key, batch_id=batch_id, status="in_progress", submitted_at=submitted_at)
    return batch_id


def _ledger_row(
    ledger: BatchLedger, job: BatchJob, run: PastRun, window: RunWindow, outcome: ShardOutcome, requests: int
) -> None:
    submitted_at = run.reported_at - dt.timedelta(minutes=50)
    entry = _entry(job, run.run_id, window, outcome.shard, outcome.attempt, requests, intent_at=submitted_at)
    ledger.record_intent(entry)
    ledger.update(
        entry.submission_key,
        batch_id=outcome.batch_id,
        status=outcome.status,
        submitted_at=submitted_at,
        completed=outcome.results,
        failed=outcome.failures,
        input_tokens=outcome.input_tokens,
        output_tokens=outcome.output_tokens,
        cost_usd=outcome.cost_usd,
        sync_cost_usd=outcome.sync_cost_usd,
        finished_at=run.reported_at - dt.timedelta(minutes=5),
    )


def _entry(
    job: BatchJob,
    run_id: str,
    window: RunWindow,
    shard: int,
    attempt: int,
    requests: int,
    *,
    intent_at: dt.datetime,
) -> LedgerEntry:
    key = _digest(f"{job.name}/{run_id}/{window.label}/{shard}/{attempt}")
    return LedgerEntry(
        submission_key=key,
        job=job.name,
        interval_label=window.label,
        run_id=run_id,
        shard=shard,
        attempt=attempt,
        generation=1,
        content_digest=key,
        job_fingerprint=job.fingerprint(),
        model=job.model,
        endpoint=job.endpoint,
        requests=requests,
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
        intent_at=intent_at,
        submitted_at=None,
        finished_at=None,
    )


def _results(job: BatchJob, run: PastRun, batch_id: str, keys: list[str]) -> pa.Table:
    schema = results_schema(job)
    provenance = {
        "key": keys,
        "row_date": [run.day] * len(keys),
        "custom_id": [f"{job.name}-{k}" for k in keys],
        "request_fingerprint": [_digest(k) for k in keys],
        "vendor": [Provider.OPENAI.value] * len(keys),
        "model": [job.model] * len(keys),
        "prompt_version": [job.prompt_version] * len(keys),
        "batch_id": [batch_id] * len(keys),
        "input_tokens": [INPUT_TOKENS_PER_ROW] * len(keys),
        "output_tokens": [OUTPUT_TOKENS_PER_ROW] * len(keys),
        "answered_at": [run.reported_at] * len(keys),
    }
    columns = {f.name: provenance.get(f.name) or _answers(f, keys) for f in schema}
    return pa.table(columns, schema=schema)


def _answers(column: pa.Field, keys: list[str]) -> list[Any]:
    """Plausible answer values of a column's type: labels, confidences, reasons, vectors."""
    if column.name == "label":
        return [LABELS[int(_digest(k), 16) % 3] for k in keys]
    if pa.types.is_floating(column.type):
        return [round(0.5 + (int(_digest(k), 16) % 50) / 100, 2) for k in keys]
    if pa.types.is_integer(column.type):
        return [int(_digest(k), 16) % 100 for k in keys]
    if pa.types.is_boolean(column.type):
        return [int(_digest(k), 16) % 2 == 0 for k in keys]
    if pa.types.is_list(column.type) or pa.types.is_fixed_size_list(column.type):
        return [[0.0] * 8 for _ in keys]
    return [f"sample {column.name} for review {k}" for k in keys]


def _failures(
    day: dt.date, batch_id: str | None, keys: list[str], reasons: Mapping[str, int], stage: str
) -> pa.Table:
    rows, remaining = [], iter(keys)
    for reason, count in reasons.items():
        for _ in range(count):
            key = next(remaining)
            rows.append(
                {
                    "key": key,
                    "row_date": day,
                    "custom_id": None if batch_id is None else f"c-{key}",
                    "request_fingerprint": _digest(key),
                    "stage": stage,
                    "reason": reason,
                    "detail": f"{reason} for row {key}",
                    "batch_id": batch_id,
                    "vendor": None if batch_id is None else Provider.OPENAI.value,
                    "attempt": 1,
                }
            )
    return pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA)


def _report(
    job: BatchJob, run: PastRun, window: RunWindow, outcomes: list[ShardOutcome], rows_in: int
) -> RunReport:
    failures = sum(o.failures for o in outcomes)
    requests = sum(o.results + o.failures for o in outcomes)
    return RunReport(
        job=job.name,
        window=window.label,
        run_id=run.run_id,
        dry_run=False,
        rows_in=rows_in,
        already_settled=0,
        duplicates_collapsed=0,
        rejected=sum(run.rejected.values()),
        requests=requests,
        results=sum(o.results for o in outcomes),
        failures=failures,
        failure_reasons={**{k: v for k, v in run.failure_reasons.items() if v}, **dict(run.rejected)},
        batches=len(outcomes),
        rounds=run.rounds,
        input_tokens=sum(o.input_tokens for o in outcomes),
        output_tokens=sum(o.output_tokens for o in outcomes),
        cost_usd=total([o.cost_usd for o in outcomes]),
        sync_cost_usd=total([o.sync_cost_usd for o in outcomes]),
        estimated_cost_usd=0.0,
        estimated_sync_cost_usd=0.0,
        failure_share=round(failures / requests, 4) if requests else 0.0,
        model=job.model,
    )


def _report_row(report: RunReport, reported_at: dt.datetime) -> dict[str, Any]:
    import json

    figures = {k: v for k, v in report.to_xcom().items() if k != "schema_version"}
    return {**figures, "failure_reasons": json.dumps(report.failure_reasons), "reported_at": reported_at}


def _spread(reasons: Mapping[str, int], shards: int) -> list[dict[str, int]]:
    """The failures of a run shared out among its shards."""
    parts: list[dict[str, int]] = [{} for _ in range(shards)]
    for reason, count in reasons.items():
        for shard in range(shards):
            share = count // shards + (1 if shard < count % shards else 0)
            if share:
                parts[shard][reason] = share
    return parts


def _sum(table: pa.Table, column: str) -> int:
    return int(pc.sum(table.column(column)).as_py() or 0)


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:16]
