"""The package keeps the public names of the module it replaced, and safe module names."""

from __future__ import annotations

import pkgutil
import sys
from pathlib import Path

import llm_batch.warehouse

PLUGINS = Path(__file__).resolve().parents[3] / "plugins"


def test_the_public_names_import_from_the_package() -> None:
    from llm_batch.warehouse import (  # noqa: F401
        DuckDBWarehouse,
        PostgresWarehouse,
        ReplaceResult,
        Warehouse,
        duckdb_warehouse,
        postgres_warehouse,
        warehouse_for_conn_id,
    )

    for name in llm_batch.warehouse.__all__:
        assert getattr(llm_batch.warehouse, name).__name__ == name


def test_no_plugin_module_is_named_like_a_top_level_module() -> None:
    """Airflow also loads every file of the plugins folder under its bare name (``sys.modules[stem]``).

    A ``warehouse/duckdb.py`` replaced the real ``duckdb`` module in every task that way.
    """
    # The plugins folder is on the path too: its own entries are what Airflow loads, not clashes.
    elsewhere = [m for m in pkgutil.iter_modules() if Path(getattr(m.module_finder, "path", "")) != PLUGINS]
    top_level = {m.name for m in elsewhere} | set(sys.stdlib_module_names)
    clashes = [p for p in PLUGINS.rglob("*.py") if p.stem in top_level and p.stem != "__init__"]
    assert clashes == []
