"""Cluster policy of the Celery stack: a run whose id starts with ``SPLIT_RUN_PREFIX`` has its
build run on one worker and every other task on the other, so its files are written on one
machine and read on another. Every other run's tasks stay on the default queue, which both
workers take."""

from __future__ import annotations

BUILD_QUEUE, REST_QUEUE = "build_side", "collect_side"
SPLIT_RUN_PREFIX = "split-workers-"


def task_instance_mutation_hook(task_instance, dag_run) -> None:
    # Scheduler-side, as each task instance (each mapped shard too) is created: the run is known here.
    if dag_run is not None and dag_run.run_id.startswith(SPLIT_RUN_PREFIX):
        task_instance.queue = BUILD_QUEUE if task_instance.task_id == "build" else REST_QUEUE
