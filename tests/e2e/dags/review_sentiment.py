"""Airflow DAG for the end-to-end tests: the project's review_sentiment job with small shards.

Small shards make every run map several submit/wait/collect tasks, so the tests see shards
spread over workers and faults hitting one shard among several.
"""

from __future__ import annotations

import dataclasses

from dags.review_sentiment import JOB
from llm_batch.dag_factory import build_batch_dag
from llm_batch.job import ShardLimits

dag = build_batch_dag(dataclasses.replace(JOB, shard_limits=ShardLimits(max_requests=90)), max_active_runs=8)
