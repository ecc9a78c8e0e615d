"""Identifiers are quoted part by part, so any table or column name is taken literally."""

from __future__ import annotations

import pytest

from llm_batch.warehouse import Warehouse
from llm_batch.warehouse.identifiers import join_on, quote_ident, quote_table


@pytest.mark.parametrize(
    ("table", "quoted"),
    [
        ("review_sentiment", '"review_sentiment"'),
        ("analytics.review_sentiment", '"analytics"."review_sentiment"'),
        ("db.Analytics.Review Sentiment", '"db"."Analytics"."Review Sentiment"'),
        ('say "hi"', '"say ""hi"""'),
        ("select", '"select"'),
    ],
)
def test_table_names_are_quoted_part_by_part(table: str, quoted: str) -> None:
    assert quote_table(table) == quoted


@pytest.mark.parametrize("table", ["", "a..b", ".a", "a.b.c.d", "nul\x00l"])
def test_names_that_cannot_be_identifiers_are_refused(table: str) -> None:
    with pytest.raises(ValueError, match="invalid"):
        quote_table(table)


def test_keys_join_by_their_quoted_names() -> None:
    assert join_on(["Review Id", "day"]) == 't."Review Id" = r."Review Id" AND t."day" = r."day"'


def test_a_quoted_name_is_the_name_itself(warehouse: Warehouse) -> None:
    name = 'Mixed Case "quoted" select'
    warehouse.execute(f"CREATE TABLE {quote_table(name)} ({quote_ident('Key Column')} INTEGER)")
    warehouse.execute(f"INSERT INTO {quote_table(name)} VALUES (7)")
    assert warehouse.read_arrow(f"SELECT * FROM {quote_table(name)}").to_pylist() == [{"Key Column": 7}]
