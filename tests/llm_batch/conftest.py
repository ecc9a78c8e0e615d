"""Warehouses that several submitters open at once, as overlapping runs do."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
from psycopg.conninfo import make_conninfo

from tests.llm_batch.overlap import WarehouseAt
from tests.postgres import TEST_DSN


@pytest.fixture(params=["duckdb", "postgres"])
def open_warehouse(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[WarehouseAt]:
    """Opens new connections to one warehouse: a DuckDB file, or a fresh PostgreSQL schema."""
    if request.param == "duckdb":
        yield WarehouseAt("duckdb", str(tmp_path / "warehouse.duckdb"))
        return
    schema = f"overlap_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(TEST_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield WarehouseAt("postgres", make_conninfo(TEST_DSN, options=f"-c search_path={schema}"))
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
