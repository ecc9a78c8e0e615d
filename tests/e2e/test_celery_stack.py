"""The scale-out shape: CeleryExecutor, Redis broker, two workers, PostgreSQL for metadata and
warehouse. Mapped shards spread over both workers; a backfill and a worker crash hold up."""

from __future__ import annotations

import datetime as dt
import time

import pytest

from tests.e2e.conftest import DAG_ID, TODAY
from tests.e2e.test_local_stack import assert_one_row_per_review, backfill, max_overlap

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
