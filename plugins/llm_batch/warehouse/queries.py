"""The statements the pipeline and the ledger run against the library's tables, by name.

Callers say what they want (the requests already settled, the failures now answered, a ledger
row); the SQL, with every identifier quoted, stays here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import pyarrow as pa
import pyarrow.compute as pc

from llm_batch.warehouse.identifiers import column_list, quote_ident, quote_table
from llm_batch.warehouse.tables import (
    INFLIGHT_KEY,
    INFLIGHT_SCHEMA,
    INFLIGHT_TABLE,
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
    batch_rows: int,
) -> Iterator[pa.RecordBatch]:
    """Rows of a source query, ``batch_rows`` at a time; with ``limit``, the first by ``order_by``,
    the same ones every time."""
    if limit:
        sql = f"SELECT * FROM ({sql}) AS source_rows ORDER BY {quote_ident(order_by)} LIMIT {int(limit)}"
    return warehouse.read_batches(sql, params, batch_rows=batch_rows)


# Results and failures ---------------------------------------------------------------------------


def settled_requests(warehouse: Warehouse, job: BatchJob, keys: Keys | None = None) -> set[tuple[str, str]]:
    """(key, request fingerprint) answered, or failed for good, with the same request, on any date.

    Not limited to a window: a request answered once is settled whichever run asks again.
    ``keys`` limits the lookup to those keys (the rows a run extracted); ``None`` reads them all.
    """
    key = quote_ident(job.key_column)
    settled: set[tuple[str, str]] = set()
    with _key_filter(warehouse, keys) as among:
        queries = {
            job.target_table: f'SELECT CAST({key} AS VARCHAR) AS "key", "request_fingerprint" '
            f"FROM {quote_table(job.target_table)} WHERE {among(key)}",
            job.failures_table: f'SELECT "key", "request_fingerprint" FROM {quote_table(job.failures_table)} '
            f"WHERE \"job\" = :job AND \"stage\" IN ('request', 'answer') AND {among(quote_ident('key'))}",
        }
        for table, sql in queries.items():
            if warehouse.table_exists(table):
                settled.update(_pairs(warehouse.read_arrow(sql, {"job": job.name})))
    return settled


def stored_row_dates(warehouse: Warehouse, job: BatchJob, keys: Keys) -> dict[str, dt.date]:
    """The row date of each of ``keys`` already in the job's target table."""
    if not len(keys) or not warehouse.table_exists(job.target_table):
        return {}
    key, day = quote_ident(job.key_column), quote_ident(job.date_column)
    with _key_filter(warehouse, keys) as among:
        rows = warehouse.read_arrow(
            f'SELECT CAST({key} AS VARCHAR) AS "key", {day} AS "row_date" '
            f"FROM {quote_table(job.target_table)} WHERE {among(key)}"
        )
    return dict(zip(rows.column("key").to_pylist(), rows.column("row_date").to_pylist(), strict=True))


def superseded_keys(warehouse: Warehouse, job: BatchJob, keys: pa.Array, row_dates: pa.Array) -> pa.Array:
    """Those of ``keys`` (text) whose version in the target table has a later row date than ``row_dates``.

    Compared in the database: a load checks every key it lands, tens of thousands at a time.
    """
    if not len(keys) or not warehouse.table_exists(job.target_table):
        return pa.array([], pa.string())
    key, day = quote_ident(job.key_column), quote_ident(job.date_column)
    with warehouse.staged(pa.table({"key": keys, "row_date": row_dates})) as staged:
        newer = warehouse.read_arrow(
            f'SELECT DISTINCT r."key" FROM {staged} AS r JOIN {quote_table(job.target_table)} AS t '
            f'ON t.{key} = r."key" WHERE t.{day} > r."row_date"'
        )
    return newer.column("key").combine_chunks().cast(pa.string())


Keys = Sequence[str] | pa.Array  # a set of keys, as text


@contextmanager
def _key_filter(warehouse: Warehouse, keys: Keys | None) -> Iterator[Callable[[str], str]]:
    """For the block, SQL saying a column is one of ``keys``; always true for ``None``.

    The keys are staged (``Warehouse.staged``), not bound as one list parameter: a run checks tens of
    thousands at once, and a join against a staged table is what both databases plan best.
    """
    if keys is None:
        yield lambda column: "TRUE"
        return
    if not len(keys):
        yield lambda column: "FALSE"
        return
    values = keys if isinstance(keys, pa.Array) else pa.array(list(keys), pa.string())
    with warehouse.staged(pa.table({"key": values})) as staged:
        yield lambda column: f'{column} IN (SELECT "key" FROM {staged})'


def _pairs(rows: pa.Table) -> set[tuple[str, str]]:
    keys, fingerprints = rows.column("key").to_pylist(), rows.column("request_fingerprint").to_pylist()
    return set(zip(keys, fingerprints, strict=True))


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
    """Create the ledger table unless it exists (its key declared, for ``ON CONFLICT``); add new columns."""
    warehouse.create_table(LEDGER_TABLE, LEDGER_SCHEMA, LEDGER_KEY)
    warehouse.ensure_table(LEDGER_TABLE, LEDGER_SCHEMA, LEDGER_KEY)


# Statuses of a batch that holds enqueued tokens at its provider: admitted, being created, or
# running. A batch ended (or refused for the limit) holds none, collected or not.
ENQUEUED_STATUSES = ("admitted", "uploaded", "validating", "in_progress", "finalizing", "cancelling")


