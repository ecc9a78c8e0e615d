"""DuckDB: one embedded database file (or ``:memory:``), loaded by scanning Arrow tables in place."""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from llm_batch.warehouse.base import ReplaceResult, Warehouse
from llm_batch.warehouse.identifiers import join_on, table_parts
from llm_batch.warehouse.keys import refuse_repeated_keys
from llm_batch.warehouse.parameters import bind_named_params

log = logging.getLogger(__name__)

LOCK_WAIT_ENV = "LLM_BATCH_DUCKDB_LOCK_WAIT_SECONDS"
DEFAULT_LOCK_WAIT_SECONDS = 300.0


# DuckDB keeps every block of the file it has read or written cached up to its memory limit, 80 %
# of the machine's memory by default: a task's memory would follow the size of the tables it scans
# and the rows it lands (``bench_task_memory.py``: a 5M-row load peaked at 884 MB with 512MB and
# 648 MB with 256MB, in the same time, against 520 MB at 1M rows). A file database gets this limit
# instead; work beyond it spills to ``<file>.tmp``. ``:memory:`` keeps DuckDB's own.
MEMORY_LIMIT_ENV = "LLM_BATCH_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "256MB"


class DuckDBFileLocked(RuntimeError):
    """Another process held the DuckDB file for longer than this one would wait."""


# DuckDB admits one writing process per file, so named locks only need to hold across the threads
# of this process: one lock per (database file, name).
_LOCKS: dict[tuple[str, str], threading.Lock] = {}
_LOCKS_GUARD = threading.Lock()


