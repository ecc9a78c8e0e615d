"""Read one window's source rows, in key order, into Arrow."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

import pyarrow as pa

from llm_batch.job import BatchJob
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import queries

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)


def extract_rows(
    job: BatchJob, window: RunWindow, source: Warehouse, *, row_limit: int | None = None
) -> pa.Table:
    params = {"start": window.start, "end": window.end}
    # With a limit, deterministic: the same rows every time for the same limit.
    rows = queries.read_source(source, job.source_sql, params, order_by=job.key_column, limit=row_limit)
    log.info("Extracted %d rows of %s for %s", rows.num_rows, job.name, window.label)
    return rows
