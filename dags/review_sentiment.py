"""Airflow DAG: nightly sentiment of the day's customer reviews, through the Batch API at half price.

Declared here, run by the library: see ``llm_batch.dag_factory`` for the tasks.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from llm_batch.dag_factory import build_batch_dag
from llm_batch.job import BatchJob
from llm_batch.prompts import PromptTemplate

INCLUDE = Path(__file__).resolve().parent.parent / "include"


class ReviewSentiment(BaseModel):
    """The structured answer for one review."""

    label: Literal["positive", "neutral", "negative"]
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(max_length=300)


JOB = BatchJob(
    name="review_sentiment",
    source_sql=(INCLUDE / "sql" / "reviews_of_interval.sql").read_text(),
    key_column="review_id",
    date_column="review_date",
    dedupe_order_column="created_at",
    required_columns=("review_text",),
    prompt=PromptTemplate.load(INCLUDE / "prompts", "review_sentiment", "v1"),
    output_schema=ReviewSentiment,
    model="gpt-4o-mini",
    request_params={"temperature": 0, "max_completion_tokens": 200},
    target_table="review_sentiment",
)

dag = build_batch_dag(JOB)
