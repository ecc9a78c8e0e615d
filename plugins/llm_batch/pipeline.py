"""The steps of one run, as plain functions the DAG's tasks call: extract, build, load, report.

Each step reads and writes files under the run's directory and returns a small typed record
(``llm_batch.handoffs``), so tasks on different workers hand work to each other without moving
data through the metadata database.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import orjson
import pyarrow as pa

from llm_batch import inflight
from llm_batch.batch_rules import LinesBreakBatchRules, check_lines
from llm_batch.clock import utcnow
from llm_batch.digests import content_digest
from llm_batch.handoffs import BuildSummary, BuiltRun, LoadCounts, RunReport, ShardOutcome, ShardSpec
from llm_batch.job import BatchJob
from llm_batch.pricing import cost_of
from llm_batch.request_lines import Rejection, RequestLine, dedupe, iter_requests
from llm_batch.retryable import PermanentError
from llm_batch.sharding import iter_shards
from llm_batch.storage import ObjectStoragePath, read_table, run_dir, storage_root, write_bytes, write_table
from llm_batch.warehouse import queries
from llm_batch.warehouse.tables import FAILURE_SCHEMA, FAILURE_TABLE_KEY, FAILURE_TABLE_SCHEMA, results_schema

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)

LOAD_LOCK_TIMEOUT_SECONDS = 600.0  # overlapping runs land one at a time per target table


class FailureThresholdExceeded(PermanentError, RuntimeError):
    """More requests failed than the job allows; a retry would count the same failures."""


class InvalidRunWindow(PermanentError, ValueError):
    """The run's dates cannot make a window; the message says what to give instead."""


@dataclass(frozen=True)
class RunWindow:
    """The source rows a run covers: ``start`` inclusive, ``end`` exclusive, whole days."""

    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        if self.end - self.start == dt.timedelta(days=1):
            return self.start.isoformat()
        return f"{self.start.isoformat()}--{self.end.isoformat()}"

    @classmethod
    def for_run(
        cls,
        interval_start: dt.datetime | None,
        interval_end: dt.datetime | None,
        params: dict[str, Any] | None = None,
    ) -> RunWindow:
        """The manual run's ``start_date``/``end_date`` (inclusive) when given, else the data interval.

        A run without a logical date (Airflow 3 allows it) has no data interval: it must give the
        range. A range given by half, or backwards, is refused rather than guessed.
        """
        params = params or {}
        first, last = _as_date(params.get("start_date")), _as_date(params.get("end_date"))
        if first and last:
            if last < first:
                raise InvalidRunWindow(
                    f"end_date {last.isoformat()} is before start_date {first.isoformat()}: "
                    "give the range first date first"
                )
            return cls(first, last + dt.timedelta(days=1))
        if first or last:
            given = f"start_date={first.isoformat()}" if first else f"end_date={last.isoformat()}"
            raise InvalidRunWindow(
                f"only {given} was given: give both start_date and end_date (inclusive), "
                "or neither to run the data interval"
            )
        if interval_start is None or interval_end is None:
            raise InvalidRunWindow(
                "this run has no logical date, so it has no data interval: give start_date and "
                "end_date (inclusive) in the run's parameters, or trigger it with a logical date"
            )
        return cls(
            interval_start.date(), max(interval_end.date(), interval_start.date() + dt.timedelta(days=1))
        )


def _as_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidRunWindow(f"{value!r} is not a date: give dates as YYYY-MM-DD") from None


# Extract ----------------------------------------------------------------------------------------


def extract_rows(
    job: BatchJob, window: RunWindow, source: Warehouse, *, row_limit: int | None = None
) -> pa.Table:
    params = {"start": window.start, "end": window.end}
    # With a limit, deterministic: the same rows every time for the same limit.
    rows = queries.read_source(source, job.source_sql, params, order_by=job.key_column, limit=row_limit)
    log.info("Extracted %d rows of %s for %s", rows.num_rows, job.name, window.label)
    return rows


