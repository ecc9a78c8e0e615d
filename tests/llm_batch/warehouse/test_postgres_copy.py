"""COPY into PostgreSQL: binary into the tables the warehouse makes, CSV into columns of other types."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from zoneinfo import ZoneInfo

import psycopg
import pyarrow as pa
import pytest

from llm_batch.warehouse import postgres_warehouse
from llm_batch.warehouse.postgres_copy import copy_rows
from tests.llm_batch.warehouse.test_arrow_types import AWKWARD, awkward_rows

SESSION_ZONE = object()


class RecordingCursor(psycopg.Cursor):
    copies: list[str] = []

    def copy(self, statement, *args, **kwargs):
        RecordingCursor.copies.append(str(statement))
        return super().copy(statement, *args, **kwargs)


@pytest.fixture
def copy_into(pg_dsn: str):
    """Copy rows into a table with ``copy_rows``; return the COPY statement it sent."""
    RecordingCursor.copies = []

    def copy(table: str, rows: pa.Table, order: pa.Array | None = None) -> str:
        with psycopg.connect(pg_dsn, cursor_factory=RecordingCursor) as conn, conn.cursor() as cur:
            copy_rows(cur, table, rows, order)
        (statement,) = RecordingCursor.copies[-1:]
        return statement

    return copy


def test_rows_go_in_binary_into_the_tables_the_warehouse_makes(pg_dsn, copy_into):
    rows = awkward_rows()
    with postgres_warehouse(pg_dsn) as wh:
        wh.ensure_table("awkward", AWKWARD, primary_key=["k"])

    statement = copy_into('"awkward"', rows, order=pa.array(range(rows.num_rows - 1, -1, -1)))

    assert statement.endswith("(FORMAT binary)")
    with postgres_warehouse(pg_dsn) as wh:
        back = wh.read_arrow("SELECT * FROM awkward ORDER BY k")
    for name in AWKWARD.names:
        assert back.column(name).to_pylist() == rows.column(name).to_pylist(), name


@pytest.mark.parametrize(
    ("column", "declared", "arrow_type", "value", "read_back"),
    [
        ("n", "integer", pa.int64(), 7, 7),  # binary int8 into an int4 column would fail
        ("x", "real", pa.float64(), 0.5, 0.5),
        ("day", "text", pa.date32(), dt.date(2024, 5, 1), "2024-05-01"),
        ("tags", "varchar(8)[]", pa.list_(pa.string()), ["a", "b"], ["a", "b"]),
        # A wall-clock time into an instant column: read in the session's time zone, as text is.
        ("at", "timestamptz", pa.timestamp("us"), dt.datetime(2024, 5, 1, 12), SESSION_ZONE),
        ("doc", "jsonb", pa.string(), '{"a": 1}', '{"a": 1}'),
    ],
)
def test_columns_of_other_types_take_the_rows_as_csv(
    pg_dsn, copy_into, column, declared, arrow_type, value, read_back
):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute(f"CREATE TABLE other (k bigint PRIMARY KEY, {column} {declared})")
        zone = ZoneInfo(conn.execute("SHOW TimeZone").fetchone()[0])
    rows = pa.table({"k": pa.array([1], pa.int64()), column: pa.array([value], arrow_type)})

    statement = copy_into('"other"', rows)

    assert statement.endswith("(FORMAT csv)")
    with postgres_warehouse(pg_dsn) as wh:
        (back,) = wh.read_arrow(f"SELECT {column} FROM other").column(column).to_pylist()
    assert back == (value.replace(tzinfo=zone) if read_back is SESSION_ZONE else read_back)


def test_an_instant_into_a_column_without_a_zone_keeps_its_utc_wall_clock(pg_dsn, copy_into):
    with psycopg.connect(pg_dsn, autocommit=True) as conn:
        conn.execute("CREATE TABLE events (k bigint PRIMARY KEY, at timestamp)")
    instant = dt.datetime(2024, 5, 1, 22, 30, tzinfo=dt.timezone(dt.timedelta(hours=2)))
    rows = pa.table({"k": pa.array([1], pa.int64()), "at": pa.array([instant], pa.timestamp("us", tz="UTC"))})

    statement = copy_into('"events"', rows)

    assert statement.endswith("(FORMAT binary)")
    with postgres_warehouse(pg_dsn) as wh:
        (back,) = wh.read_arrow("SELECT at FROM events").column("at").to_pylist()
    assert back == dt.datetime(2024, 5, 1, 20, 30)  # as CSV's "2024-05-01 20:30:00Z" would store it


@pytest.mark.parametrize(
    ("arrow_type", "values"),
    [
        (pa.decimal128(12, 3), [Decimal("-123456789.125"), Decimal("0.001"), None]),
        (pa.int8(), [-128, 127, None]),
        (pa.uint16(), [0, 65535, None]),
        (pa.uint32(), [0, 4294967295, None]),
        (
            pa.timestamp("s"),
            [dt.datetime(1969, 12, 31, 23, 59, 59), dt.datetime(2038, 1, 19, 3, 14, 8), None],
        ),
        (pa.list_(pa.int32()), [[1, None, -(2**31)], [], None]),
        (pa.list_(pa.bool_()), [[True, False, None], [], None]),
        (pa.list_(pa.date32()), [[dt.date(1999, 12, 31), None], [], None]),
    ],
)
def test_each_type_the_warehouse_maps_goes_in_binary_and_reads_back(pg_dsn, copy_into, arrow_type, values):
    rows = pa.table({"k": pa.array(range(len(values)), pa.int64()), "v": pa.array(values, arrow_type)})
    with postgres_warehouse(pg_dsn) as wh:
        wh.ensure_table("typed", rows.schema, primary_key=["k"])

    statement = copy_into('"typed"', rows)

    assert statement.endswith("(FORMAT binary)")
    with postgres_warehouse(pg_dsn) as wh:
        assert wh.read_arrow("SELECT v FROM typed ORDER BY k").column("v").to_pylist() == values