def enqueued_batches(
    warehouse: Warehouse,
    account: str,
    model: str,
    *,
    excluding: str,
    admitted_since: dt.datetime,
    running_since: dt.datetime,
) -> pa.Table:
    """Ledger rows (submission_key, batch_id, estimated_tokens) holding tokens of ``model`` in ``account``.

    Every job and run that writes this ledger counts. A row admitted but never created holds its
    tokens until ``admitted_since``, a created one until ``running_since`` (its submitter may
    have died); ``excluding`` is the submission asking, whose own row does not count.
    """
    statuses = ", ".join(f"'{status}'" for status in ENQUEUED_STATUSES)
    return warehouse.read_arrow(
        'SELECT "submission_key", "batch_id", "estimated_tokens" '
        f"FROM {quote_table(LEDGER_TABLE)} "
        'WHERE "account" = :account AND "model" = :model AND "submission_key" <> :excluding '
        'AND "estimated_tokens" IS NOT NULL AND "finished_at" IS NULL '
        f'AND "status" IN ({statuses}) '
        'AND (("batch_id" IS NULL AND "intent_at" >= :admitted_since) '
        'OR ("batch_id" IS NOT NULL AND coalesce("submitted_at", "intent_at") >= :running_since))',
        {
            "account": account,
            "model": model,
            "excluding": excluding,
            "admitted_since": admitted_since,
            "running_since": running_since,
        },
    )


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


# In-flight requests -----------------------------------------------------------------------------


def create_inflight(warehouse: Warehouse) -> None:
    """Create the in-flight table unless it exists."""
    warehouse.ensure_table(INFLIGHT_TABLE, INFLIGHT_SCHEMA, primary_key=INFLIGHT_KEY)


def live_inflight(
    warehouse: Warehouse,
    job: str,
    *,
    submitting_since: dt.datetime,
    running_since: dt.datetime,
    landing_since: dt.datetime,
    keys: Keys | None = None,
) -> pa.Table:
    """Claims (key, request_fingerprint, row_date, submission_key, run_id) whose submission holds them.

    A submission holds its rows while it is being made (intent newer than ``submitting_since``),
    while its batch runs uncollected (submitted after ``running_since``), and once collected with
    answers until its run loads them (collected after ``landing_since``). A batch that failed, or
    ended without answers, holds nothing; neither does a claim whose ledger row is gone.
    """
    if not warehouse.table_exists(INFLIGHT_TABLE):
        return INFLIGHT_SCHEMA.empty_table().select(list(_CLAIM_COLUMNS))
    claim_key = "c." + quote_ident("key")
    in_range, bounds = _within_range(warehouse, claim_key, keys)
    with _key_filter(warehouse, keys) as among:
        return warehouse.read_arrow(
            f"SELECT {', '.join('c.' + quote_ident(name) for name in _CLAIM_COLUMNS)} "
            f"FROM {quote_table(INFLIGHT_TABLE)} AS c JOIN {quote_table(LEDGER_TABLE)} AS l "
            'ON l."submission_key" = c."submission_key" '
            f'WHERE c."job" = :job AND {among(claim_key)} AND {in_range} AND l."status" <> \'failed\' AND ('
            '(l."batch_id" IS NULL AND l."finished_at" IS NULL AND l."intent_at" >= :submitting_since) '
            'OR (l."batch_id" IS NOT NULL AND l."finished_at" IS NULL '
            'AND coalesce(l."submitted_at", l."intent_at") >= :running_since) '
            'OR (l."finished_at" >= :landing_since AND coalesce(l."completed", 0) > 0))',
            {
                "job": job,
                "submitting_since": submitting_since,
                "running_since": running_since,
                "landing_since": landing_since,
                **bounds,
            },
        )


def _within_range(warehouse: Warehouse, column: str, keys: Keys | None) -> tuple[str, dict[str, str]]:
    """On DuckDB, SQL bounding the text ``column`` by the least and greatest of ``keys``, and its
    parameters; elsewhere TRUE.

    DuckDB skips row groups by constants only, not by the staged keys it hashes. Claims are
    written a shard at a time, and a shard is a range of custom_ids (the keys themselves, when
    safe), so the bounds let a claim read the row groups of its own key range instead of every
    claim in flight (``bench_task_memory.py``: against 5M claims the peak RSS stays that of 1M).
    DuckDB compares text byte by byte, as Arrow's min/max do; PostgreSQL may order text by a
    collation, and has the in-flight table's primary key to look keys up by.
    """
    if warehouse.dialect != "duckdb" or keys is None or not len(keys):
        return "TRUE", {}
    values = keys if isinstance(keys, pa.Array) else pa.array(list(keys), pa.string())
    bounds = pc.min_max(values)
    return f"{column} BETWEEN :key_low AND :key_high", {
        "key_low": bounds["min"].as_py(),
        "key_high": bounds["max"].as_py(),
    }


_CLAIM_COLUMNS = ("key", "request_fingerprint", "row_date", "submission_key", "run_id")


def record_inflight(warehouse: Warehouse, claims: pa.Table) -> None:
    """Write claims, replacing earlier (stale or own) claims of the same job, key and fingerprint."""
    with warehouse.transaction():
        warehouse.replace_rows(INFLIGHT_TABLE, claims.cast(INFLIGHT_SCHEMA), match_columns=INFLIGHT_KEY)


def release_inflight(warehouse: Warehouse, job: str, submission_keys: list[str]) -> int:
    """Drop the claims of these submissions (their rows have landed); return how many."""
    if not submission_keys or not warehouse.table_exists(INFLIGHT_TABLE):
        return 0
    with _key_filter(warehouse, submission_keys) as among:
        return warehouse.execute(
            f'DELETE FROM {quote_table(INFLIGHT_TABLE)} WHERE "job" = :job AND {among(quote_ident("submission_key"))}',
            {"job": job},
        )