def settled_requests(
    job: BatchJob,
    window: RunWindow,
    warehouse: Warehouse,
    *,
    rows: pa.Table | None = None,
    run_id: str | None = None,
) -> set[tuple[str, str]]:
    """(key, request fingerprint) not to send: answered, or failed for good, or in flight elsewhere.

    Answers count on whatever date they were stored, not only in ``window``: a request is paid
    once, whichever window asks. In flight: sent by another run than ``run_id`` and not landed
    yet (``llm_batch.inflight``); that run lands it. ``rows`` (the extracted rows) limits the
    lookup to their keys; without it every stored answer is read.
    """
    keys = None if rows is None else _keys(job, rows)
    settled = queries.settled_requests(warehouse, job, keys)
    return settled | inflight.taken_requests(warehouse, job.name, keys=keys, run_id=run_id)


def drop_superseded(job: BatchJob, rows: pa.Table, warehouse: Warehouse) -> pa.Table:
    """The rows whose key has no newer version (by row date) stored already.

    The latest version of a key wins: a run for an older window neither pays for an older
    version of a key answered on a later date nor lands it over the newer answer.
    """
    stored = queries.stored_row_dates(warehouse, job, _keys(job, rows))
    if not stored:
        return rows
    keys, days = rows.column(job.key_column).to_pylist(), rows.column(job.date_column).to_pylist()
    newer = [
        key is not None and str(key) in stored and day < stored[str(key)]
        for key, day in zip(keys, days, strict=True)
    ]
    if not any(newer):
        return rows
    log.info("Skipping %d rows of %s: their key has a newer version stored", sum(newer), job.name)
    return rows.filter(pa.array([not n for n in newer], pa.bool_()))


def _keys(job: BatchJob, rows: pa.Table) -> list[str]:
    return sorted({str(key) for key in rows.column(job.key_column).to_pylist() if key is not None})


# Build ------------------------------------------------------------------------------------------


def build_run(
    job: BatchJob,
    window: RunWindow,
    rows: pa.Table,
    settled: set[tuple[str, str]],
    *,
    dry_run: bool = False,
    identity_salt: str = "",
) -> BuiltRun:
    """Build, check and shard the requests; write shards, index and rejections; describe them.

    Shards are built, checked and written one at a time, and only their small index rows are
    kept, so memory follows the shard size, not the run. A shard file is named by the digest of
    its bytes; the run's directory by the digests of its shards. ``identity_salt`` (a forced
    run's id) makes the submissions new instead of re-attaching to earlier ones.
    """
    deduplicated, collapsed = dedupe(rows, job.key_column, job.dedupe_order_column)
    rejections: list[Rejection] = []

    def request_lines() -> Iterator[RequestLine]:
        for item in iter_requests(job, deduplicated, settled):
            if isinstance(item, Rejection):
                rejections.append(item)
            else:
                yield item

    root = storage_root(job.storage_url)
    shards_dir = root / job.name / window.label / "shards"
    specs: list[dict[str, Any]] = []
    index_parts: list[pa.Table] = []
    estimated_tokens = 0
    for shard in iter_shards(request_lines(), job.shard_limits):
        _check_lines_like_the_server(job, shard.lines)
        content = shard.content
        digest = content_digest(content)
        path = shards_dir / f"{digest[:40]}.jsonl"
        if not path.exists():
            write_bytes(path, content)
        index_parts.append(_index_table(shard.lines, shard.index))
        estimated_tokens += shard.estimated_tokens
        specs.append(
            {
                "job": job.name,
                "interval_label": window.label,
                "shard": shard.index,
                "attempt": 1,
                "path": str(path),
                "requests": len(shard.lines),
                "bytes": len(content),
                "estimated_tokens": shard.estimated_tokens,
                "digest": digest,
                "identity_salt": identity_salt,
            }
        )
        del shard, content  # let this shard go before the next one fills
    run_digest = content_digest("\n".join([job.fingerprint(), *(s["digest"] for s in specs)]).encode())
    directory = run_dir(root, job.name, window.label, run_digest)
    index_path = directory / "index.parquet"
    write_table(index_path, pa.concat_tables(index_parts) if index_parts else _index_table([], 0))
    rejections_path = directory / "rejections.parquet"
    write_table(rejections_path, rejections_table(job, rejections))
    shards = [ShardSpec(index_path=str(index_path), **spec) for spec in specs]

    requests = sum(spec.requests for spec in shards)
    output_tokens = job.endpoint_strategy.expected_output_tokens * requests
    estimate = cost_of(job.model, estimated_tokens, output_tokens)
    summary = BuildSummary(
        window=window.label,
        rows_in=rows.num_rows,
        duplicates_collapsed=collapsed,
        already_settled=rows.num_rows - collapsed - len(rejections) - requests,
        rejected=len(rejections),
        rejection_reasons=dict(Counter(r.reason for r in rejections)),
        requests=requests,
        shards=len(shards),
        estimated_input_tokens=estimated_tokens,
        estimated_cost_usd=estimate.batch_usd,
        estimated_sync_cost_usd=estimate.sync_usd,
        rejections_path=str(rejections_path),
        run_dir=str(directory),
        dry_run=dry_run,
    )
    described = {k: v for k, v in summary.to_xcom().items() if not k.endswith(("path", "dir", "version"))}
    log.info("Built %s", orjson.dumps(described).decode())
    return BuiltRun(shards=shards, summary=summary)


