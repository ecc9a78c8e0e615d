"""What is particular to DuckDB: a file held only while in use."""

from __future__ import annotations

from pathlib import Path

import duckdb
import pytest

from llm_batch.warehouse import duckdb_warehouse


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
