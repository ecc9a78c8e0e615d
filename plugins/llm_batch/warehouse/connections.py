"""From an Airflow connection id to a warehouse, read through the DuckDB and PostgreSQL providers' hooks.

The hooks read the connection and decide what it points at (a DuckDB file, a PostgreSQL server
with its IAM token when asked); the warehouse then keeps its own driver connection, so loads stay
Arrow-native instead of going through ``DbApiHook.insert_rows``.
"""

from __future__ import annotations

from copy import deepcopy
from typing import TYPE_CHECKING

from psycopg import pq
from psycopg.conninfo import make_conninfo

from llm_batch.warehouse.duckdb_db import duckdb_warehouse
from llm_batch.warehouse.postgres_db import postgres_warehouse

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from llm_batch.warehouse.base import Warehouse

# Extras that libpq understands (sslmode, options, application_name, ...); others are not for it.
_LIBPQ_KEYWORDS = frozenset(option.keyword.decode() for option in pq.Conninfo.get_defaults())


def warehouse_for_conn_id(
    conn_id: str, read_only: bool = False, *, lock_wait_seconds: float | None = None
) -> Warehouse:
    """The warehouse an Airflow connection describes: conn_type ``duckdb`` or ``postgres``.

    DuckDB: the database file is the connection's ``host`` (else extra ``path``, else ``schema``).
    PostgreSQL: host, port, login, password and ``schema`` as the database name, plus the libpq
    options of the extra such as ``sslmode``, and an IAM token when extra ``iam`` asks for one.
    ``read_only`` opens a DuckDB file for reading only, so several readers may share it;
    PostgreSQL needs no such care and ignores it. ``lock_wait_seconds`` bounds how long a DuckDB
    open waits for a file another process holds (default: ``LLM_BATCH_DUCKDB_LOCK_WAIT_SECONDS``).
    """
    from airflow.sdk import BaseHook  # here, so that importing this module does not start Airflow

    conn = BaseHook.get_connection(conn_id)
    if conn.conn_type == "duckdb":
        return duckdb_warehouse(
            duckdb_path(conn_id), read_only=read_only, lock_wait_seconds=lock_wait_seconds
        )
    if conn.conn_type in ("postgres", "postgresql"):
        return postgres_warehouse(postgres_dsn(conn_id, conn))
    raise ValueError(
        f"connection {conn_id!r} has conn_type {conn.conn_type!r}; expected 'duckdb' or 'postgres'"
    )


def duckdb_path(conn_id: str) -> str:
    """The DuckDB file of a ``duckdb`` connection, as ``DuckDBHook`` reads it (a local file, by its host)."""
    from duckdb_provider.hooks.duckdb_hook import DuckDBHook

    hook = DuckDBHook(duckdb_conn_id=conn_id)  # refuses a connection naming both a file and MotherDuck
    if hook.is_motherduck:
        raise ValueError(
            f"connection {conn_id!r} is a MotherDuck connection (it has a password); "
            "the warehouse takes a local DuckDB file: set its host to the file's path"
        )
    conn = hook.get_connection(conn_id)
    path = conn.host or conn.extra_dejson.get("path") or conn.schema  # the hook's local file is its host
    if not path:
        raise ValueError(
            f"connection {conn_id!r} names no DuckDB file: set its host (or extra 'path'), "
            "or ':memory:' for an in-memory database"
        )
    return path


def postgres_dsn(conn_id: str, conn: Connection | None = None) -> str:
    """The libpq connection string ``PostgresHook.get_conn`` would connect with, for a psycopg connection.

    The hook's rules: ``schema`` is the database, extra ``iam`` fetches a token as the password,
    and the extras it does not reserve for itself go to libpq, here only those libpq knows.
    """
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    hook = PostgresHook(postgres_conn_id=conn_id, connection=conn)
    conn = deepcopy(hook.connection)
    extra = conn.extra_dejson
    if extra.get("iam", False):
        conn.login, conn.password, conn.port = hook.get_iam_token(conn)
    arguments = {
        "host": conn.host,
        "port": conn.port,
        "user": conn.login,
        "password": conn.password,
        "dbname": hook.database or conn.schema,
        # As in the hook, an extra may override a field.
        **{key: value for key, value in extra.items() if key not in hook.ignored_extra_options},
    }
    given = {key: value for key, value in arguments.items() if value is not None and value != ""}
    return make_conninfo("", **{key: value for key, value in given.items() if key in _LIBPQ_KEYWORDS})
