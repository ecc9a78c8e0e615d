"""Airflow DAGs for the end-to-end tests: the project's review_sentiment job with small shards, and
the same job on Anthropic Message Batches.

Small shards make every run map several submit/wait/collect tasks, so the tests see shards
spread over workers and faults hitting one shard among several. The Anthropic one differs only by
its connection and model (a job moves vendor by its connection) and lands in a table of its own,
so its scheduled night runs beside the OpenAI one without touching its rows.
"""

from __future__ import annotations

import dataclasses

from dags.review_sentiment import JOB
from llm_batch.dag_factory import build_batch_dag
from llm_batch.job import ShardLimits

SMALL_SHARDS = ShardLimits(max_requests=90)
ANTHROPIC_JOB = dataclasses.replace(
    JOB,
    name="review_sentiment_on_anthropic",
    openai_conn_id="local_anthropic",
    model="claude-haiku-4-5",
    target_table="review_sentiment_on_anthropic",
    shard_limits=SMALL_SHARDS,
)

dag = build_batch_dag(dataclasses.replace(JOB, shard_limits=SMALL_SHARDS), max_active_runs=8)
anthropic_dag = build_batch_dag(ANTHROPIC_JOB, max_active_runs=8)
