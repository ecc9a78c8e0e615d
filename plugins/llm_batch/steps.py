"""What each task of a batch DAG does, free of Airflow: the DAG factory only wires these together.

Each step takes the job and plain values, opens what it needs through the job's connections, and
returns a typed record from ``llm_batch.handoffs``. Steps raise the library's own errors
(``BatchFailedError``, ``FailureThresholdExceeded``); the DAG factory turns those that no retry
can fix into failed tasks. Tests, benchmarks and scripts run a whole run through these same
functions.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from llm_batch import capacity
from llm_batch.backends import BatchBackend, batch_backend
from llm_batch.budget import CostCeilingExceeded, over_ceiling
from llm_batch.build import OpenWarehouse, build_run
from llm_batch.collapsed_rows import CollapsedRows
from llm_batch.collect import BatchFailedError, collect_shard
from llm_batch.extract import extract_batches
from llm_batch.handoffs import (
    BuildSummary,
    BuiltRun,
    LoadCounts,
    RunReport,
    ShardOutcome,
    ShardSpec,
    Submission,
)
from llm_batch.job import BatchJob
from llm_batch.ledger import BatchLedger
from llm_batch.load import load_run
from llm_batch.report import report_run
from llm_batch.run_window import RunWindow
from llm_batch.submission import resubmit as resubmit_shard
from llm_batch.submission import submission_of_batch as submission_of_batch_in
from llm_batch.submission import submit_shard
from llm_batch.warehouse import warehouse_for_conn_id


@dataclass(frozen=True)
class RunOptions:
    """A run's parameters beyond its window; the nightly schedule uses the defaults."""

    row_limit: int | None = None
    model: str | None = None
    dry_run: bool = False
    force: bool = False
    batch_conn_id: str | None = None  # another batch connection, hence maybe another vendor
    max_cost_usd: float | None = None  # this run's cost ceiling, instead of the job's

    @classmethod
    def from_params(cls, params: Mapping[str, Any] | None) -> RunOptions:
        params = params or {}
        return cls(
            row_limit=params.get("row_limit"),
            model=params.get("model"),
            dry_run=bool(params.get("dry_run")),
            force=bool(params.get("force")),
            batch_conn_id=params.get("batch_conn_id") or None,
            max_cost_usd=params.get("max_cost_usd"),
        )

    def job_for(self, job: BatchJob) -> BatchJob:
        return job.with_overrides(model=self.model, batch_conn_id=self.batch_conn_id)


@dataclass(frozen=True)
class Connections:
    """Where the steps reach the source, the warehouse and the batch API.

    By default (``Connections.of(job)``) through the job's Airflow connections; tests and scripts
    that run steps without Airflow give their own. Each step opens what it needs anew, as each
    task on its own worker does.
    """

    source: OpenWarehouse
    warehouse: OpenWarehouse
    backend: Callable[[], BatchBackend]

    @classmethod
    def of(cls, job: BatchJob) -> Connections:
        return cls(
            source=lambda: warehouse_for_conn_id(job.source_conn_id, read_only=True),
            warehouse=lambda: warehouse_for_conn_id(job.warehouse_conn_id),
            backend=lambda: batch_backend(job.openai_conn_id),
        )


def build(
    job: BatchJob,
    window: RunWindow,
    options: RunOptions,
    *,
    run_id: str,
    connections: Connections | None = None,
) -> BuiltRun:
    """Extract the window's rows, drop those already settled, build and shard the requests.

    The rows stream from the source into a scratch database on local disk, which collapses
    them to one per key in custom_id order (``CollapsedRows``); the warehouse is then asked what
    not to send one chunk of keys at a time. Memory stays flat however many rows the window has.
    """
    connections = connections or Connections.of(job)
    backend = connections.backend()
    job = capacity.bounded(backend.job_for(job), backend)  # no shard over the enqueued-token limit
    with CollapsedRows(job) as rows:
        with connections.source() as source:  # closed before the warehouse opens: it may be the same file
            rows.add(extract_batches(job, window, source, row_limit=options.row_limit))
        built = build_run(
            job,
            window,
            rows,
            warehouse=connections.warehouse,  # the latest version of a key wins
            skip_settled=not options.force,  # answered, or in flight in another run
            run_id=run_id,
            dry_run=options.dry_run,
            identity_salt=run_id if options.force else "",  # a forced run pays for fresh answers
        )
    ceiling = job.max_cost_usd if options.max_cost_usd is None else options.max_cost_usd
    refusal = over_ceiling(built.summary, ceiling)
    if refusal is None:
        return built
    summary = dataclasses.replace(built.summary, over_ceiling=refusal)
    if options.dry_run:  # a dry run shows the estimate, and says a real run would be refused
        return dataclasses.replace(built, summary=summary)
    with connections.warehouse() as warehouse:
        report_run(job, summary, [], run_id=run_id, warehouse=warehouse)
    raise CostCeilingExceeded(f"Nothing was submitted: {refusal}")


