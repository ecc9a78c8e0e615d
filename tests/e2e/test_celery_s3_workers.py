"""Two Celery workers that share nothing but S3 and the databases: each has its own AIRFLOW_HOME
and temp directory, the run files live on the stack's S3 server, and a cluster policy sends the
build to one worker and every other task to the other.

About ten minutes on a 2-core machine, so it runs with ``make test-s3-workers`` and not in
``make test``, which shows the same sharing in two worker processes
(``tests/llm_batch/storage/test_runs_on_s3.py``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from include.batch_api_process import free_port
from include.object_store import ObjectStore
from tests.e2e.conftest import DAG_ID, E2E, PROJECT, TODAY, RunningStack, running_on_celery
from tests.e2e.test_celery_stack import celery_worker_names
from tests.e2e.test_local_stack import assert_one_row_per_review
from tests.e2e.worker_queues.airflow_local_settings import BUILD_QUEUE, REST_QUEUE

pytestmark = [
    pytest.mark.slow,
    pytest.mark.needs_postgres,
    pytest.mark.timeout(1200),
    pytest.mark.skipif(
        os.environ.get("LLM_BATCH_E2E_S3_WORKERS") != "1",
        reason="a ten-minute Celery stack: run it with make test-s3-workers",
    ),
]


@pytest.fixture(scope="module")
def s3_celery_stack(tmp_path_factory) -> Iterator[RunningStack]:
    root = tmp_path_factory.mktemp("celery-s3-stack")
    yield from running_on_celery(
        root,
        redis_db=8,
        object_store_port=free_port(),
        worker_queues=(BUILD_QUEUE, REST_QUEUE),
        python_path=(E2E / "worker_queues",),  # its airflow_local_settings routes the tasks
    )


def run_files_on_disk(root: Path) -> list[Path]:
    return [p for p in root.rglob("*") if p.suffix in (".jsonl", ".parquet")]


def test_a_run_built_on_one_worker_and_collected_on_the_other_lands_every_row(s3_celery_stack):
    day, stack = TODAY - dt.timedelta(days=2), s3_celery_stack.stack
    run_id = f"s3-workers-{day}"
    run = s3_celery_stack.run_day(day, run_id)

    assert run["state"] == "success"
    assert_one_row_per_review(s3_celery_stack, day)
    tis = s3_celery_stack.api.task_instances(DAG_ID, run_id)
    queues = {(ti["task_id"], ti["queue"]) for ti in tis if ti["state"] == "success"}
    assert ("build", BUILD_QUEUE) in queues and ("load", REST_QUEUE) in queues
    assert {queue for task, queue in queues if task.endswith(".collect")} == {REST_QUEUE}
    assert celery_worker_names(s3_celery_stack) == {"worker-1", "worker-2"}
    store: ObjectStore = stack.object_store
    keys = store.keys(f"llm_batch_files/{DAG_ID}/{day.isoformat()}")
    assert any(key.endswith("/index.parquet") for key in keys) and any(key.endswith(".jsonl") for key in keys)
    for worker in ("worker-1", "worker-2"):
        assert run_files_on_disk(stack.worker_home(worker)) == [], f"{worker} wrote a run file to its disk"
    assert run_files_on_disk(stack.airflow.home) == [] and not (stack.root / "files").exists()
    ledger = s3_celery_stack.warehouse("SELECT * FROM llm_batch_ledger")
    assert ledger and str(stack.root) not in json.dumps(ledger, default=str)
    assert str(PROJECT) not in json.dumps(ledger, default=str)
