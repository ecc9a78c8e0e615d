"""Land a run's results and failures in one transaction, one run at a time per target table.

The run's files are read and replaced piece by piece (``PIECE_BYTES`` of Arrow data at a time),
all inside that one transaction: memory follows the piece, not the run, and a failure in any
piece rolls back every piece before it.
"""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from llm_batch import inflight
from llm_batch.clock import utcnow
from llm_batch.handoffs import LoadCounts, ShardOutcome
from llm_batch.job import BatchJob
from llm_batch.run_window import RunWindow
from llm_batch.settled import drop_superseded
from llm_batch.storage import ObjectStoragePath, read_table_batches
from llm_batch.warehouse import queries
from llm_batch.warehouse.keys import KeyDigests
from llm_batch.warehouse.tables import FAILURE_SCHEMA, FAILURE_TABLE_KEY, FAILURE_TABLE_SCHEMA, results_schema

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)

LOAD_LOCK_TIMEOUT_SECONDS = 600.0  # overlapping runs land one at a time per target table
PIECE_BYTES = 64 << 20  # of Arrow data read, checked and replaced at a time


@dataclass(frozen=True)
class Landed:
    """What the pieces of one table added up to."""

    rows: int = 0  # rows offered, after those superseded were dropped
    deleted: int = 0
    inserted: int = 0


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
    result_files = [ObjectStoragePath(c.results_path) for c in collected]
    failure_files = [ObjectStoragePath(c.failures_path) for c in collected] + [
        ObjectStoragePath(rejections_path)
    ]
    recorded_at = utcnow()

    def to_target(results: pa.Table) -> pa.Table:
        return drop_superseded(job, _to_target(job, results, logical_date), warehouse)

    def to_failure_rows(failures: pa.Table) -> pa.Table:
        rows = failures.append_column("job", pa.array([job.name] * failures.num_rows, pa.string()))
        return rows.append_column("recorded_at", pa.array([recorded_at] * rows.num_rows, pa.timestamp("us")))

    target_schema = _to_target(job, results_schema(job).empty_table(), logical_date).schema
    with warehouse.exclusive(f"llm_batch_load:{job.target_table}", timeout=LOAD_LOCK_TIMEOUT_SECONDS):
        warehouse.ensure_table(job.target_table, target_schema, primary_key=(job.key_column,))
        warehouse.ensure_table(job.failures_table, FAILURE_TABLE_SCHEMA, primary_key=FAILURE_TABLE_KEY)
        with warehouse.transaction():
            # A newer version of a key may have landed meanwhile: to_target drops it (drop_superseded).
            landed = _replace_in_pieces(
                warehouse, job.target_table, result_files, results_schema(job), ["key"], to_target,
                match_columns=[job.key_column],
            )  # fmt: skip
            recorded = _replace_in_pieces(
                warehouse, job.failures_table, failure_files, FAILURE_SCHEMA, ["key"], to_failure_rows,
                match_columns=FAILURE_TABLE_KEY,
            )  # fmt: skip
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
    return LoadCounts(results=landed.rows, failures=recorded.rows, replaced=landed.deleted)


def _replace_in_pieces(
    warehouse: Warehouse,
    table: str,
    files: Sequence[ObjectStoragePath],
    schema: pa.Schema,
    file_keys: list[str],
    to_rows: Callable[[pa.Table], pa.Table],
    *,
    match_columns: Sequence[str],
) -> Landed:
    """Replace ``table``'s rows by the files' rows a piece at a time, inside the caller's transaction.

    A key given twice is refused as one ``replace_rows`` of every row would refuse it, across
    pieces too: replaced piece by piece, the later row would silently win.
    """
    landed = Landed()
    with KeyDigests(file_keys) as seen:
        for piece in _pieces(files, schema):
            if (suspects := seen.seen_before(piece)).num_rows:
                _refuse_repeated(table, files, schema, file_keys, suspects)
            rows = to_rows(piece)
            result = warehouse.replace_rows(table, rows, match_columns=match_columns)
            landed = Landed(
                landed.rows + rows.num_rows,
                landed.deleted + result.deleted,
                landed.inserted + result.inserted,
            )
            del piece, rows  # before the next piece is read, not after
    return landed


def _refuse_repeated(
    table: str, files: Sequence[ObjectStoragePath], schema: pa.Schema, keys: list[str], suspects: pa.Table
) -> None:
    """Raise if one of ``suspects`` (keys whose digest came again) is given twice in ``files``."""
    suspects = suspects.select(keys)
    found = [
        piece.select(keys).join(suspects, keys, join_type="left semi") for piece in _pieces(files, schema)
    ]
    counts = pa.concat_tables(found).group_by(keys).aggregate([([], "count_all")])
    if (repeated := counts.filter(pc.greater(counts.column("count_all"), 1))).num_rows:
        key = {name: repeated.column(name)[0].as_py() for name in keys}
        raise ValueError(f"rows for {table} repeat the key {key} across the run's files")


def _pieces(files: Iterable[ObjectStoragePath], schema: pa.Schema) -> Iterator[pa.Table]:
    """The files' rows in ``schema``, in tables of about ``PIECE_BYTES`` each, the files read as they go."""
    batches: list[pa.Table] = []
    size = 0
    for path in files:
        for batch in read_table_batches(path, batch_bytes=PIECE_BYTES):
            batches.append(_conformed(pa.Table.from_batches([batch]), schema))
            size += batches[-1].nbytes
            if size >= PIECE_BYTES:
                yield pa.concat_tables(batches)
                batches, size = [], 0
    if batches:
        yield pa.concat_tables(batches)


def _to_target(job: BatchJob, results: pa.Table, logical_date: dt.date) -> pa.Table:
    names = [
        job.key_column if n == "key" else job.date_column if n == "row_date" else n
        for n in results.column_names
    ]
    table = results.rename_columns(names)
    return table.append_column("logical_date", pa.array([logical_date] * table.num_rows, pa.date32()))


def _conformed(table: pa.Table, schema: pa.Schema) -> pa.Table:
    """``table`` in ``schema``: files collected by an earlier version lack later columns (``vendor``),
    which land as NULL, so a run started before an upgrade still loads after it."""
    for field in schema:
        if field.name not in table.column_names:
            table = table.append_column(field, pa.nulls(table.num_rows, field.type))
    return table.select(schema.names).cast(schema)
