"""The interface every warehouse implements: SQL reads, statements, and Arrow loads that replace rows.

Everything moves as Arrow tables: loads never go row by row (DuckDB scans the Arrow table in
place, PostgreSQL receives it through ``COPY``). SQL handed to :meth:`Warehouse.read_arrow`,
:meth:`Warehouse.execute` and ``delete_where`` writes its parameters as ``:name`` in both dialects.
"""

from __future__ import annotations

import time
import uuid
from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, ClassVar, Self

import pyarrow as pa

from llm_batch.warehouse.arrow_types import column_type
from llm_batch.warehouse.identifiers import column_list, quote_ident, quote_table, table_parts
from llm_batch.warehouse.keys import check_keys


class LockTimeout(TimeoutError):
    """Another holder kept a named lock longer than the caller was willing to wait."""


@dataclass(frozen=True)
class ReplaceResult:
    deleted: int
    inserted: int


class Warehouse(ABC):
    """A warehouse the pipeline reads with SQL and loads with Arrow tables.

    Open it in a ``with`` block: the connection is made on first use and dropped on exit, so a task
    holds a DuckDB file (which admits one writing process) only while it works.
    """

    dialect: ClassVar[str]
    _declares_primary_keys: ClassVar[bool] = True
    _in_transaction = False

    @abstractmethod
    def read_arrow(self, sql: str, params: dict[str, Any] | None = None) -> pa.Table:
        """Run a query and return its rows; ``:name`` in ``sql`` takes the value ``params[name]``."""

    @abstractmethod
    def read_batches(
        self, sql: str, params: dict[str, Any] | None = None, *, batch_rows: int
    ) -> Iterator[pa.RecordBatch]:
        """Run a query and yield its rows in batches of at most ``batch_rows``, typed as :meth:`read_arrow`
        types them; an empty result yields one empty batch, so its columns are known.

        For results larger than memory: only one batch is held at a time. Read the batches to their
        end (or close the iterator) before the next statement on this warehouse.
        """

    @abstractmethod
    def execute(self, sql: str, params: dict[str, Any] | None = None) -> int:
        """Run one statement and commit it (unless inside :meth:`transaction`); return its rowcount, or -1."""

    @contextmanager
    def transaction(self) -> Iterator[None]:
        """Group the statements of the ``with`` block into one transaction, committed at its end.

        Nested calls join the outer transaction, so several tables can be replaced all or nothing.
        """
        with self._transaction():
            yield

    @abstractmethod
    def _transaction(self) -> AbstractContextManager[Any]:
        """Begin, commit or roll back around the block; inside an open transaction only join it."""

    @contextmanager
    def exclusive(self, name: str, *, timeout: float) -> Iterator[None]:
        """Hold the lock ``name`` for the ``with`` block, shared by every writer of this warehouse.

        Waits at most ``timeout`` seconds, then raises :class:`LockTimeout`. A holder that dies
        (its process, or its PostgreSQL session) releases the lock with it, so it never outlives
        its work. Not re-entrant: do not take the same name twice from one warehouse.
        """
        deadline = time.monotonic() + timeout
        pause = 0.01
        while not self._try_lock(name):
            if time.monotonic() >= deadline:
                raise LockTimeout(f"{name!r} is still held by another writer after {timeout:g} s")
            time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
            pause = min(pause * 2, 0.5)
        try:
            yield
        finally:
            self._unlock(name)

    @abstractmethod
    def _try_lock(self, name: str) -> bool:
        """Take the lock ``name`` if it is free; return whether it was taken."""

    @abstractmethod
    def _unlock(self, name: str) -> None:
        """Release the lock ``name`` taken by :meth:`_try_lock`."""

    @contextmanager
    def staged(self, rows: pa.Table) -> Iterator[str]:
        """``rows`` as a relation SQL can join, for the ``with`` block; yields its quoted name.

        For sets too large to bind as one parameter (the tens of thousands of keys a run checks):
        DuckDB scans the Arrow table in place, PostgreSQL receives it in a temporary table by COPY.
        """
        name = f"_llm_batch_staged_{uuid.uuid4().hex}"
        self._stage(name, rows)
        try:
            yield quote_ident(name)
        finally:
            self._unstage(name)

    @abstractmethod
    def _stage(self, name: str, rows: pa.Table) -> None:
        """Make ``rows`` readable as the relation ``name`` on this connection."""

    @abstractmethod
    def _unstage(self, name: str) -> None:
        """Drop the relation made by :meth:`_stage`."""

    @abstractmethod
    def close(self) -> None:
        """Drop the connection; the next call opens a new one."""

    @abstractmethod
    def table_exists(self, table: str) -> bool:
        """Whether ``table`` (maybe schema-qualified) names a table or view, as a query would resolve it."""

    def create_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
        """Create ``table`` unless it exists, with its primary key declared in every dialect.

        For tables written with ``INSERT ... ON CONFLICT``, which needs the key; in one statement,
        since it runs each time such a table is opened. Fields not nullable become ``NOT NULL``.
        """
        self.execute(_create_statement(table, schema, primary_key, self.dialect))

    def ensure_table(self, table: str, schema: pa.Schema, primary_key: Sequence[str] = ()) -> None:
        """Create ``table`` with SQL types mapped from ``schema``, or add the columns it lacks.

        Adding columns lets a job gain an output field without a migration. Existing columns are
        left as they are, types included. The table's schema is created when missing.
        """
        _check_key_in_schema(table, schema, primary_key)
        declared_key = primary_key if self._declares_primary_keys else ()
        create = _create_statement(table, schema, declared_key, self.dialect)  # refuses unmapped types first
        parts = table_parts(table)
        schema_name = parts[-2] if len(parts) > 1 else None
        if schema_name and not self._schema_exists(schema_name):
            self.execute(f"CREATE SCHEMA IF NOT EXISTS {quote_ident(schema_name)}")
        self.execute(create)
        quoted = quote_table(table)
        existing = set(self.read_arrow(f"SELECT * FROM {quoted} LIMIT 0").column_names)
        for field in schema:
            if field.name not in existing:
                self.execute(
                    f"ALTER TABLE {quoted} ADD COLUMN IF NOT EXISTS "
                    f"{quote_ident(field.name)} {column_type(field, self.dialect)}"
                )

    def replace_rows(
        self,
        table: str,
        rows: pa.Table,
        *,
        match_columns: Sequence[str],
        delete_where: str | None = None,
        params: dict[str, Any] | None = None,
    ) -> ReplaceResult:
        """Replace rows of ``table`` by ``rows`` in one transaction.

        Deletes the rows whose ``match_columns`` values appear in ``rows``, and, with
        ``delete_where``, the rows matching that condition (``:name`` parameters from ``params``),
        e.g. to clear a date of keys that no longer have a result; then inserts all of ``rows``.
        If anything fails nothing is deleted. ``rows`` may carry a subset of the table's columns.
        """
        match_columns = list(match_columns)
        check_keys(table, rows, match_columns)
        return self._replace(quote_table(table), rows, match_columns, delete_where, params or {})

    @abstractmethod
    def _replace(
        self, table: str, rows: pa.Table, keys: list[str], delete_where: str | None, params: dict[str, Any]
    ) -> ReplaceResult: ...

    def _schema_exists(self, name: str) -> bool:
        # Checked first because PostgreSQL demands CREATE privilege even for CREATE SCHEMA IF NOT EXISTS.
        found = self.read_arrow(
            "SELECT 1 AS x FROM information_schema.schemata WHERE schema_name = :s", {"s": name}
        )
        return found.num_rows > 0

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def _check_key_in_schema(table: str, schema: pa.Schema, primary_key: Sequence[str]) -> None:
    if unknown := [name for name in primary_key if name not in schema.names]:
        raise ValueError(f"primary key columns {unknown} are not in the schema of {table}")


def _create_statement(table: str, schema: pa.Schema, primary_key: Sequence[str], dialect: str) -> str:
    _check_key_in_schema(table, schema, primary_key)
    definitions = [
        f"{quote_ident(field.name)} {column_type(field, dialect)}{'' if field.nullable else ' NOT NULL'}"
        for field in schema
    ]
    if primary_key:
        definitions.append(f"PRIMARY KEY ({column_list(primary_key)})")
    return f"CREATE TABLE IF NOT EXISTS {quote_table(table)} ({', '.join(definitions)})"
