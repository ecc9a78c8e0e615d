"""A DuckDB file held by another process (a person reading results) makes writers wait, not fail."""

from __future__ import annotations

import logging
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from llm_batch.warehouse.duckdb_db import DuckDBFileLocked, DuckDBWarehouse

HOLDER = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1], read_only=True)
print("holding", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def hold(path: Path, seconds: float) -> subprocess.Popen:
    """Another process that opens the file read-only, as a notebook or the CLI would, and keeps it."""
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(path), str(seconds)], stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "holding"
    return holder


@pytest.fixture
def db_file(tmp_path: Path) -> Path:
    path = tmp_path / "warehouse.duckdb"
    with duckdb.connect(str(path)) as con:
        con.execute("CREATE TABLE results (id INTEGER)")
    return path


def test_a_writer_waits_for_a_reader_to_let_go_and_logs_who_holds_the_file(
    db_file: Path, caplog: pytest.LogCaptureFixture
) -> None:
    holder = hold(db_file, 2.0)
    started = time.monotonic()
    with caplog.at_level(logging.WARNING, logger="llm_batch.warehouse.duckdb_db"):
        warehouse = DuckDBWarehouse(db_file, lock_wait_seconds=60)
        with warehouse.transaction():
            warehouse.execute("INSERT INTO results VALUES (1)")
        warehouse.close()
    waited = time.monotonic() - started
    holder.wait(timeout=10)
    assert waited >= 1.0, "the writer did not wait for the holder"
    assert f"(PID {holder.pid})" in caplog.text, caplog.text
    with duckdb.connect(str(db_file), read_only=True) as con:
        assert con.execute("SELECT count(*) FROM results").fetchone() == (1,)


def test_a_writer_gives_up_after_its_bounded_wait_naming_the_holder(db_file: Path) -> None:
    holder = hold(db_file, 30.0)
    try:
        warehouse = DuckDBWarehouse(db_file, lock_wait_seconds=0.5)
        with pytest.raises(
            DuckDBFileLocked, match=rf"locked by .*PID {holder.pid}.*LLM_BATCH_DUCKDB_LOCK_WAIT"
        ):
            warehouse.execute("INSERT INTO results VALUES (1)")
    finally:
        holder.kill()
        holder.wait()
