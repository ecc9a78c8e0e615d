"""The PostgreSQL server the tests use: standard libpq variables, defaulting to this machine's."""

from __future__ import annotations

from include.local_postgres import LOCAL_POSTGRES_DSN as TEST_DSN

__all__ = ["TEST_DSN"]
