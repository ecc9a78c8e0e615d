"""Reading a query's rows a batch at a time, on DuckDB and PostgreSQL: typed as ``read_arrow`` types them."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from llm_batch.warehouse import Warehouse

SCHEMA = pa.schema(
    [
        ("n", pa.int64()),
        ("small", pa.int32()),
        ("name", pa.string()),
        ("day", pa.date32()),
        ("at", pa.timestamp("us")),
        ("score", pa.float64()),
        ("ok", pa.bool_()),
        ("vector", pa.list_(pa.float64())),
    ]
)
ROWS = 2_345
START = dt.date(2026, 1, 1)


@pytest.fixture
def numbers(warehouse: Warehouse) -> Warehouse:
    """The table ``numbers``: every type the source rows use, a null in every column now and then."""
    rows = pa.Table.from_pylist(
        [
            {
                "n": i,
                "small": None if i % 11 == 0 else i % 100,
                "name": None if i % 13 == 0 else f"row:{i} 'quoted' ü",
                "day": START + dt.timedelta(days=i % 30),
                "at": dt.datetime(2026, 1, 1, 12) + dt.timedelta(seconds=i),
                "score": i / 7,
                "ok": None if i % 17 == 0 else i % 2 == 0,
                "vector": None if i % 19 == 0 else [i / 3, -1.5],
            }
            for i in range(ROWS)
        ],
        SCHEMA,
    )
    warehouse.ensure_table("numbers", SCHEMA)
    warehouse.replace_rows("numbers", rows, match_columns=["n"])
    return warehouse


def test_batches_hold_the_rows_and_types_of_read_arrow(numbers: Warehouse) -> None:
    sql = "SELECT * FROM numbers ORDER BY n"
    batches = list(numbers.read_batches(sql, batch_rows=500))
    whole = numbers.read_arrow(sql)
    assert [b.num_rows for b in batches] == [500, 500, 500, 500, 345]
    assert pa.Table.from_batches(batches).equals(whole)
    assert whole.schema.field("day").type == pa.date32() and whole.schema.field("n").type == pa.int64()


def test_an_empty_result_gives_one_empty_batch_with_the_columns(numbers: Warehouse) -> None:
    sql = "SELECT n, name, day FROM numbers WHERE n < 0"
    (batch,) = numbers.read_batches(sql, batch_rows=100)
    assert batch.num_rows == 0
    assert batch.schema.names == ["n", "name", "day"]
    assert batch.schema.equals(numbers.read_arrow(sql).schema)


def test_parameters_are_bound_by_name(numbers: Warehouse) -> None:
    sql = "SELECT n, ':day is not a parameter' AS text FROM numbers WHERE day >= :start AND day < :end AND n < :below ORDER BY n"
    params = {"start": START + dt.timedelta(days=2), "end": START + dt.timedelta(days=4), "below": 100}
    rows = pa.Table.from_batches(list(numbers.read_batches(sql, params, batch_rows=3))).to_pylist()
    assert [row["n"] for row in rows] == [2, 3, 32, 33, 62, 63, 92, 93]
    assert {row["text"] for row in rows} == {":day is not a parameter"}


def test_other_statements_between_batches_leave_the_stream_whole(numbers: Warehouse) -> None:
    seen = 0
    for batch in numbers.read_batches("SELECT n FROM numbers", batch_rows=1_000):
        seen += batch.num_rows
        assert numbers.read_arrow("SELECT count(*) AS c FROM numbers").column("c")[0].as_py() == ROWS
    assert seen == ROWS
