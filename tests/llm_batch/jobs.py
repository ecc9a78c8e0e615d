"""Jobs for tests: the DAGs' own declarations, with only what a test needs changed.

Deriving them with ``dataclasses.replace`` keeps the tests on the jobs users run: a change to a
DAG's prompt, schema or parameters is tested as it ships.
"""

from __future__ import annotations

import dataclasses

from dags.review_embeddings import JOB as EMBEDDINGS_JOB
from dags.review_sentiment import JOB as SENTIMENT_JOB
from dags.review_sentiment import ReviewSentiment as Sentiment
from llm_batch.job import RESPONSES, BatchJob

__all__ = ["Sentiment", "embeddings_job", "responses_job", "sentiment_job"]


def sentiment_job(**overrides) -> BatchJob:
    return dataclasses.replace(SENTIMENT_JOB, **overrides)


def responses_job(**overrides) -> BatchJob:
    return sentiment_job(endpoint=RESPONSES, **overrides)


def embeddings_job(**overrides) -> BatchJob:
    return dataclasses.replace(EMBEDDINGS_JOB, **overrides)
