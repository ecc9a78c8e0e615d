"""Overlapping runs in tests: one warehouse opened by many, and its source table."""

from __future__ import annotations

from dataclasses import dataclass

import pyarrow as pa

from llm_batch.warehouse import Warehouse, duckdb_warehouse, postgres_warehouse


@dataclass(frozen=True)
class WarehouseAt:
    """Where a warehouse is (``kind`` duckdb or postgres, a file or a DSN); calling it opens a new one."""

    kind: str
    where: str

    def __call__(self) -> Warehouse:
        return duckdb_warehouse(self.where) if self.kind == "duckdb" else postgres_warehouse(self.where)


def store_source(warehouse: Warehouse, rows: pa.Table) -> None:
    """The source table ``reviews`` (duplicate ids and all, as the source has them)."""
    numbered = rows.append_column("row_no", pa.array(range(rows.num_rows), pa.int64()))
    warehouse.ensure_table("reviews", numbered.schema)
    warehouse.replace_rows("reviews", numbered, match_columns=["row_no"])
