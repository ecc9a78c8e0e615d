"""The ledger: one row per batch the pipeline submits, the memory that outlives XCom and retries.

A row is written *before* the batch is created (the intent) and completed after, so a worker that
dies in between leaves a trace the retry follows to the batch it already paid for. It records
ids, counts, tokens and cost; never a credential.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse


TABLE = "llm_batch_ledger"

_DDL = f"""
CREATE TABLE IF NOT EXISTS {TABLE} (
    submission_key VARCHAR PRIMARY KEY,
    job VARCHAR NOT NULL,
    interval_label VARCHAR NOT NULL,
    run_id VARCHAR,
    shard INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    generation INTEGER NOT NULL,
    content_digest VARCHAR NOT NULL,
    job_fingerprint VARCHAR NOT NULL,
    model VARCHAR NOT NULL,
    endpoint VARCHAR NOT NULL,
    requests INTEGER NOT NULL,
    input_file_id VARCHAR,
    batch_id VARCHAR,
    status VARCHAR NOT NULL,
    completed INTEGER,
    failed INTEGER,
    input_tokens BIGINT,
    output_tokens BIGINT,
    cost_usd DOUBLE PRECISION,
    sync_cost_usd DOUBLE PRECISION,
    error VARCHAR,
    intent_at TIMESTAMP NOT NULL,
    submitted_at TIMESTAMP,
    finished_at TIMESTAMP
)
"""


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


_COLUMNS = [f.name for f in fields(LedgerEntry)]


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


class BatchLedger:
    def __init__(self, warehouse: Warehouse) -> None:
        self.warehouse = warehouse
        warehouse.execute(_DDL)

    def get(self, submission_key: str) -> LedgerEntry | None:
        rows = self.warehouse.read_arrow(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE submission_key = :key", {"key": submission_key}
        ).to_pylist()
        return LedgerEntry(**rows[0]) if rows else None

    def record_intent(self, entry: LedgerEntry) -> None:
        """Insert the row unless it exists: two racing attempts end with one row."""
        values = {name: getattr(entry, name) for name in _COLUMNS}
        self.warehouse.execute(
            f"INSERT INTO {TABLE} ({', '.join(_COLUMNS)}) VALUES ({', '.join(':' + c for c in _COLUMNS)}) "
            "ON CONFLICT (submission_key) DO NOTHING",
            values,
        )

    def update(self, submission_key: str, **changes: Any) -> None:
        unknown = set(changes) - set(_COLUMNS)
        if unknown:
            raise ValueError(f"unknown ledger columns: {sorted(unknown)}")
        sets = ", ".join(f"{name} = :{name}" for name in changes)
        self.warehouse.execute(
            f"UPDATE {TABLE} SET {sets} WHERE submission_key = :submission_key",
            {**changes, "submission_key": submission_key},
        )

    def entries(self, job: str, interval_label: str | None = None) -> list[LedgerEntry]:
        where, params = "job = :job", {"job": job}
        if interval_label is not None:
            where += " AND interval_label = :interval"
            params["interval"] = interval_label
        rows = self.warehouse.read_arrow(
            f"SELECT {', '.join(_COLUMNS)} FROM {TABLE} WHERE {where} ORDER BY intent_at, submission_key",
            params,
        ).to_pylist()
        return [LedgerEntry(**row) for row in rows]
