"""Land a run's results and failures in one transaction, one run at a time per target table."""

from __future__ import annotations

import datetime as dt
import logging
from typing import TYPE_CHECKING

import pyarrow as pa

from llm_batch import inflight
from llm_batch.clock import utcnow
from llm_batch.handoffs import LoadCounts, ShardOutcome
from llm_batch.job import BatchJob
from llm_batch.run_window import RunWindow
from llm_batch.settled import drop_superseded
from llm_batch.storage import ObjectStoragePath, read_table
from llm_batch.warehouse import queries
from llm_batch.warehouse.tables import FAILURE_SCHEMA, FAILURE_TABLE_KEY, FAILURE_TABLE_SCHEMA, results_schema

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)

LOAD_LOCK_TIMEOUT_SECONDS = 600.0  # overlapping runs land one at a time per target table


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
    tables = [_conformed(t, schema) for t in tables if t.num_rows]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: files collected by an earlier version lack later columns (``vendor``),
    which land as NULL, so a run started before an upgrade still loads after it."""
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)
