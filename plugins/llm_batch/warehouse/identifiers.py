"""Identifier quoting: every table and column name goes into SQL through here, taken literally."""

from __future__ import annotations

from collections.abc import Sequence


def quote_ident(name: str) -> str:
    """Quote one identifier, so any name (reserved word, capitals, spaces, quotes) is taken literally."""
    if not name or "\x00" in name:
        raise ValueError(f"invalid SQL identifier {name!r}")
    return '"' + name.replace('"', '""') + '"'


def table_parts(table: str) -> list[str]:
    """The parts of ``table``, ``schema.table`` or ``catalog.schema.table``."""
    parts = table.split(".")
    if len(parts) > 3 or not all(parts):
        raise ValueError(f"invalid table name {table!r}")
    return parts


def quote_table(table: str) -> str:
    """Quote a table name part by part: ``analytics.Review Sentiment`` -> ``"analytics"."Review Sentiment"``."""
    return ".".join(map(quote_ident, table_parts(table)))


def column_list(names: Sequence[str]) -> str:
    return ", ".join(map(quote_ident, names))


def join_on(keys: Sequence[str], left: str = "t", right: str = "r") -> str:
    """The condition matching ``left`` and ``right`` rows on every key column."""
    return " AND ".join(f"{left}.{quote_ident(key)} = {right}.{quote_ident(key)}" for key in keys)