def submit(
    job: BatchJob, spec: ShardSpec, *, run_id: str, connections: Connections | None = None
) -> Submission:
    """Create this shard's batch, or re-attach to the one an earlier try already created.

    The submission's ``batch_id`` is ``None`` when every request was answered or taken by
    another run since the build: nothing is sent, and the shard's wait and collect are skipped.
    Raises ``capacity.AwaitingCapacity`` while the model's enqueued-token limit has no room for
    the shard: nothing is sent yet; ask again later.
    """
    connections = connections or Connections.of(job)
    backend = connections.backend()
    with connections.warehouse() as warehouse:
        return submit_shard(backend, BatchLedger(warehouse), backend.job_for(job), spec, run_id=run_id)


def resubmit(
    job: BatchJob, submission: Submission, *, run_id: str, connections: Connections | None = None
) -> Submission:
    """Make a refused submission's batch again (``refused_for_capacity``), once its model has room.

    Raises ``capacity.AwaitingCapacity`` while it has none.
    """
    connections = connections or Connections.of(job)
    backend = connections.backend()
    with connections.warehouse() as warehouse:
        return resubmit_shard(
            backend, BatchLedger(warehouse), backend.job_for(job), submission, run_id=run_id
        )


def submission_of_batch(
    job: BatchJob, batch_id: str, spec: ShardSpec, *, run_id: str, connections: Connections | None = None
) -> Submission:
    """The submission that made ``batch_id`` (the wait step made it, or the submit step): from the ledger."""
    with (connections or Connections.of(job)).warehouse() as warehouse:
        return submission_of_batch_in(BatchLedger(warehouse), spec, batch_id, run_id)


def refused_for_capacity(
    job: BatchJob, submission: Submission, *, connections: Connections | None = None
) -> int:
    """Record that the service refused the submission's batch for the token limit, so it holds no
    tokens now; the next ``resubmit`` makes it again (its requests stay claimed). Returns how many
    batches the submission has made."""
    with (connections or Connections.of(job)).warehouse() as warehouse:
        ledger = BatchLedger(warehouse)
        ledger.update(submission.submission_key, status="refused", error="token_limit_exceeded")
        return ledger.get(submission.submission_key).generation


def collect(
    job: BatchJob,
    submission: Submission,
    batch_summary: Mapping[str, Any],
    *,
    connections: Connections | None = None,
) -> ShardOutcome:
    """Parse the finished batch into results, failures and the next round's shard; ledger it.

    ``batch_summary`` is the wait step's XCom (``BatchState.to_summary()``). A batch that failed
    as a whole is recorded as failed and raises ``BatchFailedError``: the same bytes would fail
    again.
    """
    key, connections = submission.submission_key, connections or Connections.of(job)
    backend = connections.backend()
    with connections.warehouse() as warehouse:
        ledger = BatchLedger(warehouse)
        try:
            outcome = collect_shard(
                backend,
                backend.job_for(job),
                submission.spec,
                dict(batch_summary),
                submission_key=key,
            )
        except BatchFailedError as exc:
            ledger.record_failure(key, str(exc))
            raise
        ledger.record_outcome(key, batch_summary, outcome)
    return dataclasses.replace(outcome, reused=submission.reused)


def next_round(outcomes: Iterable[ShardOutcome]) -> list[ShardSpec]:
    """The shards of requests worth another try; none means the next round is skipped."""
    return [outcome.retry_spec for outcome in outcomes if outcome.retry_spec is not None]


def load(
    job: BatchJob,
    window: RunWindow,
    summary: BuildSummary,
    outcomes: list[ShardOutcome],
    *,
    logical_date: dt.date | None,
    connections: Connections | None = None,
) -> LoadCounts:
    """Land results and failures in one transaction; a run without a logical date is dated by its window."""
    with (connections or Connections.of(job)).warehouse() as warehouse:
        return load_run(
            job,
            window,
            warehouse,
            outcomes,
            summary.rejections_path,
            logical_date=logical_date or window.start,
        )


def report(
    job: BatchJob,
    summary: BuildSummary,
    outcomes: list[ShardOutcome],
    *,
    run_id: str,
    connections: Connections | None = None,
) -> RunReport:
    """Counts, failures by reason, tokens and cost, recorded (a dry run's estimate too); raises over the threshold."""
    with (connections or Connections.of(job)).warehouse() as warehouse:
        return report_run(job, summary, outcomes, run_id=run_id, warehouse=warehouse)
