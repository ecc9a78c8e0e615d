"""A window's source rows, one per key and in custom_id order, held on local disk whatever their number.

The build sends each key once (the greatest ``dedupe_order_column`` value, the last row on ties)
and in custom_id order, so that the same rows always give the same shards. Both need every row of
the window at once. A scratch DuckDB database in a temporary directory does them in SQL within a
fixed memory limit and spills the rest to disk: a night of millions of rows costs disk, not memory.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from types import TracebackType
from typing import Self

import duckdb
import pyarrow as pa

from llm_batch.job import BatchJob
from llm_batch.request_lines import custom_id_for
from llm_batch.warehouse.identifiers import quote_ident

# Columns the rows carry besides their own. Arrival: the row's place in the source's order, which
# breaks ties. Copies: how many source rows share the row's key (1 for a null key).
ARRIVAL = "__llm_batch_arrival"
CUSTOM_ID = "__llm_batch_custom_id"
COPIES = "__llm_batch_copies"

MEMORY_LIMIT = "256MB"  # DuckDB's own buffers; beyond them it spills to the temporary directory
CHUNK_ROWS = 50_000
SORT_RANGE_ROWS = 250_000  # sorted at once; 1M sample reviews sorted within the memory limit


class CollapsedRows:
    """Source rows added batch by batch, read back collapsed to one per key, in custom_id order.

    Use it in a ``with`` block: the scratch database and its files go at the block's end.
    """

    def __init__(
        self, job: BatchJob, *, chunk_rows: int = CHUNK_ROWS, memory_limit: str = MEMORY_LIMIT
    ) -> None:
        self.job = job
        self.chunk_rows = chunk_rows
        self.memory_limit = memory_limit
        self.rows_in = 0
        self._schema: pa.Schema | None = None
        self._directory: tempfile.TemporaryDirectory[str] | None = None
        self._con: duckdb.DuckDBPyConnection | None = None

    def __enter__(self) -> Self:
        self._directory = tempfile.TemporaryDirectory(prefix="llm-batch-rows-")
        where = Path(self._directory.name)
        self._con = duckdb.connect(str(where / "rows.duckdb"))
        self._con.execute(f"SET memory_limit = '{self.memory_limit}'").fetchall()
        self._con.execute(f"SET temp_directory = '{where / 'spill'}'").fetchall()
        self._con.execute("SET preserve_insertion_order = false").fetchall()  # order comes from ARRIVAL alone
        # One thread: DuckDB gives each its share of the limit, and a sort of wide rows needs it whole.
        self._con.execute("SET threads = 1").fetchall()
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, trace: TracebackType | None
    ) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None
        if self._directory is not None:
            self._directory.cleanup()
            self._directory = None

    @property
    def scratch(self) -> Path:
        """The temporary directory, for other files of the same build."""
        if self._directory is None:
            raise RuntimeError("CollapsedRows is used outside its with block")
        return Path(self._directory.name)

    def add(self, batches: Iterable[pa.RecordBatch]) -> None:
        """Store the rows of ``batches``, in the source's order, with their custom_id. Add every row
        before reading any back: the collapse is made once."""
        con = self._connection()
        if _exists(con, "kept_rows"):
            raise RuntimeError("rows were added after the collapsed rows were read")
        safe_id = self.job.endpoint_strategy.custom_id_pattern
        for batch in batches:
            if self._schema is None:
                self._schema = batch.schema
            keys = batch.column(self.job.key_column).to_pylist()
            ids = pa.array([None if k is None else custom_id_for(str(k), safe_id) for k in keys], pa.string())
            arrival = pa.array(range(self.rows_in, self.rows_in + batch.num_rows), pa.int64())
            incoming = (
                pa.Table.from_batches([batch]).append_column(ARRIVAL, arrival).append_column(CUSTOM_ID, ids)
            )
            con.register("incoming", incoming)
            try:
                if self.rows_in == 0 and not _exists(con):
                    con.execute("CREATE TABLE source_rows AS SELECT * FROM incoming").fetchall()
                else:
                    con.execute("INSERT INTO source_rows BY NAME SELECT * FROM incoming").fetchall()
            finally:
                con.unregister("incoming")
            self.rows_in += batch.num_rows

    @property
    def kept(self) -> int:
        """How many rows :meth:`chunks` yields: one per key, and every row without a key."""
        self._collapse()
        ((kept,),) = self._connection().execute("SELECT count(*) FROM kept_rows").fetchall()
        return kept

    @property
    def duplicates_collapsed(self) -> int:
        return self.rows_in - self.kept

    def chunks(self) -> Iterator[pa.Table]:
        """The kept rows in custom_id order (rows without a key last, in arrival order), typed as added,
        with the column ``COPIES``; ``chunk_rows`` at a time.

        Sorted a range of custom_ids at a time: DuckDB's sort of wide rows needs memory that grows
        with the rows sorted (5M sample reviews ran out of 256 MB), a range's stays bounded.
        """
        if self._schema is None:
            return
        self._collapse()
        ranges = [f"{CUSTOM_ID} IS NULL"]
        bounds = self._range_starts()
        for start, end in zip(bounds, [*bounds[1:], None], strict=True):
            below = "" if end is None else f" AND {CUSTOM_ID} < {_literal(end)}"
            ranges.insert(-1, f"{CUSTOM_ID} >= {_literal(start)}{below}")
        for where in ranges:
            reader = (
                self._connection()
                .sql(f"SELECT * FROM kept_rows WHERE {where} ORDER BY {CUSTOM_ID}, {ARRIVAL}")
                .to_arrow_reader(self.chunk_rows)
            )
            for batch in reader:
                if batch.num_rows:
                    yield self._as_added(pa.Table.from_batches([batch]))

    def _range_starts(self) -> list[str]:
        """The first custom_id of each range of about ``SORT_RANGE_ROWS`` kept rows, from a sample.

        The ranges only bound each sort's size: the order of the rows is the same whatever they are.
        """
        con = self._connection()
        ((kept,),) = con.execute(f"SELECT count({CUSTOM_ID}) FROM kept_rows").fetchall()
        ranges = -(-kept // SORT_RANGE_ROWS)
        if ranges <= 1:
            return [""] if kept else []
        sample = con.execute(
            f"SELECT {CUSTOM_ID} FROM kept_rows WHERE {CUSTOM_ID} IS NOT NULL "
            "USING SAMPLE reservoir(20000 ROWS) REPEATABLE (42)"
        ).fetchall()
        ids = sorted(row[0] for row in sample)
        starts = {ids[len(ids) * i // ranges] for i in range(1, ranges)}
        return ["", *sorted(starts)]

    def _collapse(self) -> None:
        con = self._connection()
        if self._schema is None or _exists(con, "kept_rows"):
            return
        key = quote_ident(self.job.key_column)
        order = self.job.dedupe_order_column
        # Arrow's sort, which the in-memory build used, puts nulls last in either direction.
        newest_first = f"{quote_ident(order)} DESC NULLS LAST, " if order else ""
        con.execute(
            f"CREATE TABLE kept_rows AS SELECT * EXCLUDE (__llm_batch_rank) REPLACE ("
            f"CASE WHEN {key} IS NULL THEN 1 ELSE {COPIES} END AS {COPIES}) FROM ("
            f"SELECT *, row_number() OVER (PARTITION BY {key} ORDER BY {newest_first}{ARRIVAL} DESC) AS __llm_batch_rank, "
            f"count(*) OVER (PARTITION BY {key}) AS {COPIES} "
            f"FROM source_rows) WHERE __llm_batch_rank = 1 OR {key} IS NULL"
        ).fetchall()

    def _as_added(self, chunk: pa.Table) -> pa.Table:
        """The source's columns typed as they came (a time zone, say, survives the round trip)."""
        assert self._schema is not None
        for field in self._schema:
            index = chunk.schema.get_field_index(field.name)
            if chunk.schema.field(index).type != field.type:
                chunk = chunk.set_column(index, field, chunk.column(index).cast(field.type))
        return chunk

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            raise RuntimeError("CollapsedRows is used outside its with block")
        return self._con


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _exists(con: duckdb.DuckDBPyConnection, table: str = "source_rows") -> bool:
    ((found,),) = con.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name = ?", [table]).fetchall()
    return found > 0
