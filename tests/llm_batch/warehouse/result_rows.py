"""Result rows the warehouse tests load, and how they read a table back."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa

from llm_batch.warehouse import Warehouse

RESULT_SCHEMA = pa.schema(
    [
        ("review_key", pa.string()),
        ("review_date", pa.date32()),
        ("label", pa.string()),
        ("score", pa.float64()),
    ]
)
D1, D2 = dt.date(2024, 5, 1), dt.date(2024, 5, 2)

# What the ``loaded`` fixture's table holds, in the order ``contents`` reads it.
BEFORE = [
    ("a", D1, "pos", 0.9),
    ("b", D1, "neg", 0.1),
    ("c", D1, "neu", 0.5),
    ("a", D2, "pos", 0.8),
    ("x", D2, "neg", 0.2),
]


def results(*rows: tuple) -> pa.Table:
    return pa.Table.from_pylist(
        [dict(zip(RESULT_SCHEMA.names, row, strict=True)) for row in rows], RESULT_SCHEMA
    )


def contents(wh: Warehouse, table: str = "results") -> list[tuple]:
    table = wh.read_arrow(f"SELECT * FROM {table} ORDER BY review_date, review_key")
    return [tuple(row.values()) for row in table.to_pylist()]


def column_types(wh: Warehouse, table: str) -> dict[str, str]:
    if wh.dialect == "postgres":
        sql = (
            "SELECT attname AS name, format_type(atttypid, atttypmod) AS type FROM pg_attribute "
            "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped"
        )
    else:
        sql = "SELECT column_name AS name, data_type AS type FROM information_schema.columns WHERE table_name = :t"
    found = wh.read_arrow(sql, {"t": table})
    return dict(zip(found.column("name").to_pylist(), found.column("type").to_pylist(), strict=True))
