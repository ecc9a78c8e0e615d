"""Rows that could not replace a table's rows cleanly are refused before anything changes."""

from __future__ import annotations

import pyarrow as pa
import pytest

from llm_batch.warehouse import Warehouse
from tests.llm_batch.warehouse.result_rows import BEFORE, D1, contents, results


@pytest.mark.parametrize(
    ("rows", "message"),
    [
        (results(("a", D1, "x", 0.0), ("a", D1, "y", 1.0)), "repeat the key"),
        (results((None, D1, "x", 0.0)), "NULL 'review_key'"),
        (results(("a", D1, "x", 0.0)).drop_columns(["review_date"]), "not among the rows' columns"),
    ],
)
def test_keys_that_cannot_replace_cleanly_are_refused(
    loaded: Warehouse, rows: pa.Table, message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        loaded.replace_rows("results", rows, match_columns=["review_key", "review_date"])
    assert contents(loaded) == BEFORE
