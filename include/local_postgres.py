"""The PostgreSQL server of this machine, for tests and benchmarks: standard libpq variables
(PGHOST, PGPORT, PGUSER, PGDATABASE), defaulting to 127.0.0.1:5432, user postgres, database test."""

from __future__ import annotations

import os

from psycopg.conninfo import make_conninfo

LOCAL_POSTGRES_DSN = make_conninfo(
    "",
    host=os.environ.get("PGHOST", "127.0.0.1"),
    port=os.environ.get("PGPORT", "5432"),
    user=os.environ.get("PGUSER", "postgres"),
    dbname=os.environ.get("PGDATABASE", "test"),
    connect_timeout=5,
)
