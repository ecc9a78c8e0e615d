"""The warehouse interface behaves the same on DuckDB and PostgreSQL: every test runs on both."""

from __future__ import annotations

import duckdb
import psycopg
import pyarrow as pa
import pytest

from llm_batch.warehouse import ReplaceResult, Warehouse
from tests.llm_batch.warehouse.result_rows import BEFORE, D1, D2, RESULT_SCHEMA, contents, results


def test_execute_returns_rowcount(warehouse: Warehouse) -> None:
    warehouse.execute("CREATE TABLE t (k VARCHAR, n INTEGER)")
    assert warehouse.execute("INSERT INTO t VALUES ('a', 1), ('b', 2), ('c', 3)") == 3
    assert warehouse.execute("UPDATE t SET n = n + 1 WHERE n >= :n", {"n": 2}) == 2
    assert warehouse.execute("DELETE FROM t WHERE k = :k", {"k": "a"}) == 1
    assert warehouse.read_arrow("SELECT k, n FROM t ORDER BY k").to_pylist() == [
        {"k": "b", "n": 3},
        {"k": "c", "n": 4},
    ]


# Tables -----------------------------------------------------------------------------------------


def test_primary_keys_are_declared_in_postgres_only(warehouse: Warehouse) -> None:
    """With DuckDB's primary-key index, deleting a day of 1M rows took 25 s; replace_rows keeps keys unique."""
    warehouse.ensure_table("keyed", RESULT_SCHEMA, primary_key=["review_key", "review_date"])
    found = warehouse.read_arrow(
        "SELECT constraint_name FROM information_schema.table_constraints "
        "WHERE table_name = 'keyed' AND constraint_type = 'PRIMARY KEY'"
    )
    assert found.num_rows == (1 if warehouse.dialect == "postgres" else 0)


def test_ensure_table_creates_then_adds_missing_columns(warehouse: Warehouse) -> None:
    warehouse.ensure_table("results", RESULT_SCHEMA, primary_key=["review_key"])
    warehouse.replace_rows("results", results(("a", D1, "pos", 0.9)), match_columns=["review_key"])
    warehouse.ensure_table("results", RESULT_SCHEMA, primary_key=["review_key"])  # a no-op the second time

    grown = RESULT_SCHEMA.append(pa.field("model", pa.string())).append(pa.field("tokens", pa.int64()))
    warehouse.ensure_table("results", grown, primary_key=["review_key"])

    assert warehouse.read_arrow("SELECT * FROM results").to_pylist() == [
        {"review_key": "a", "review_date": D1, "label": "pos", "score": 0.9, "model": None, "tokens": None}
    ]


def test_ensure_table_takes_a_schema_qualified_name_and_creates_the_schema(warehouse: Warehouse) -> None:
    schema = warehouse.read_arrow("SELECT current_schema() AS s").column("s")[0].as_py() + "_extra"
    table = f"{schema}.review_sentiment"
    warehouse.ensure_table(table, RESULT_SCHEMA)
    warehouse.replace_rows(table, results(("a", D1, "pos", 0.5)), match_columns=["review_key"])
    assert contents(warehouse, table) == [("a", D1, "pos", 0.5)]


# Replacing rows ---------------------------------------------------------------------------------


def test_replace_rows_twice_leaves_the_same_table(loaded: Warehouse) -> None:
    rows = results(("b", D1, "pos", 0.7), ("d", D1, "neg", 0.3))
    first = loaded.replace_rows("results", rows, match_columns=["review_key", "review_date"])
    after_first = contents(loaded)
    second = loaded.replace_rows("results", rows, match_columns=["review_key", "review_date"])
    assert contents(loaded) == after_first
    assert first == ReplaceResult(deleted=1, inserted=2)
    assert second == ReplaceResult(deleted=2, inserted=2)


