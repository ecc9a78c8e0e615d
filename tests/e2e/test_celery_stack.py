"""The scale-out shape: CeleryExecutor, Redis broker, two workers that share nothing but S3 and
the databases, PostgreSQL for metadata and warehouse. Mapped shards spread over both workers; a
run built on one worker is collected on the other; a backfill and a worker crash hold up."""

from __future__ import annotations

import datetime as dt
import json
import time
from pathlib import Path

import pytest

from tests.e2e.conftest import DAG_ID, PROJECT, TODAY
from tests.e2e.test_local_stack import assert_one_row_per_review, backfill, max_overlap
from tests.e2e.worker_queues.airflow_local_settings import BUILD_QUEUE, REST_QUEUE, SPLIT_RUN_PREFIX

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs_postgres,
    pytest.mark.timeout(1800),
]


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


def test_mapped_shards_run_on_both_workers(celery_stack):
    day = days_ago(2)
    run = celery_stack.run_day(day, f"celery-{day}")
    assert run["state"] == "success"
    tis = celery_stack.api.task_instances(DAG_ID, f"celery-{day}")
    shards = [ti for ti in tis if ti["task_id"] == "round_1.submit"]
    assert len(shards) >= 2
    hosts = {ti["hostname"] for ti in tis if ti["state"] == "success" and ti["hostname"]}
    queued_by = {ti.get("queued_by_job_id") for ti in tis}
    assert_one_row_per_review(celery_stack, day)
    print(f"\ncelery: {len(shards)} shards, task hosts {sorted(hosts)}, executor jobs {len(queued_by)}")
    workers = celery_worker_names(celery_stack)
    assert len(workers) >= 2, f"expected two workers to have run tasks, saw {workers}"


def celery_worker_names(stack) -> set[str]:
    """Worker names that logged a task, from their own logs (both run on this one host)."""
    names = set()
    for name in ("worker-1", "worker-2"):
        log = (stack.stack.root / "logs" / f"{name}.log").read_text(errors="replace")
        if "Executing workload" in log or "Task execute_workload" in log or "succeeded in" in log:
            names.add(name)
    return names


def run_files_on_disk(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix in (".jsonl", ".parquet")]


def test_a_run_built_on_one_worker_and_collected_on_the_other_lands_every_row(celery_stack):
    day, stack = days_ago(7), celery_stack.stack
    run_id = f"{SPLIT_RUN_PREFIX}{day}"
    run = celery_stack.run_day(day, run_id)

    assert run["state"] == "success"
    assert_one_row_per_review(celery_stack, day)
    tis = celery_stack.api.task_instances(DAG_ID, run_id)
    queues = {(ti["task_id"], ti["queue"]) for ti in tis if ti["state"] == "success"}
    assert ("build", BUILD_QUEUE) in queues and any(task.endswith(".collect") for task, _ in queues)
    assert {queue for task, queue in queues if task != "build"} == {REST_QUEUE}
    keys = stack.object_store.keys(f"llm_batch_files/{DAG_ID}/{day.isoformat()}")
    assert any(key.endswith("/index.parquet") for key in keys) and any(key.endswith(".jsonl") for key in keys)
    for worker in ("worker-1", "worker-2"):
        assert run_files_on_disk(stack.worker_home(worker)) == [], f"{worker} wrote a run file to its disk"
    assert run_files_on_disk(stack.airflow.home) == [] and not (stack.root / "files").exists()
    ledger = celery_stack.warehouse("SELECT * FROM llm_batch_ledger")
    assert ledger and str(stack.root) not in json.dumps(ledger, default=str)
    assert str(PROJECT) not in json.dumps(ledger, default=str)


def test_a_backfill_on_celery_and_postgres_lands_each_review_once(celery_stack):
    first, last = days_ago(5), days_ago(3)
    dates = (last - first).days + 1
    started = time.monotonic()
    runs = backfill(celery_stack, first, last)
    assert [r["state"] for r in runs] == ["success"] * dates
    assert max_overlap(runs) >= 2
    rows = sum(assert_one_row_per_review(celery_stack, first + dt.timedelta(days=i)) for i in range(dates))
    print(
        f"\ncelery backfill: {dates} runs, {rows} rows, {len(celery_stack.batches())} batches, "
        f"{time.monotonic() - started:.0f} s"
    )


def test_a_celery_worker_dying_after_create_re_attaches(celery_stack):
    day = days_ago(12)
    celery_stack.marker.unlink()
    run = celery_stack.run_day(day, f"celery-crash-{day}")
    assert run["state"] == "success"
    mine = [b for b in celery_stack.batches() if (b.metadata or {}).get("interval") == day.isoformat()]
    keys = [b.metadata["llm_batch_key"] for b in mine]
    assert len(keys) == len(set(keys))
    assert_one_row_per_review(celery_stack, day)