def _check_lines_like_the_server(job: BatchJob, lines: Sequence[RequestLine]) -> None:
    """Apply the service's own per-line rules before paying for an upload."""
    breaks = check_lines((line.line for line in lines), job.endpoint)
    if breaks:
        first = breaks[0]
        line = lines[first.line - 1]
        raise LinesBreakBatchRules(
            f"{len(breaks)} request lines break the Batch API's rules; the first, for key {line.key!r} "
            f"(custom_id {line.custom_id!r}): {first.code}: {first.message}"
        )


def _index_table(lines: Sequence[RequestLine], shard: int) -> pa.Table:
    return pa.table(
        {
            "shard": pa.array([shard] * len(lines), pa.int32()),
            "custom_id": pa.array([line.custom_id for line in lines], pa.string()),
            "key": pa.array([line.key for line in lines], pa.string()),
            "row_date": pa.array([line.row_date for line in lines], pa.date32()),
            "request_fingerprint": pa.array([line.request_fingerprint for line in lines], pa.string()),
            "estimated_tokens": pa.array([line.estimated_tokens for line in lines], pa.int64()),
        }
    )


def rejections_table(job: BatchJob, rejections: list[Rejection]) -> pa.Table:
    rows = [
        {
            "key": r.key if r.key is not None else "",
            "row_date": r.row_date,
            "custom_id": None,
            "request_fingerprint": None,
            "stage": "build",
            "reason": r.reason,
            "detail": r.detail,
            "batch_id": None,
            "attempt": 0,
        }
        for r in rejections
    ]
    return pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA)


# Load -------------------------------------------------------------------------------------------


