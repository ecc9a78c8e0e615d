"""The library's table definitions: schemas and keys, as the tables are created from them."""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from llm_batch.ledger import LedgerEntry
from llm_batch.warehouse import Warehouse
from llm_batch.warehouse.tables import (
    LEDGER_KEY,
    LEDGER_SCHEMA,
    LEDGER_TABLE,
    RESULT_PROVENANCE,
    results_schema,
)
from tests.llm_batch.jobs import embeddings_job, sentiment_job
from tests.llm_batch.warehouse.result_rows import column_types

PROJECT = Path(__file__).resolve().parents[3]


def test_the_ledger_schema_has_the_columns_of_a_ledger_entry() -> None:
    assert LEDGER_SCHEMA.names == [field.name for field in dataclasses.fields(LedgerEntry)]


LEDGER_TYPES = {
    "duckdb": {"submission_key": "VARCHAR", "shard": "INTEGER", "input_tokens": "BIGINT",
               "cost_usd": "DOUBLE", "intent_at": "TIMESTAMP"},
    "postgres": {"submission_key": "text", "shard": "integer", "input_tokens": "bigint",
                 "cost_usd": "double precision", "intent_at": "timestamp without time zone"},
}  # fmt: skip


def test_the_ledger_table_declares_its_key_and_required_columns(warehouse: Warehouse) -> None:
    warehouse.create_table(LEDGER_TABLE, LEDGER_SCHEMA, LEDGER_KEY)
    warehouse.create_table(LEDGER_TABLE, LEDGER_SCHEMA, LEDGER_KEY)  # a no-op once it exists
    types = column_types(warehouse, LEDGER_TABLE)
    assert list(types) == LEDGER_SCHEMA.names
    assert {name: types[name] for name in LEDGER_TYPES[warehouse.dialect]} == LEDGER_TYPES[warehouse.dialect]
    nullable = warehouse.read_arrow(
        "SELECT column_name AS name, is_nullable AS n FROM information_schema.columns "
        "WHERE table_name = :t AND table_schema = current_schema()",
        {"t": LEDGER_TABLE},
    ).to_pylist()
    required = {row["name"] for row in nullable if row["n"] == "NO"}
    assert required == {field.name for field in LEDGER_SCHEMA if not field.nullable}
    keys = warehouse.read_arrow(
        "SELECT count(*) AS n FROM information_schema.table_constraints "
        "WHERE table_name = :t AND table_schema = current_schema() AND constraint_type = 'PRIMARY KEY'",
        {"t": LEDGER_TABLE},
    )
    assert keys.column("n")[0].as_py() == 1  # in DuckDB too: INSERT ... ON CONFLICT needs it


def test_result_columns_are_the_answer_then_its_provenance() -> None:
    sentiment = results_schema(sentiment_job())
    assert sentiment.names == ["label", "confidence", "reason", *RESULT_PROVENANCE.names, "answered_at"]
    assert sentiment.field("confidence").type == pa.float64()
    embeddings = results_schema(embeddings_job())
    assert embeddings.field("embedding").type == pa.list_(pa.float32())


def test_the_table_definitions_load_without_the_database_drivers() -> None:
    code = (
        "import sys, llm_batch.warehouse.tables, llm_batch.collect; "
        "print(sorted(m for m in ('duckdb', 'psycopg') if m in sys.modules))"
    )
    found = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PROJECT,
        env={"PYTHONPATH": "plugins"},
        capture_output=True,
        text=True,
    )
    assert found.returncode == 0, found.stderr
    assert found.stdout.strip() == "[]"
