"""The scratch database that collapses a window's rows: types survive it, and it leaves nothing behind."""

from __future__ import annotations

import datetime as dt

import pyarrow as pa
import pytest

from llm_batch.collapsed_rows import COPIES, CollapsedRows
from tests.llm_batch.jobs import sentiment_job

PARIS = "Europe/Paris"


def rows() -> pa.Table:
    created = [dt.datetime(2026, 3, 1, 9, tzinfo=dt.UTC) + dt.timedelta(hours=h) for h in range(4)]
    return pa.table(
        {
            "review_id": ["b", "a", "b", None],
            "review_date": pa.array([dt.date(2026, 3, 2), dt.date(2026, 3, 3), dt.date(2026, 3, 1), None]),
            "created_at": pa.array(created, pa.timestamp("us", tz=PARIS)),
            "rating": pa.array([1, 2, 3, 4], pa.int8()),
            "review_text": ["old b", "a", "new b", "no key"],
        }
    )


def test_rows_come_back_one_per_key_in_custom_id_order_typed_as_they_went_in():
    with CollapsedRows(sentiment_job(), chunk_rows=2) as collapsed:
        collapsed.add(rows().to_batches(max_chunksize=1))
        chunks = list(collapsed.chunks())
        assert (collapsed.rows_in, collapsed.duplicates_collapsed) == (4, 1)
    assert [chunk.num_rows for chunk in chunks] == [2, 1]
    back = pa.concat_tables(chunks)
    assert back.select(rows().column_names).schema == rows().schema  # the time zone and int8 too
    assert back.column("review_text").to_pylist() == ["a", "new b", "no key"]
    assert back.column(COPIES).to_pylist() == [1, 2, 1]
    assert back.column("review_date").to_pylist()[:2] == [dt.date(2026, 3, 3), dt.date(2026, 3, 1)]
    assert back.column("created_at")[1].as_py().tzinfo.key == PARIS


def test_the_scratch_directory_goes_with_the_block_and_rows_cannot_be_added_after_reading():
    with CollapsedRows(sentiment_job()) as collapsed:
        collapsed.add(rows().to_batches())
        scratch = collapsed.scratch
        assert collapsed.kept == 3 and any(scratch.iterdir())
        with pytest.raises(RuntimeError, match="added after"):
            collapsed.add(rows().to_batches())
    assert not scratch.exists()
