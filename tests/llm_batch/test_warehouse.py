"""The warehouse interface behaves the same on DuckDB and PostgreSQL.

Every behavioural test runs on both. PostgreSQL comes from the libpq variables PGHOST, PGPORT,
PGUSER and PGDATABASE (default 127.0.0.1:5432, user postgres, database test); each test gets a
fresh schema, dropped afterwards. CI guarantees the server, so an unreachable one fails the tests.
"""

from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import make_conninfo

from llm_batch.warehouse import (
    DuckDBWarehouse,
    PostgresWarehouse,
    ReplaceResult,
    Warehouse,
    _bind_named_params,
    duckdb_warehouse,
    postgres_warehouse,
    warehouse_for_conn_id,
)
from tests.postgres import TEST_DSN as PG_DSN


@pytest.fixture
def pg_schema() -> Iterator[str]:
    """A fresh schema in the test database, dropped (with any '<name>_extra') afterwards."""
    try:
        admin = psycopg.connect(PG_DSN, autocommit=True)
    except psycopg.OperationalError as exc:
        pytest.fail(f"the PostgreSQL test server is unreachable (CI guarantees one): {exc}")
    name = f"wh_test_{uuid.uuid4().hex[:12]}"
    with admin:
        admin.execute(f'CREATE SCHEMA "{name}"')
        try:
            yield name
        finally:
            admin.execute(f'DROP SCHEMA IF EXISTS "{name}", "{name}_extra" CASCADE')


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        with duckdb_warehouse(tmp_path / "warehouse.duckdb") as wh:
            yield wh
    else:
        schema = request.getfixturevalue("pg_schema")
        with postgres_warehouse(make_conninfo(PG_DSN, options=f"-c search_path={schema}")) as wh:
            yield wh


RESULT_SCHEMA = pa.schema(
    [
        ("review_key", pa.string()),
        ("review_date", pa.date32()),
        ("label", pa.string()),
        ("score", pa.float64()),
    ]
)
D1, D2 = dt.date(2024, 5, 1), dt.date(2024, 5, 2)


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


# Parameters -------------------------------------------------------------------------------------


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
    assert _bind_named_params(sql, {"a": 1, "b": 2}, "duckdb") == (duckdb_sql, used)
    assert _bind_named_params(sql, {"a": 1, "b": 2}, "postgres") == (postgres_sql, used)


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

ALL_TYPES = pa.schema(
    [
        ("s", pa.string()),
        ("big", pa.int64()),
        ("small", pa.int32()),
        ("x", pa.float64()),
        ("ok", pa.bool_()),
        ("day", pa.date32()),
        ("at", pa.timestamp("us")),
        ("at_tz", pa.timestamp("us", tz="UTC")),
        ("vec32", pa.list_(pa.float32())),
        ("vec64", pa.list_(pa.float64())),
        ("doc", pa.large_string()),
    ]
)
EXPECTED_TYPES = {
    "duckdb": [
        "VARCHAR", "BIGINT", "INTEGER", "DOUBLE", "BOOLEAN", "DATE", "TIMESTAMP",
        "TIMESTAMP WITH TIME ZONE", "FLOAT[]", "DOUBLE[]", "VARCHAR",
    ],
    "postgres": [
        "text", "bigint", "integer", "double precision", "boolean", "date", "timestamp without time zone",
        "timestamp with time zone", "real[]", "double precision[]", "text",
    ],
}  # fmt: skip


def test_ensure_table_maps_arrow_types(warehouse: Warehouse) -> None:
    warehouse.ensure_table("typed", ALL_TYPES, primary_key=["s"])
    assert column_types(warehouse, "typed") == dict(
        zip(ALL_TYPES.names, EXPECTED_TYPES[warehouse.dialect], strict=True)
    )


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


def test_ensure_table_names_the_column_it_cannot_map(warehouse: Warehouse) -> None:
    schema = pa.schema([("k", pa.string()), ("meta", pa.struct([("a", pa.int64())]))])
    with pytest.raises(TypeError, match="'meta'"):
        warehouse.ensure_table("bad", schema)


# Replacing rows ---------------------------------------------------------------------------------


@pytest.fixture
def loaded(warehouse: Warehouse) -> Warehouse:
    """A results table holding keys a, b, c on D1 and a, x on D2."""
    warehouse.ensure_table("results", RESULT_SCHEMA, primary_key=["review_key", "review_date"])
    warehouse.replace_rows(
        "results",
        results(("a", D1, "pos", 0.9), ("b", D1, "neg", 0.1), ("c", D1, "neu", 0.5), ("a", D2, "pos", 0.8)),
        match_columns=["review_key", "review_date"],
    )
    warehouse.replace_rows(
        "results", results(("x", D2, "neg", 0.2)), match_columns=["review_key", "review_date"]
    )
    return warehouse


