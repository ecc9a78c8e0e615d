"""Airflow DAG for the end-to-end tests: the same review_sentiment job on Anthropic Message Batches.

Only its connection and model differ (the job moves vendor by its connection); it lands in a table
of its own, so its scheduled night runs beside the OpenAI one without touching its rows.
"""

from __future__ import annotations

import dataclasses

from dags.review_sentiment import JOB
from llm_batch.dag_factory import build_batch_dag
from llm_batch.job import ShardLimits

ANTHROPIC_JOB = dataclasses.replace(
    JOB,
    name="review_sentiment_on_anthropic",
    openai_conn_id="local_anthropic",
    model="claude-haiku-4-5",
    target_table="review_sentiment_on_anthropic",
    shard_limits=ShardLimits(max_requests=90),
)

dag = build_batch_dag(ANTHROPIC_JOB, max_active_runs=8)
