"""Arrow types become the expected SQL column types, and values of every type come back as they went in."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from llm_batch.warehouse import ReplaceResult, Warehouse
from tests.llm_batch.warehouse.result_rows import D1, column_types

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


def test_ensure_table_names_the_column_it_cannot_map(warehouse: Warehouse) -> None:
    schema = pa.schema([("k", pa.string()), ("meta", pa.struct([("a", pa.int64())]))])
    with pytest.raises(TypeError, match="'meta'"):
        warehouse.ensure_table("bad", schema)


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
