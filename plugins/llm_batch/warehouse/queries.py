"""The statements the pipeline and the ledger run against the library's tables, by name.

Callers say what they want (the requests already settled, the failures now answered, a ledger
row); the SQL, with every identifier quoted, stays here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from llm_batch.warehouse.identifiers import column_list, quote_ident, quote_table
from llm_batch.warehouse.tables import (
    LEDGER_KEY,
    LEDGER_SCHEMA,
    LEDGER_TABLE,
    RUNS_KEY,
    RUNS_SCHEMA,
    RUNS_TABLE,
)

if TYPE_CHECKING:
    from llm_batch.job import BatchJob
    from llm_batch.warehouse.base import Warehouse


# Source -----------------------------------------------------------------------------------------


def read_source(
    warehouse: Warehouse,
    sql: str,
    params: dict[str, Any],
    *,
    order_by: str,
    limit: int | None = None,
) -> pa.Table:
    """Rows of a source query; with ``limit``, the first by ``order_by``, the same ones every time."""
    if limit:
        sql = f"SELECT * FROM ({sql}) AS source_rows ORDER BY {quote_ident(order_by)} LIMIT {int(limit)}"
    return warehouse.read_arrow(sql, params)


# Results and failures ---------------------------------------------------------------------------


def settled_requests(
    warehouse: Warehouse, job: BatchJob, start: dt.date, end: dt.date
) -> set[tuple[str, str]]:
    """(key, request fingerprint) of rows answered, or failed for good, with the same request."""
    key, day = quote_ident(job.key_column), quote_ident(job.date_column)
    queries = {
        job.target_table: f'SELECT CAST({key} AS VARCHAR) AS "key", "request_fingerprint" '
        f"FROM {quote_table(job.target_table)} WHERE {day} >= :start AND {day} < :end",
        job.failures_table: f'SELECT "key", "request_fingerprint" FROM {quote_table(job.failures_table)} '
        'WHERE "job" = :job AND "row_date" >= :start AND "row_date" < :end '
        "AND \"stage\" IN ('request', 'answer')",
    }
    params = {"start": start, "end": end, "job": job.name}
    settled: set[tuple[str, str]] = set()
    for table, sql in queries.items():
        if warehouse.table_exists(table):
            rows = warehouse.read_arrow(sql, params)
            keys, fingerprints = (
                rows.column("key").to_pylist(),
                rows.column("request_fingerprint").to_pylist(),
            )
            settled.update(zip(keys, fingerprints, strict=True))
    return settled


def clear_answered_failures(warehouse: Warehouse, job: BatchJob, start: dt.date, end: dt.date) -> int:
    """Delete the job's failure rows whose key now has a result dated in the window; return how many."""
    key, day = quote_ident(job.key_column), quote_ident(job.date_column)
    return warehouse.execute(
        f'DELETE FROM {quote_table(job.failures_table)} WHERE "job" = :job AND "key" IN '
        f"(SELECT CAST({key} AS VARCHAR) FROM {quote_table(job.target_table)} "
        f"WHERE {day} >= :start AND {day} < :end)",
        {"job": job.name, "start": start, "end": end},
    )


# Runs -------------------------------------------------------------------------------------------


def record_run(warehouse: Warehouse, row: Mapping[str, Any]) -> None:
    """Write a run's report row to the runs table, replacing an earlier report of the same run."""
    if set(row) != set(RUNS_SCHEMA.names):
        raise ValueError(
            f"a run row has the columns of {RUNS_TABLE}; unknown: {sorted(set(row) - set(RUNS_SCHEMA.names))}, "
            f"missing: {sorted(set(RUNS_SCHEMA.names) - set(row))}"
        )
    table = pa.Table.from_pylist([dict(row)], schema=RUNS_SCHEMA)
    warehouse.ensure_table(RUNS_TABLE, RUNS_SCHEMA, primary_key=RUNS_KEY)
    with warehouse.transaction():
        warehouse.replace_rows(RUNS_TABLE, table, match_columns=RUNS_KEY)


# Ledger -----------------------------------------------------------------------------------------

LEDGER_COLUMNS = tuple(LEDGER_SCHEMA.names)


def create_ledger(warehouse: Warehouse) -> None:
    """Create the ledger table unless it exists; its key is declared, for ``ON CONFLICT``."""
    warehouse.create_table(LEDGER_TABLE, LEDGER_SCHEMA, LEDGER_KEY)


def ledger_rows(warehouse: Warehouse, **equal_to: Any) -> list[dict[str, Any]]:
    """Ledger rows whose columns equal the given values, oldest intent first."""
    _check_ledger_columns(equal_to)
    where = " AND ".join(f"{quote_ident(name)} = :{name}" for name in equal_to) or "TRUE"
    sql = (
        f"SELECT {column_list(LEDGER_COLUMNS)} FROM {quote_table(LEDGER_TABLE)} WHERE {where} "
        'ORDER BY "intent_at", "submission_key"'
    )
    return warehouse.read_arrow(sql, equal_to).to_pylist()


def insert_ledger_row(warehouse: Warehouse, row: Mapping[str, Any]) -> None:
    """Insert a ledger row unless its key exists: two racing attempts end with one row."""
    _check_ledger_columns(row)
    names = list(row)
    warehouse.execute(
        f"INSERT INTO {quote_table(LEDGER_TABLE)} ({column_list(names)}) "
        f"VALUES ({', '.join(':' + name for name in names)}) "
        f"ON CONFLICT ({column_list(LEDGER_KEY)}) DO NOTHING",
        dict(row),
    )


def update_ledger_row(warehouse: Warehouse, submission_key: str, changes: Mapping[str, Any]) -> None:
    """Set the given columns of one ledger row."""
    _check_ledger_columns(changes)
    sets = ", ".join(f"{quote_ident(name)} = :{name}" for name in changes)
    warehouse.execute(
        f'UPDATE {quote_table(LEDGER_TABLE)} SET {sets} WHERE "submission_key" = :_key',
        {**changes, "_key": submission_key},
    )


def _check_ledger_columns(names: Mapping[str, Any]) -> None:
    if unknown := set(names) - set(LEDGER_COLUMNS):
        raise ValueError(f"unknown ledger columns: {sorted(unknown)}")
