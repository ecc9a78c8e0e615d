"""What is particular to DuckDB: a file held only while in use."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc
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


def test_staged_rows_checked_piece_after_piece_in_one_transaction_are_let_go(tmp_path: Path) -> None:
    """A load checks each piece's keys against the target inside its one transaction: the staged
    keys must go with their statement, not stay until commit (8 pieces would hold all 8)."""
    piece_rows = 100_000

    def piece(n: int) -> pa.Table:
        keys = pc.binary_join_element_wise(
            pa.array([f"piece-{n}-"] * piece_rows),
            pa.array(range(piece_rows), pa.int64()).cast(pa.string()),
            "",
        )
        return pa.table({"key": keys, "day": pa.array([dt.date(2026, 5, 1)] * piece_rows, pa.date32())})

    with duckdb_warehouse(tmp_path / "w.duckdb") as wh:
        wh.execute("CREATE TABLE target (key VARCHAR, day DATE)")
        held = []
        with wh.transaction():
            for n in range(8):
                with wh.staged(piece(n)) as staged:
                    newer = wh.read_arrow(
                        f"SELECT count(*) AS n FROM {staged} AS r JOIN target AS t ON t.key = r.key "
                        "WHERE t.day > r.day"
                    )
                    assert newer.column("n")[0].as_py() == 0
                    staged_bytes = piece(n).nbytes
                held.append(pa.total_allocated_bytes())
    assert held[-1] - held[0] < staged_bytes, f"Arrow memory grew piece by piece: {held}"


def test_a_file_warehouse_caps_the_cache_of_blocks_it_reads(tmp_path: Path, monkeypatch) -> None:
    with duckdb_warehouse(tmp_path / "w.duckdb") as wh:
        limit = wh.read_arrow("SELECT current_setting('memory_limit') AS l").column("l")[0].as_py()
        assert limit == "244.1 MiB"  # 256 MB
        wh.execute("CREATE TABLE t AS SELECT range AS n, repeat('x', 100) AS pad FROM range(3000000)")
        # More than the limit in one query still runs: DuckDB spills beside the file.
        assert (
            wh.read_arrow("SELECT count(DISTINCT pad || n) AS d FROM t").column("d")[0].as_py() == 3_000_000
        )
    monkeypatch.setenv("LLM_BATCH_DUCKDB_MEMORY_LIMIT", "1GB")
    with duckdb_warehouse(tmp_path / "w.duckdb", read_only=True) as wh:
        limit = wh.read_arrow("SELECT current_setting('memory_limit') AS l").column("l")[0].as_py()
        assert limit == "953.6 MiB"
    with duckdb_warehouse(":memory:") as wh:  # all its data lives in memory: no cap of ours
        limit = wh.read_arrow("SELECT current_setting('memory_limit') AS l").column("l")[0].as_py()
        assert limit not in ("244.1 MiB", "953.6 MiB")
