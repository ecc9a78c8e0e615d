"""Reviews by the million for scale runs: one day's rows made by DuckDB, never as Python objects.

The sample of ``reviews.py`` is for reading (varied texts, edge cases); this one is for volume.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import duckdb

VOCABULARY = (  # the words of the texts, split by DuckDB
    "great terrible fine broken love hate works arrived late quickly cheap pricey sturdy flimsy "
    "recommend return refund battery screen sound fit color size quality service box gift daily "
    "again never always mostly okay solid decent awful perfect disappointing excellent"
)


def write_bulk_reviews(path: Path, rows: int, day: dt.date) -> None:
    """``rows`` reviews of ``day``, made by DuckDB (no Python row objects): 1 % repeat the key before them
    with a later ``created_at`` (the newer version wins), texts of 20 to 60 words."""
    words, count = f"string_split('{VOCABULARY}', ' ')", len(VOCABULARY.split())
    with duckdb.connect(str(path)) as db:
        db.execute(
            f"""
            CREATE TABLE reviews AS
            SELECT
                'rv-' || lpad(CAST(CASE WHEN i % 100 = 99 THEN i - 1 ELSE i END AS VARCHAR), 9, '0') AS review_id,
                DATE '{day.isoformat()}' AS review_date,
                TIMESTAMP '{day.isoformat()} 00:00:00' + to_milliseconds(i % 86400000) AS created_at,
                'Product ' || CAST(i % 997 AS VARCHAR) AS product_name,
                ['kitchen', 'garden', 'toys', 'books', 'audio'][1 + i % 5] AS category,
                CAST(1 + hash(i) % 5 AS INTEGER) AS rating,
                'en' AS language,
                array_to_string(
                    list_transform(range(20 + CAST(hash(i, 7) % 41 AS INTEGER)),
                                   lambda k: {words}[1 + CAST(hash(i, k) % {count} AS INTEGER)]),
                    ' ') || '.' AS review_text
            FROM range({rows}) AS t(i)
            """
        )