def load_run(
    job: BatchJob,
    window: RunWindow,
    warehouse: Warehouse,
    collected: list[ShardOutcome],
    rejections_path: str,
    *,
    logical_date: dt.date,
) -> LoadCounts:
    """Land the run's results and failures; repeating it leaves the tables as they are."""
    results = _concat([read_table(ObjectStoragePath(c.results_path)) for c in collected], results_schema(job))
    failures = _concat(
        [read_table(ObjectStoragePath(c.failures_path)) for c in collected]
        + [read_table(ObjectStoragePath(rejections_path))],
        FAILURE_SCHEMA,
    )
    target = _to_target(job, results, logical_date)
    failure_rows = failures.append_column("job", pa.array([job.name] * failures.num_rows, pa.string()))
    failure_rows = failure_rows.append_column(
        "recorded_at", pa.array([utcnow()] * failures.num_rows, pa.timestamp("us"))
    )
    with warehouse.exclusive(f"llm_batch_load:{job.target_table}", timeout=LOAD_LOCK_TIMEOUT_SECONDS):
        warehouse.ensure_table(job.target_table, target.schema, primary_key=(job.key_column,))
        warehouse.ensure_table(job.failures_table, FAILURE_TABLE_SCHEMA, primary_key=FAILURE_TABLE_KEY)
        target = drop_superseded(job, target, warehouse)  # a newer version landed meanwhile
        with warehouse.transaction():
            landed = warehouse.replace_rows(job.target_table, target, match_columns=[job.key_column])
            recorded = warehouse.replace_rows(
                job.failures_table, failure_rows, match_columns=FAILURE_TABLE_KEY
            )
            cleared = queries.clear_answered_failures(warehouse, job, window.start, window.end)
            inflight.release(warehouse, job.name, (c.submission_key for c in collected))
    log.info(
        "Loaded %d rows into %s (%d replaced); %d failures recorded, %d earlier failures now answered",
        landed.inserted,
        job.target_table,
        landed.deleted,
        recorded.inserted,
        cleared,
    )
    return LoadCounts(results=target.num_rows, failures=failures.num_rows, replaced=landed.deleted)


def _to_target(job: BatchJob, results: pa.Table, logical_date: dt.date) -> pa.Table:
    names = [
        job.key_column if n == "key" else job.date_column if n == "row_date" else n
        for n in results.column_names
    ]
    table = results.rename_columns(names)
    return table.append_column("logical_date", pa.array([logical_date] * table.num_rows, pa.date32()))


def _concat(tables: list[pa.Table], schema: pa.Schema) -> pa.Table:
    tables = [t.cast(schema) for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else schema.empty_table()


# Report -----------------------------------------------------------------------------------------


def report_run(
    job: BatchJob,
    build_summary: BuildSummary,
    collected: list[ShardOutcome],
    *,
    run_id: str,
    warehouse: Warehouse | None,
) -> RunReport:
    """Counts, failures by reason, tokens and cost (batch vs synchronous price) of one run."""
    reasons: Counter[str] = Counter()
    for c in collected:
        reasons.update(c.failure_reasons)
    submitted = build_summary.requests
    failed_after_submit = sum(reasons.values())
    report = RunReport(
        job=job.name,
        window=build_summary.window,
        run_id=run_id,
        dry_run=build_summary.dry_run,
        rows_in=build_summary.rows_in,
        already_settled=build_summary.already_settled,
        duplicates_collapsed=build_summary.duplicates_collapsed,
        rejected=build_summary.rejected,
        requests=submitted,
        results=sum(c.results for c in collected),
        failures=failed_after_submit,
        failure_reasons=dict(reasons + Counter(build_summary.rejection_reasons)),
        batches=len({c.batch_id for c in collected}),
        rounds=max((c.attempt for c in collected), default=0),
        input_tokens=sum(c.input_tokens for c in collected),
        output_tokens=sum(c.output_tokens for c in collected),
        cost_usd=round(sum(c.cost_usd for c in collected), 6),
        sync_cost_usd=round(sum(c.sync_cost_usd for c in collected), 6),
        estimated_cost_usd=build_summary.estimated_cost_usd,
        estimated_sync_cost_usd=build_summary.estimated_sync_cost_usd,
        failure_share=round(failed_after_submit / submitted, 4) if submitted else 0.0,
    )
    figures = {k: v for k, v in report.to_xcom().items() if k != "schema_version"}
    log.info("Run report: %s", orjson.dumps(figures).decode())
    if warehouse is not None:
        row = {
            **figures,
            "failure_reasons": orjson.dumps(report.failure_reasons).decode(),
            "reported_at": utcnow(),
        }
        queries.record_run(warehouse, row)
    if report.failure_share > job.max_failure_share:
        raise FailureThresholdExceeded(
            f"{failed_after_submit} of {submitted} requests failed ({report.failure_share:.1%}), over the "
            f"threshold of {job.max_failure_share:.1%}: {dict(reasons)}"
        )
    return report
