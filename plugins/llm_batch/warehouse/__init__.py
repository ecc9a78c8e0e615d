"""The warehouse: one interface over DuckDB and PostgreSQL, and every SQL statement the library runs.

DuckDB (one embedded file) is the default, PostgreSQL the production warehouse; an Airflow
connection id picks one. Modules: ``base`` (the interface), ``duckdb_db`` and ``postgres_db`` (the two
warehouses), ``connections`` (connection id to warehouse), ``parameters`` (``:name`` binding),
``identifiers`` (quoting), ``arrow_types`` (Arrow <-> SQL types), ``keys`` (checks before a
replace), ``tables`` (the library's tables) and ``queries`` (the statements run against them).

The names below load their module on first use, so ``llm_batch.warehouse.tables`` can be imported
without the database drivers.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llm_batch.warehouse.base import LockTimeout, ReplaceResult, Warehouse
    from llm_batch.warehouse.connections import warehouse_for_conn_id
    from llm_batch.warehouse.duckdb_db import DuckDBWarehouse, duckdb_warehouse
    from llm_batch.warehouse.identifiers import quote_ident, quote_table
    from llm_batch.warehouse.postgres_db import PostgresWarehouse, postgres_warehouse

_MODULE_OF = {
    "DuckDBWarehouse": "duckdb_db",
    "LockTimeout": "base",
    "PostgresWarehouse": "postgres_db",
    "ReplaceResult": "base",
    "Warehouse": "base",
    "duckdb_warehouse": "duckdb_db",
    "postgres_warehouse": "postgres_db",
    "quote_ident": "identifiers",
    "quote_table": "identifiers",
    "warehouse_for_conn_id": "connections",
}

__all__ = [
    "DuckDBWarehouse",
    "LockTimeout",
    "PostgresWarehouse",
    "ReplaceResult",
    "Warehouse",
    "duckdb_warehouse",
    "postgres_warehouse",
    "quote_ident",
    "quote_table",
    "warehouse_for_conn_id",
]


def __getattr__(name: str) -> Any:
    if name not in _MODULE_OF:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_MODULE_OF[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
