"""Jobs for tests: the same declarations shape as the DAG files, pointed at test connections."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

from llm_batch.job import EMBEDDINGS, RESPONSES, BatchJob, ShardLimits
from llm_batch.prompts import PromptTemplate

INCLUDE = Path(__file__).resolve().parents[2] / "include"
SOURCE_SQL = (INCLUDE / "sql" / "reviews_of_interval.sql").read_text()


class Sentiment(BaseModel):
    label: Literal["positive", "neutral", "negative"]
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(max_length=300)


def sentiment_job(**overrides) -> BatchJob:
    fields = {
        "name": "review_sentiment",
        "source_sql": SOURCE_SQL,
        "key_column": "review_id",
        "date_column": "review_date",
        "dedupe_order_column": "created_at",
        "required_columns": ("review_text",),
        "prompt": PromptTemplate.load(INCLUDE / "prompts", "review_sentiment", "v1"),
        "output_schema": Sentiment,
        "model": "gpt-4o-mini",
        "request_params": {"temperature": 0},
        "target_table": "review_sentiment",
        "shard_limits": ShardLimits(),
    }
    return BatchJob(**{**fields, **overrides})


def responses_job(**overrides) -> BatchJob:
    return sentiment_job(endpoint=RESPONSES, **overrides)


def embeddings_job(**overrides) -> BatchJob:
    fields = {
        "name": "review_embeddings",
        "source_sql": SOURCE_SQL,
        "key_column": "review_id",
        "date_column": "review_date",
        "input_column": "review_text",
        "endpoint": EMBEDDINGS,
        "model": "text-embedding-3-small",
        "request_params": {"dimensions": 64, "encoding_format": "float"},
        "target_table": "review_embeddings",
    }
    return BatchJob(**{**fields, **overrides})