class DuckDBWarehouse(Warehouse):
    """A DuckDB database file (or ``:memory:``).

    ``ensure_table`` does not declare primary keys here: DuckDB backs them with an ART index whose
    deletes cost ~25 s per million rows, which would make every re-run of a date crawl.
    ``replace_rows`` refuses duplicate keys itself, so the tables it writes stay keyed all the same.
    """

    dialect = "duckdb"
    _declares_primary_keys = False

    def __init__(
        self, path: str | Path, read_only: bool = False, lock_wait_seconds: float | None = None
    ) -> None:
        self.path = str(path)
        self.read_only = read_only
        if lock_wait_seconds is None:
            lock_wait_seconds = float(os.environ.get(LOCK_WAIT_ENV, DEFAULT_LOCK_WAIT_SECONDS))
        self.lock_wait_seconds = lock_wait_seconds
        self._con: duckdb.DuckDBPyConnection | None = None
        self._staged: dict[str, pa.Table] = {}

    def __repr__(self) -> str:
        return f"DuckDBWarehouse({self.path!r}, read_only={self.read_only})"

    def _connection(self) -> duckdb.DuckDBPyConnection:
        if self._con is None:
            con = self._connect_waiting()
            if self.path != ":memory:":
                limit = os.environ.get(MEMORY_LIMIT_ENV, DEFAULT_MEMORY_LIMIT)
                # A setting of the database instance, not a connect option: this process may hold
                # the same file open elsewhere, and DuckDB refuses a second, differently configured open.
                con.execute("SET memory_limit = $limit", {"limit": limit}).fetchall()
            self._con = con
        return self._con

    def _connect_waiting(self) -> duckdb.DuckDBPyConnection:
        """Open the file, waiting with backoff while another process holds it (a person reading
        results, another task writing), for at most ``lock_wait_seconds``; log who holds it."""
        started = time.monotonic()
        delay, next_log = 0.05, 0.0
        while True:
            try:
                return duckdb.connect(self.path, read_only=self.read_only)
            except duckdb.IOException as exc:
                if "lock" not in str(exc).lower():
                    raise
                waited = time.monotonic() - started
                holder = _lock_holder(str(exc))
                if waited >= self.lock_wait_seconds:
                    raise DuckDBFileLocked(
                        f"{self.path} stayed locked by {holder} for {waited:.0f} s, longer than "
                        f"{self.lock_wait_seconds:.0f} s ({LOCK_WAIT_ENV}): close that connection, "
                        "or read the warehouse in short read-only sessions while runs write"
                    ) from exc
                if waited >= next_log:
                    log.warning(
                        "Waiting for %s: it is locked by %s (%.0f s so far)", self.path, holder, waited
                    )
                    next_log = waited + 30.0
                time.sleep(min(delay, max(0.0, self.lock_wait_seconds - waited)))
                delay = min(delay * 2, 2.0)

    def read_arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        query, values = bind_named_params(sql, params, self.dialect)
        con = self._connection()
        named = self._staged_in(query)
        if len(named) == 1 and not values:
            # On a relation over the one staged table it reads: that leaves nothing behind in the
            # transaction, where a view would keep its Arrow table until commit.
            (name,) = named
            return con.from_arrow(self._staged[name]).query(name, query).to_arrow_table()
        with self._registered(named):
            # con.sql hands Arrow the result without the extra copy of a DB-API cursor.
            return con.sql(query, params=values).to_arrow_table()

    def read_batches(
        self, sql: str, params: dict[str, Any] | None = None, *, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        query, values = bind_named_params(sql, params, self.dialect)
        # A cursor of its own, so a statement run on this warehouse meanwhile cannot cut the stream short.
        with self._connection().cursor() as cursor:
            reader = cursor.sql(query, params=values).to_arrow_reader(batch_rows)
            empty = True
            for batch in reader:
                if batch.num_rows:
                    empty = False
                    yield batch
            if empty:
                yield pa.RecordBatch.from_pylist([], schema=reader.schema)

    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        query, values = bind_named_params(sql, params, self.dialect)
        with self._registered(self._staged_in(query)):
            # Outside transaction() DuckDB commits the statement by itself.
            return _run(self._connection(), query, values)

    def table_exists(self, table: str) -> bool:
        # DuckDB matches names without regard to case, and resolves a bare name in the current schema.
        *qualifiers, name = table_parts(table)
        schema = qualifiers[-1] if qualifiers else None
        catalog = qualifiers[-2] if len(qualifiers) > 1 else None
        found = self.read_arrow(
            "SELECT count(*) AS n FROM information_schema.tables WHERE lower(table_name) = lower(:name) "
            "AND lower(table_schema) = lower(coalesce(:schema, current_schema())) "
            "AND lower(table_catalog) = lower(coalesce(:catalog, current_database()))",
            {"name": name, "schema": schema, "catalog": catalog},
        )
        return found.column("n")[0].as_py() > 0

    @contextmanager
    def _transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        con = self._connection()
        if self._in_transaction:
            yield con
            return
        con.begin()
        self._in_transaction = True
        try:
            yield con
        except BaseException:
            con.rollback()
            raise
        else:
            con.commit()
        finally:
            self._in_transaction = False

    def _try_lock(self, name: str) -> bool:
        return self._named_lock(name).acquire(blocking=False)

    def _unlock(self, name: str) -> None:
        self._named_lock(name).release()

    def _named_lock(self, name: str) -> threading.Lock:
        # A private in-memory database is this object's alone; a file is shared by every connection to it.
        database = f"memory:{id(self)}" if self.path == ":memory:" else os.path.realpath(self.path)
        with _LOCKS_GUARD:
            return _LOCKS.setdefault((database, name), threading.Lock())

    def _stage(self, name: str, rows: pa.Table) -> None:
        # Kept here and scanned in place by each statement that names it, not registered as a view
        # for the block: a view dropped inside an open transaction keeps its Arrow table alive
        # until commit, so a load checking piece after piece in one transaction held every piece.
        self._staged[name] = rows

    def _unstage(self, name: str) -> None:
        self._staged.pop(name, None)

    def _staged_in(self, query: str) -> list[str]:
        """The staged tables ``query`` names."""
        return [name for name in self._staged if name in query]

    @contextmanager
    def _registered(self, named: list[str]) -> Iterator[None]:
        """The staged tables ``named``, as views for one statement alone."""
        con = self._connection()
        for name in named:
            con.register(name, self._staged[name])  # a view over the Arrow table: nothing is copied
        try:
            yield
        finally:
            for name in named:
                with suppress(
                    duckdb.Error
                ):  # inside an aborted transaction the view goes with the connection
                    con.unregister(name)

    def _replace(
        self, table: str, rows: pa.Table, keys: list[str], delete_where: str | None, params: dict[str, Any]
    ) -> ReplaceResult:
        con = self._connection()
        # A relation over the Arrow table, scanned in place: nothing is copied. Not a view
        # registered by name: one dropped inside an open transaction keeps its Arrow table alive
        # until commit, so a load replaced piece by piece in one transaction would hold every piece.
        scanned = con.from_arrow(rows)
        refuse_repeated_keys(scanned, table, keys)
        deleted = inserted = 0
        with self._transaction():
            if delete_where:
                condition, values = bind_named_params(delete_where, params, self.dialect)
                deleted += _run(con, f"DELETE FROM {table} WHERE {condition}", values)
            if rows.num_rows:
                deleted += _changed(
                    scanned.query("r", f"DELETE FROM {table} AS t USING r WHERE {join_on(keys)}")
                )
                inserted = _changed(scanned.query("r", f"INSERT INTO {table} BY NAME SELECT * FROM r"))
        return ReplaceResult(deleted=deleted, inserted=inserted)

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None


def _run(con: duckdb.DuckDBPyConnection, sql: str, params: dict[str, Any] | None = None) -> int:
    """Run a statement to its end and return its rowcount (DuckDB blocks a connection on an unread result)."""
    con.execute(sql, params or {})
    con.complete()
    return con.rowcount


def _changed(statement: duckdb.DuckDBPyRelation) -> int:
    """How many rows a DELETE or INSERT run by ``DuckDBPyRelation.query`` changed (it ran once, then)."""
    ((count,),) = statement.fetchall()
    return count


def duckdb_warehouse(
    path: str | Path, read_only: bool = False, *, lock_wait_seconds: float | None = None
) -> DuckDBWarehouse:
    """A DuckDB warehouse in the file at ``path`` (``":memory:"`` for a private in-memory one)."""
    return DuckDBWarehouse(path, read_only=read_only, lock_wait_seconds=lock_wait_seconds)


def _lock_holder(message: str) -> str:
    """Who holds the file, from DuckDB's message ("Conflicting lock is held in <program> (PID n)")."""
    marker = "is held in "
    if marker not in message:
        return "another process"
    return message.split(marker, 1)[1].split(". ")[0].rstrip(".")
