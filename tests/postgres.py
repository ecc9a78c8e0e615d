"""The PostgreSQL server the tests use: standard libpq variables, defaulting to this machine's."""

from __future__ import annotations

import os

from psycopg.conninfo import make_conninfo

TEST_DSN = make_conninfo(
    "",
    host=os.environ.get("PGHOST", "127.0.0.1"),
    port=os.environ.get("PGPORT", "5432"),
    user=os.environ.get("PGUSER", "postgres"),
    dbname=os.environ.get("PGDATABASE", "test"),
    connect_timeout=5,
)
