"""One short read of the warehouse: open read-only, run the reads, close at once.

A DuckDB file admits one writing process, and a reader that holds it open stops a writer from
opening it. So a reader never keeps a connection: it opens the file for one group of reads
(milliseconds) and closes it. When a writer holds the file, the reader tries again for a moment
and then says the warehouse is busy, rather than wait on the pipeline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

T = TypeVar("T")
WarehouseOpener = Callable[[], "Warehouse"]


class WarehouseBusy(RuntimeError):
    """A writer held the DuckDB file for longer than a reader waits; try again shortly."""


class NoWarehouseYet(LookupError):
    """The DuckDB file does not exist yet: no run has written anything."""


def read_briefly(
    open_warehouse: WarehouseOpener, reads: Callable[[Warehouse], T], patience: float = 0.5
) -> T:
    """``reads(warehouse)`` on a warehouse opened for it alone and closed right after."""
    import duckdb

    deadline = time.monotonic() + patience
    pause = 0.02
    while True:
        try:
            with open_warehouse() as warehouse:
                return reads(warehouse)
        except duckdb.IOException as exc:
            if "does not exist" in str(exc):
                raise NoWarehouseYet(str(exc)) from exc
            if "lock" not in str(exc).lower():
                raise
            if time.monotonic() >= deadline:
                raise WarehouseBusy(
                    "the pipeline is writing to the warehouse right now; the page reads again shortly"
                ) from exc
            time.sleep(pause)
            pause = min(pause * 2, 0.2)
