"""Airflow DAG: nightly embeddings of the day's reviews, for search and clustering downstream.

The same library as the sentiment job, another endpoint: only the declaration differs.
"""

from __future__ import annotations

from pathlib import Path

from llm_batch.dag_factory import build_batch_dag
from llm_batch.job import EMBEDDINGS, BatchJob

INCLUDE = Path(__file__).resolve().parent.parent / "include"

JOB = BatchJob(
    name="review_embeddings",
    source_sql=(INCLUDE / "sql" / "reviews_of_interval.sql").read_text(),
    key_column="review_id",
    date_column="review_date",
    dedupe_order_column="created_at",
    input_column="review_text",
    endpoint=EMBEDDINGS,
    model="text-embedding-3-small",
    request_params={"dimensions": 256, "encoding_format": "float"},
    target_table="review_embeddings",
)

dag = build_batch_dag(JOB)
