"""From an Airflow connection id to a warehouse, through the providers' hooks."""

from __future__ import annotations

import json
from pathlib import Path

import psycopg
import pytest

from llm_batch.warehouse import DuckDBWarehouse, PostgresWarehouse, warehouse_for_conn_id
from llm_batch.warehouse.connections import postgres_dsn
from tests.postgres import TEST_DSN as PG_DSN


def test_warehouse_for_a_duckdb_connection(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    path = tmp_path / "from_conn.duckdb"
    monkeypatch.setenv("AIRFLOW_CONN_WH_DUCKDB", json.dumps({"conn_type": "duckdb", "host": str(path)}))
    monkeypatch.setenv(
        "AIRFLOW_CONN_WH_DUCKDB_EXTRA", json.dumps({"conn_type": "duckdb", "extra": {"path": str(path)}})
    )
    monkeypatch.setenv("AIRFLOW_CONN_WH_DUCKDB_EMPTY", json.dumps({"conn_type": "duckdb"}))
    with warehouse_for_conn_id("wh_duckdb") as wh:
        assert isinstance(wh, DuckDBWarehouse) and wh.dialect == "duckdb"
        wh.execute("CREATE TABLE t AS SELECT 42 AS n")
    with warehouse_for_conn_id("wh_duckdb_extra", read_only=True) as wh:
        assert wh.read_arrow("SELECT n FROM t").column("n").to_pylist() == [42]
    with pytest.raises(ValueError, match="names no DuckDB file"):
        warehouse_for_conn_id("wh_duckdb_empty")


def test_warehouse_for_a_postgres_connection(monkeypatch: pytest.MonkeyPatch, pg_schema: str) -> None:
    params = psycopg.conninfo.conninfo_to_dict(PG_DSN)
    conn = {
        "conn_type": "postgres",
        "host": params["host"],
        "port": int(params["port"]),
        "login": params["user"],
        "password": "not-a-real-secret",  # trust auth ignores it; it must not leak into repr
        "schema": params["dbname"],
        "extra": {"options": f"-c search_path={pg_schema}", "application_name": "llm_batch_test"},
    }
    monkeypatch.setenv("AIRFLOW_CONN_WH_POSTGRES", json.dumps(conn))
    with warehouse_for_conn_id("wh_postgres") as wh:
        assert isinstance(wh, PostgresWarehouse) and wh.dialect == "postgres"
        assert "not-a-real-secret" not in repr(wh)
        found = wh.read_arrow("SELECT current_database() AS db, current_schema() AS s").to_pylist()
        assert found == [{"db": params["dbname"], "s": pg_schema}]


def test_an_unknown_connection_type_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_WH_MYSQL", json.dumps({"conn_type": "mysql", "host": "db"}))
    with pytest.raises(ValueError, match="'mysql'"):
        warehouse_for_conn_id("wh_mysql")


def connection_env(monkeypatch: pytest.MonkeyPatch, conn_id: str, **conn) -> str:
    monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(conn))
    return conn_id


def test_the_postgres_dsn_keeps_libpq_extras_and_drops_the_hooks_own(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = connection_env(
        monkeypatch,
        "wh_pg_extras",
        conn_type="postgres",
        host="db.example",
        port=6543,
        login="loader",
        password="p@ss word",
        schema="analytics",
        extra={
            "sslmode": "require",
            "keepalives": 0,  # libpq's, even when falsy
            "cursor": "dictcursor",  # the hook's own: a psycopg row factory, not a libpq option
            "sqlalchemy_scheme": "postgresql",  # the hook's own
            "not_an_option": "x",  # libpq would refuse it
        },
    )
    dsn = postgres_dsn(conn_id)
    assert psycopg.conninfo.conninfo_to_dict(dsn) == {
        "host": "db.example",
        "port": "6543",
        "user": "loader",
        "password": "p@ss word",
        "dbname": "analytics",
        "sslmode": "require",
        "keepalives": "0",
    }


def test_the_postgres_dsn_takes_the_hooks_iam_token(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.providers.postgres.hooks.postgres import PostgresHook

    conn_id = connection_env(
        monkeypatch, "wh_pg_iam", conn_type="postgres", host="db.example", login="me", extra={"iam": True}
    )
    monkeypatch.setattr(PostgresHook, "get_iam_token", lambda self, conn: ("iam_user", "token-123", 5439))
    info = psycopg.conninfo.conninfo_to_dict(postgres_dsn(conn_id))
    assert (info["user"], info["password"], info["port"]) == ("iam_user", "token-123", "5439")
    assert "iam" not in info


def test_a_motherduck_connection_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    conn_id = connection_env(monkeypatch, "wh_md", conn_type="duckdb", schema="db", password="token")
    with pytest.raises(ValueError, match="MotherDuck"):
        warehouse_for_conn_id(conn_id)


def test_a_duckdb_connection_naming_a_file_and_motherduck_is_refused_by_the_hook(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    from airflow.exceptions import AirflowException

    conn_id = connection_env(
        monkeypatch, "wh_both", conn_type="duckdb", host=str(tmp_path / "x.duckdb"), password="token"
    )
    with pytest.raises(AirflowException, match="cannot set both"):
        warehouse_for_conn_id(conn_id)
