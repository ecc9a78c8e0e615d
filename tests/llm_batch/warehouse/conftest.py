"""Warehouses for the tests: every behavioural test runs on DuckDB and on PostgreSQL.

PostgreSQL comes from the libpq variables PGHOST, PGPORT, PGUSER and PGDATABASE (default
127.0.0.1:5432, user postgres, database test); each test gets a fresh schema, dropped afterwards.
CI guarantees the server, so an unreachable one fails the tests.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from llm_batch.warehouse import Warehouse, duckdb_warehouse, postgres_warehouse
from tests.llm_batch.warehouse.result_rows import D1, D2, RESULT_SCHEMA, results
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


@pytest.fixture
def pg_dsn(pg_schema: str) -> str:
    """The test database with the fresh schema first on the search path."""
    return make_conninfo(PG_DSN, options=f"-c search_path={pg_schema}")


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouse]:
    if request.param == "duckdb":
        with duckdb_warehouse(tmp_path / "warehouse.duckdb") as wh:
            yield wh
    else:
        with postgres_warehouse(request.getfixturevalue("pg_dsn")) as wh:
            yield wh


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
