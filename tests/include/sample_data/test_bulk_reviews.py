"""The bulk sample: exactly the rows asked for, of one day, with a newer version for 1 % of the keys."""

from __future__ import annotations

import datetime as dt

import duckdb

from include.sample_data.bulk_reviews import write_bulk_reviews

DAY = dt.date(2026, 3, 31)


def test_the_rows_asked_for_of_one_day_with_one_key_in_a_hundred_repeated_later(tmp_path):
    path = tmp_path / "source.duckdb"
    write_bulk_reviews(path, 1_000, DAY)

    with duckdb.connect(str(path), read_only=True) as db:
        rows, keys, days = db.execute(
            "SELECT count(*), count(DISTINCT review_id), list(DISTINCT review_date) FROM reviews"
        ).fetchone()
        older_first = db.execute(
            "SELECT bool_and(n = 2 AND first_created < last_created) FROM (SELECT count(*) AS n, "
            "min(created_at) AS first_created, max(created_at) AS last_created FROM reviews "
            "GROUP BY review_id HAVING count(*) > 1)"
        ).fetchone()[0]
        words = db.execute(
            "SELECT min(len(string_split(review_text, ' '))), max(len(string_split(review_text, ' '))) FROM reviews"
        ).fetchone()

    assert (rows, keys, days) == (1_000, 990, [DAY])
    assert older_first
    assert words[0] >= 20 and words[1] <= 60
