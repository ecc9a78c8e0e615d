"""Read one window's source rows as a stream of Arrow record batches, never the whole window at once."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pyarrow as pa

from llm_batch.job import BatchJob
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import queries

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)

BATCH_ROWS = 10_000  # ~10 MB of sample reviews: larger batches buffered ahead swell the peak


def extract_batches(
    job: BatchJob,
    window: RunWindow,
    source: Warehouse,
    *,
    row_limit: int | None = None,
    batch_rows: int = BATCH_ROWS,
) -> Iterator[pa.RecordBatch]:
    """The window's rows in the source's order, ``batch_rows`` at a time.

    With ``row_limit``, the first rows by key: the same rows every time for the same limit.
    """
    params = {"start": window.start, "end": window.end}
    rows = 0
    for batch in queries.read_source(
        source, job.source_sql, params, order_by=job.key_column, limit=row_limit, batch_rows=batch_rows
    ):
        rows += batch.num_rows
        yield batch
    log.info("Extracted %d rows of %s for %s", rows, job.name, window.label)
