"""Cluster policy of the two-worker S3 stack: the build runs on one worker, every other task on
the other, so each run's files are written on one machine and read on another."""

from __future__ import annotations

BUILD_QUEUE, REST_QUEUE = "build_side", "collect_side"


def task_policy(task) -> None:
    task.queue = BUILD_QUEUE if task.task_id == "build" else REST_QUEUE
