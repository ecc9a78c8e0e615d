"""One short read of the warehouse: open read-only, run the reads, close at once.

A DuckDB file admits one writing process, and a reader that holds it open stops a writer from
opening it. So a reader never keeps a connection: it opens the file for one group of reads
(milliseconds) and closes it. When a writer holds the file, the reader tries again for a moment
and then says the warehouse is busy, rather than wait on the pipeline.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

T = TypeVar("T")
PATIENCE_SECONDS = 0.5  # how long a page read waits for a file a writer holds
WarehouseOpener = Callable[[], "Warehouse"]


class WarehouseBusy(RuntimeError):
    """A writer held the DuckDB file for longer than a reader waits; try again shortly."""


class NoWarehouseYet(LookupError):
    """The DuckDB file does not exist yet: no run has written anything."""


def read_briefly(open_warehouse: WarehouseOpener, reads: Callable[[Warehouse], T]) -> T:
    """``reads(warehouse)`` on a warehouse opened for it alone and closed right after.

    The opener bounds the wait for a file a writer holds (``PATIENCE_SECONDS``): past it, the
    page says the warehouse is busy rather than wait on the pipeline.
    """
    import duckdb

    from llm_batch.warehouse.duckdb_db import DuckDBFileLocked

    try:
        with open_warehouse() as warehouse:
            return reads(warehouse)
    except DuckDBFileLocked as exc:
        raise WarehouseBusy(
            "the pipeline is writing to the warehouse right now; the page reads again shortly"
        ) from exc
    except duckdb.IOException as exc:
        if "does not exist" in str(exc):
            raise NoWarehouseYet(str(exc)) from exc
        raise