BEFORE = [
    ("a", D1, "pos", 0.9),
    ("b", D1, "neg", 0.1),
    ("c", D1, "neu", 0.5),
    ("a", D2, "pos", 0.8),
    ("x", D2, "neg", 0.2),
]


def test_replace_rows_twice_leaves_the_same_table(loaded: Warehouse) -> None:
    rows = results(("b", D1, "pos", 0.7), ("d", D1, "neg", 0.3))
    first = loaded.replace_rows("results", rows, match_columns=["review_key", "review_date"])
    after_first = contents(loaded)
    second = loaded.replace_rows("results", rows, match_columns=["review_key", "review_date"])
    assert contents(loaded) == after_first
    assert first == ReplaceResult(deleted=1, inserted=2)
    assert second == ReplaceResult(deleted=2, inserted=2)


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


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (results(("a", D1, "x", 0.0), ("a", D1, "y", 1.0)), "repeat the key"),
        (results((None, D1, "x", 0.0)), "NULL 'review_key'"),
        (results(("a", D1, "x", 0.0)).drop_columns(["review_date"]), "not among the rows' columns"),
    ],
)
def test_keys_that_cannot_replace_cleanly_are_refused(
    loaded: Warehouse, rows: pa.Table, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        loaded.replace_rows("results", rows, match_columns=["review_key", "review_date"])
    assert contents(loaded) == BEFORE


AWKWARD = pa.schema(
    [
        ("k", pa.int64()),
        ("text", pa.string()),
        ("doc", pa.large_string()),
        ("vec", pa.list_(pa.float32())),
        ("vec64", pa.list_(pa.float64())),
        ("tags", pa.list_(pa.string())),
        ("at", pa.timestamp("us")),
        ("at_tz", pa.timestamp("us", tz="UTC")),
        ("day", pa.date32()),
        ("n", pa.int32()),
        ("ok", pa.bool_()),
        ("x", pa.float64()),
    ]
)
TEXTS = [
    None,
    "",
    "ünïcødé 中文 العربية",
    "line 1\nline 2\r\nline 3",
    "double \" single ' both \"'",
    "back\\slash \\N \\. \\\\",
    "a\n\\.\nb",
    "\\.",
    "emoji 🎉👩‍👩‍👧 and a comma, too",
    "x" * 100_000,
    "NULL",
]


def awkward_rows() -> pa.Table:
    n = len(TEXTS)
    utc = dt.UTC
    return pa.Table.from_pydict(
        {
            "k": list(range(n)),
            "text": TEXTS,
            "doc": ['{"a": [1, 2], "b": "q\\"uote"}', *TEXTS[1:]],
            "vec": [None, [], [0.1, -2.5, 1e-7, None], [3.4e38], *([[0.25, 0.5]] * (n - 4))],
            "vec64": [[0.1 + 0.2, -1e-300, 1.0 / 3.0], None, [], *([[1.5]] * (n - 3))],
            "tags": [["a,b", 'c"d', "{e}", None, "back\\slash", "", "NULL", " spaced "], None, [], *([["z"]] * (n - 3))],
            "at": [dt.datetime(2024, 5, 1, 23, 59, 59, 999_999), None, *([dt.datetime(1999, 12, 31)] * (n - 2))],
            "at_tz": [dt.datetime(2024, 5, 1, 22, 30, 0, 1, tzinfo=utc), None, *([dt.datetime(2000, 1, 1, tzinfo=utc)] * (n - 2))],
            "day": [D1, None, *([dt.date(1970, 1, 1)] * (n - 2))],
            "n": [None, 0, -(2**31), 2**31 - 1, *range(n - 4)],
            "ok": [True, False, None, *([True] * (n - 3))],
            "x": [0.1 + 0.2, None, -0.0, 1e-300, 1.7976931348623157e308, *([2.5] * (n - 5))],
        },
        AWKWARD,
    )  # fmt: skip


def test_awkward_values_round_trip(warehouse: Warehouse) -> None:
    rows = awkward_rows()
    warehouse.ensure_table("awkward", AWKWARD, primary_key=["k"])
    assert warehouse.replace_rows("awkward", rows, match_columns=["k"]) == ReplaceResult(0, rows.num_rows)
    back = warehouse.read_arrow("SELECT * FROM awkward ORDER BY k")
    assert back.column_names == AWKWARD.names
    for name in AWKWARD.names:
        assert back.column(name).to_pylist() == rows.column(name).to_pylist(), name


def test_an_embedding_table_loads_and_reads_back(warehouse: Warehouse) -> None:
    vectors = [[float(i) / 7 + j for j in range(1536)] for i in range(50)]
    rows = pa.table(
        {"doc_id": [f"doc-{i}" for i in range(50)], "embedding": pa.array(vectors, pa.list_(pa.float32()))}
    )
    warehouse.ensure_table("embeddings", rows.schema, primary_key=["doc_id"])
    warehouse.replace_rows("embeddings", rows, match_columns=["doc_id"])
    back = warehouse.read_arrow("SELECT * FROM embeddings ORDER BY doc_id")
    assert (
        back.sort_by("doc_id").column("embedding").to_pylist()
        == rows.sort_by("doc_id").column("embedding").to_pylist()
    )


def test_other_arrow_encodings_load_as_their_plain_types(warehouse: Warehouse) -> None:
    rows = pa.table(
        {
            "k": ["a", "b"],
            "fixed": pa.array([[1.5, 2.5, None], None], pa.list_(pa.float32(), 3)),
            "flags": pa.array([[True, None], [False]]),
            "times": pa.array([[dt.datetime(2024, 5, 1, 12)], []], pa.list_(pa.timestamp("us"))),
            "doc": pa.array(['{"a": 1}', None], pa.json_()),
            "view": pa.array(["x", ""], pa.string_view()),
            "label": pa.array(["p", "q"]).dictionary_encode(),
        }
    )
    warehouse.ensure_table("odd", rows.schema, primary_key=["k"])
    warehouse.replace_rows("odd", rows, match_columns=["k"])
    assert warehouse.read_arrow("SELECT * FROM odd ORDER BY k").to_pylist() == [
        {"k": "a", "fixed": [1.5, 2.5, None], "flags": [True, None], "times": [dt.datetime(2024, 5, 1, 12)],
         "doc": '{"a": 1}', "view": "x", "label": "p"},
        {"k": "b", "fixed": None, "flags": [False], "times": [], "doc": None, "view": "", "label": "q"},
    ]  # fmt: skip


# Connections ------------------------------------------------------------------------------------


def test_duckdb_opens_its_file_lazily_and_lets_go_on_close(tmp_path: Path) -> None:
    path = tmp_path / "lazy.duckdb"
    with duckdb_warehouse(path) as wh:
        assert not path.exists()
        wh.execute("CREATE TABLE t AS SELECT 1 AS n")
    with duckdb.connect(str(path)) as other_writer:  # would fail if the file were still held
        assert other_writer.sql("SELECT n FROM t").fetchall() == [(1,)]
    with duckdb_warehouse(path, read_only=True) as reader:
        assert reader.read_arrow("SELECT n FROM t").column("n").to_pylist() == [1]
        with pytest.raises(duckdb.Error):
            reader.execute("INSERT INTO t VALUES (2)")


def test_warehouse_for_a_duckdb_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "from_conn.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_WH_DUCKDB", json.dumps({"conn_type": "duckdb", "host": str(path)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_WH_DUCKDB_EXTRA", json.dumps({"conn_type": "duckdb", "extra": {"path": str(path)}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_WH_DUCKDB_EMPTY", json.dumps({"conn_type": "duckdb"}))
    with warehouse_for_conn_id("wh_duckdb") as wh:
        assert isinstance(wh, DuckDBWarehouse) and wh.dialect == "duckdb"
        wh.execute("CREATE TABLE t AS SELECT 42 AS n")
    with warehouse_for_conn_id("wh_duckdb_extra", read_only=True) as wh:
        assert wh.read_arrow("SELECT n FROM t").column("n").to_pylist() == [42]
    with pytest.raises(ValueError, match="names no DuckDB file"):
        warehouse_for_conn_id("wh_duckdb_empty")


def test_warehouse_for_a_postgres_connection(monkeypatch: pytest.MonkeyPatch, pg_schema: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(PG_DSN)
    conn = {
        "conn_type": "postgres",
        "host": params["host"],
        "port": int(params["port"]),
        "login": params["user"],
        "password": "not-a-real-secret",  # trust auth ignores it; it must not leak into repr
        "schema": params["dbname"],
        "extra": {"options": f"-c search_path={pg_schema}", "application_name": "llm_batch_test"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WH_POSTGRES", json.dumps(conn))
    with warehouse_for_conn_id("wh_postgres") as wh:
        assert isinstance(wh, PostgresWarehouse) and wh.dialect == "postgres"
        assert "not-a-real-secret" not in repr(wh)
        found = wh.read_arrow("SELECT current_database() AS db, current_schema() AS s").to_pylist()
        assert found == [{"db": params["dbname"], "s": pg_schema}]


def test_an_unknown_connection_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_MYSQL", json.dumps({"conn_type": "mysql", "host": "db"}))
    with pytest.raises(ValueError, match="'mysql'"):
        warehouse_for_conn_id("wh_mysql")
