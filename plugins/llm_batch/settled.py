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
    """The rows whose key has no newer version (by row date) stored already; one row per key.

    The latest version of a key wins: a run for an older window neither pays for an older
    version of a key answered on a later date nor lands it over the newer answer.
    """
    keys = pc.cast(rows.column(job.key_column), pa.string()).combine_chunks()
    dates = rows.column(job.date_column)
    superseded = queries.superseded_keys(warehouse, job, keys, pc.cast(dates, pa.date32()).combine_chunks())
    if not len(superseded):
        return rows
    newer = pc.is_in(keys, value_set=superseded)
    log.info("Skipping %d rows of %s: their key has a newer version stored", len(superseded), job.name)
    return rows.filter(pc.invert(newer))


def _keys(job: BatchJob, rows: pa.Table) -> pa.Array:
    return pc.unique(pc.drop_null(pc.cast(rows.column(job.key_column), pa.string())).combine_chunks())
