"""The ledger: one row per batch the pipeline submits, the memory that outlives XCom and retries.

A row is written *before* the batch is created (the intent) and completed after, so a worker that
dies in between leaves a trace the retry follows to the batch it already paid for. It records
ids, counts, tokens and cost; never a credential.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

from llm_batch.clock import utcnow
from llm_batch.handoffs import ShardOutcome
from llm_batch.warehouse import queries
from llm_batch.warehouse.tables import LEDGER_TABLE

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse


TABLE = LEDGER_TABLE


class SubmissionBusy(TimeoutError):
    """Another submitter held the same submission longer than this one would wait."""


@dataclass(frozen=True)
class LedgerEntry:
    submission_key: str
    job: str
    interval_label: str
    run_id: str | None
    shard: int
    attempt: int
    generation: int
    content_digest: str
    job_fingerprint: str
    model: str
    endpoint: str
    requests: int
    input_file_id: str | None
    batch_id: str | None
    status: str
    completed: int | None
    failed: int | None
    input_tokens: int | None
    output_tokens: int | None
    cost_usd: float | None
    sync_cost_usd: float | None
    error: str | None
    intent_at: dt.datetime
    submitted_at: dt.datetime | None
    finished_at: dt.datetime | None
    account: str | None = None  # None in rows written before accounts were recorded
    estimated_tokens: int | None = None  # set when admitted under the account's enqueued-token limit


_COLUMNS = [f.name for f in fields(LedgerEntry)]


class BatchLedger:
    """The ledger table of a warehouse; its statements live in ``llm_batch.warehouse.queries``."""

    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        queries.create_ledger(warehouse)

    @contextmanager
    def claim(self, submission_key: str, *, timeout: float) -> Iterator[None]:
        """Be the only submitter of ``submission_key`` for the ``with`` block.

        Two runs that build the same shard at once would otherwise both read "no batch yet" and
        both pay. The other waits here, at most ``timeout`` seconds, and then finds the batch
        in the ledger. The claim is a lock of the warehouse: it dies with a crashed holder, whose
        intent row then leads the next submitter to the batch it may have created.
        """
        with ExitStack() as held:
            try:
                held.enter_context(
                    self.warehouse.exclusive(f"llm_batch_submission:{submission_key}", timeout=timeout)
                )
            except TimeoutError:  # the warehouse's LockTimeout, named so without loading a driver here
                raise SubmissionBusy(
                    f"submission {submission_key} is being made by another run and was not done within "
                    f"{timeout:g} s; retry the task (it re-attaches to that batch), or give it a longer "
                    "claim_timeout"
                ) from None
            yield

    def get(self, submission_key: str) -> LedgerEntry | None:
        rows = queries.ledger_rows(self.warehouse, submission_key=submission_key)
        return LedgerEntry(**rows[0]) if rows else None

    def holds_batch(self, batch_id: str) -> bool:
        """Whether a submission has recorded this batch as its own (so it is no one's orphan)."""
        return self.of_batch(batch_id) is not None

    def of_batch(self, batch_id: str) -> LedgerEntry | None:
        """The row of the submission that recorded this batch as its own."""
        rows = queries.ledger_rows(self.warehouse, batch_id=batch_id)
        return LedgerEntry(**rows[0]) if rows else None

    def record_intent(self, entry: LedgerEntry) -> None:
        """Insert the row unless it exists: two racing attempts end with one row."""
        queries.insert_ledger_row(self.warehouse, {name: getattr(entry, name) for name in _COLUMNS})

    def update(self, submission_key: str, **changes: Any) -> None:
        queries.update_ledger_row(self.warehouse, submission_key, changes)

    def record_outcome(
        self, submission_key: str, batch_summary: Mapping[str, Any], outcome: ShardOutcome
    ) -> None:
        """The batch ended and was collected: its status, counts, tokens and cost.

        A row closed with answers keeps its requests in flight until their run loads them
        (``llm_batch.inflight``).
        """
        counts = batch_summary["request_counts"]
        self.update(
            submission_key,
            status=batch_summary["status"],
            completed=counts["completed"],
            failed=counts["failed"],
            input_tokens=outcome.input_tokens,
            output_tokens=outcome.output_tokens,
            cost_usd=outcome.cost_usd,
            sync_cost_usd=outcome.sync_cost_usd,
            finished_at=utcnow(),
        )

    def record_failure(self, submission_key: str, error: str) -> None:
        """The batch failed as a whole: nothing of it can be landed."""
        self.update(submission_key, status="failed", error=error[:4000], finished_at=utcnow())

    def entries(self, job: str, interval_label: str | None = None) -> list[LedgerEntry]:
        where: dict[str, Any] = {"job": job}
        if interval_label is not None:
            where["interval_label"] = interval_label
        return [LedgerEntry(**row) for row in queries.ledger_rows(self.warehouse, **where)]