def test_rows_equal_to_the_stored_ones_are_replaced_in_full_where_keys_repeat_or_columns_lack(
    warehouse: Warehouse,
) -> None:
    # No key declared: two stored rows share the match key "a", one equal to the new row.
    warehouse.ensure_table("unkeyed", RESULT_SCHEMA)
    warehouse.execute(
        "INSERT INTO unkeyed VALUES ('a', :d, 'pos', 0.5), ('a', :d, 'neg', 0.1), ('b', :d, 'pos', 0.5)",
        {"d": D1},
    )
    result = warehouse.replace_rows("unkeyed", results(("a", D1, "pos", 0.5)), match_columns=["review_key"])
    assert result == ReplaceResult(deleted=2, inserted=1)
    assert contents(warehouse, "unkeyed") == [("a", D1, "pos", 0.5), ("b", D1, "pos", 0.5)]

    # The table has a column the rows lack: a replaced row loses its value there.
    warehouse.ensure_table(
        "wider", RESULT_SCHEMA.append(pa.field("note", pa.string())), primary_key=["review_key"]
    )
    warehouse.execute("INSERT INTO wider VALUES ('a', :d, 'pos', 0.5, 'kept?')", {"d": D1})
    result = warehouse.replace_rows("wider", results(("a", D1, "pos", 0.5)), match_columns=["review_key"])
    assert result == ReplaceResult(deleted=1, inserted=1)
    assert warehouse.read_arrow("SELECT note FROM wider").to_pylist() == [{"note": None}]


def test_replace_rows_deletes_only_the_matched_keys(loaded: Warehouse) -> None:
    loaded.replace_rows(
        "results",
        results(("b", D1, "mixed", 0.4), ("d", D1, "pos", 1.0)),
        match_columns=["review_key", "review_date"],
    )
    assert contents(loaded) == [
        ("a", D1, "pos", 0.9),
        ("b", D1, "mixed", 0.4),
        ("c", D1, "neu", 0.5),
        ("d", D1, "pos", 1.0),
        ("a", D2, "pos", 0.8),
        ("x", D2, "neg", 0.2),
    ]


def test_delete_where_scopes_what_else_is_cleared(loaded: Warehouse) -> None:
    result = loaded.replace_rows(
        "results",
        results(("a", D1, "neg", 0.3)),
        match_columns=["review_key", "review_date"],
        delete_where="review_date = CAST(:d AS DATE) AND review_key <> ':d' AND label::VARCHAR <> :keep",
        params={"d": D1.isoformat(), "keep": "neu"},
    )
    assert result == ReplaceResult(deleted=2, inserted=1)  # a and b on D1; c is kept by the condition
    assert contents(loaded) == [("a", D1, "neg", 0.3), ("c", D1, "neu", 0.5), *BEFORE[3:]]


def test_delete_where_alone_clears_a_date_without_results(loaded: Warehouse) -> None:
    result = loaded.replace_rows(
        "results", RESULT_SCHEMA.empty_table(), match_columns=["review_key"], delete_where="review_date = :d",
        params={"d": D2},
    )  # fmt: skip
    assert result == ReplaceResult(deleted=2, inserted=0)
    assert contents(loaded) == BEFORE[:3]


def test_a_failing_insert_leaves_the_table_unchanged(loaded: Warehouse) -> None:
    bad = pa.table(
        {
            "review_key": ["a", "b", "new"],
            "review_date": pa.array([D1, D1, D1], pa.date32()),
            "label": ["pos", "neg", "neu"],
            "score": ["0.5", "0.25", "not a number"],  # a string where the table has a DOUBLE
        }
    )
    with pytest.raises((duckdb.Error, psycopg.Error)):
        loaded.replace_rows(
            "results", bad, match_columns=["review_key", "review_date"], delete_where="review_date = :d",
            params={"d": D2},
        )  # fmt: skip
    assert contents(loaded) == BEFORE
    # ... and the warehouse is still usable afterwards.
    loaded.replace_rows(
        "results", results(("n", D2, "pos", 1.0)), match_columns=["review_key", "review_date"]
    )
    assert len(contents(loaded)) == len(BEFORE) + 1


def test_transaction_makes_several_replacements_all_or_nothing(loaded: Warehouse) -> None:
    with pytest.raises(RuntimeError), loaded.transaction():
        loaded.replace_rows(
            "results", results(("a", D1, "neg", 0.0)), match_columns=["review_key", "review_date"]
        )
        loaded.execute("DELETE FROM results WHERE review_date = :d", {"d": D2})
        raise RuntimeError("the second table failed")
    assert contents(loaded) == BEFORE

    with loaded.transaction():
        loaded.replace_rows(
            "results", results(("a", D1, "neg", 0.0)), match_columns=["review_key", "review_date"]
        )
        loaded.replace_rows(
            "results", results(("b", D1, "neg", 0.0)), match_columns=["review_key", "review_date"]
        )
    assert contents(loaded)[:2] == [("a", D1, "neg", 0.0), ("b", D1, "neg", 0.0)]
