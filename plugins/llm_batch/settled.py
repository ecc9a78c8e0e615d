"""What not to send: requests answered or failed for good, in flight elsewhere, or superseded."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc

from llm_batch import inflight
from llm_batch.job import BatchJob
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import queries

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)


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
    stored = queries.stored_row_date_table(warehouse, job, _keys(job, rows))
    if not stored.num_rows:
        return rows
    # Vectorised: a load re-checks every key it lands, tens of thousands at a time.
    keys = pc.cast(rows.column(job.key_column), pa.string())
    stored_day = pc.take(stored.column("row_date"), pc.index_in(keys, value_set=stored.column("key")))
    row_day = pc.cast(rows.column(job.date_column), pa.date32())
    newer = pc.fill_null(pc.less(row_day, pc.cast(stored_day, pa.date32())), False)
    superseded = pc.sum(newer).as_py() or 0
    if not superseded:
        return rows
    log.info("Skipping %d rows of %s: their key has a newer version stored", superseded, job.name)
    return rows.filter(pc.invert(newer))


def _keys(job: BatchJob, rows: pa.Table) -> list[str]:
    keys = pc.unique(pc.drop_null(pc.cast(rows.column(job.key_column), pa.string())))
    return sorted(keys.to_pylist())
