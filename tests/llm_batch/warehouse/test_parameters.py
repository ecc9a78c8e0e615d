"""Named parameters: ``:name`` in either dialect, never inside strings, identifiers, comments or casts."""

from __future__ import annotations

import pytest

from llm_batch.warehouse import Warehouse
from llm_batch.warehouse.parameters import bind_named_params


def test_read_arrow_binds_named_params_but_not_casts_quotes_or_comments(warehouse: Warehouse) -> None:
    table = warehouse.read_arrow(
        """
        SELECT :n::INTEGER + 1 AS n, CAST(:s AS VARCHAR) AS s,  -- :comment is not a parameter
               ':x' AS quoted, 'it''s :y, 50% off::text' AS tricky, :s || '!' AS again, 1 AS "col:z"
        """,
        {"n": 41, "s": "hi", "unused": "ignored"},
    )
    assert table.to_pylist() == [
        {"n": 42, "s": "hi", "quoted": ":x", "tricky": "it's :y, 50% off::text", "again": "hi!", "col:z": 1}
    ]


def test_read_arrow_names_a_missing_parameter(warehouse: Warehouse) -> None:
    with pytest.raises(ValueError, match=":missing"):
        warehouse.read_arrow("SELECT :missing AS m", {"other": 1})


UNTOUCHED = "x[lo:hi] || E'\\':a' || $$:a$$ || $t$ :a $t$"  # slices, E'' and $$ strings hold no parameters


@pytest.mark.parametrize(
    ("sql", "duckdb_sql", "postgres_sql", "used"),
    [
        ("a = :a AND b::int = 1", "a = $a AND b::int = 1", "a = %(a)s AND b::int = 1", {"a": 1}),
        ("/* :a */ '%' = :a", "/* :a */ '%' = $a", "/* :a */ '%%' = %(a)s", {"a": 1}),
        (UNTOUCHED, UNTOUCHED, UNTOUCHED, {}),
    ],
)
def test_named_params_are_rewritten_per_driver(
    sql: str, duckdb_sql: str, postgres_sql: str, used: dict
) -> None:
    assert bind_named_params(sql, {"a": 1, "b": 2}, "duckdb") == (duckdb_sql, used)
    assert bind_named_params(sql, {"a": 1, "b": 2}, "postgres") == (postgres_sql, used)
