"""One submission, many submitters at once (threads, processes): one upload, one batch, all attached.

Two runs for the same date build the same shard and reach submit together. Against the real local
server, on DuckDB and PostgreSQL; uploads and batches are counted through the server's API.
"""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from include.sample_data.reviews import generate_reviews
from include.server_bill import batch_uploads, created_batches
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.build import build_run
from llm_batch.handoffs import Submission
from llm_batch.ledger import BatchLedger, SubmissionBusy
from llm_batch.run_window import RunWindow
from llm_batch.submission import submit_shard
from tests.llm_batch.jobs import sentiment_job

PROJECT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 21)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
SUBMITTERS = 6


@pytest.fixture
def shard(start_server, tmp_path, open_warehouse):
    server = start_server()
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri())
    (spec,) = build_run(job, WINDOW, generate_reviews(DAY, 1, per_day=(30, 30))).shards
    with open_warehouse() as warehouse:
        BatchLedger(warehouse)  # the ledger exists, as after any earlier run
    return server, job, spec


def test_submitters_in_threads_make_one_batch(shard, open_warehouse):
    server, job, spec = shard
    start = threading.Barrier(SUBMITTERS)

    def submit(_: int) -> dict:
        with open_warehouse() as warehouse:
            ledger = BatchLedger(warehouse)
            start.wait()
            return submit_shard(OpenAIBatchBackend(client=server.client()), ledger, job, spec)

    with ThreadPoolExecutor(SUBMITTERS) as pool:
        results = list(pool.map(submit, range(SUBMITTERS)))

    client = server.client()
    assert (batch_uploads(client), created_batches(client)) == (1, 1)
    assert len({r.batch_id for r in results}) == 1
    assert sorted(r.reattached for r in results) == [False] + [True] * (SUBMITTERS - 1)


CHILD = """
import json, sys, time
from pathlib import Path
sys.path[:0] = {paths!r}
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.ledger import BatchLedger
from llm_batch.handoffs import ShardSpec
from llm_batch.submission import submit_shard
from openai import OpenAI
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import WarehouseAt

go = Path({go!r})
while not go.exists():
    time.sleep(0.005)
client = OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
with WarehouseAt(*{where!r})() as warehouse:  # a held DuckDB file is waited for, as by a task
    result = submit_shard(
        OpenAIBatchBackend(client=client), BatchLedger(warehouse), sentiment_job(storage_url={storage!r}),
        ShardSpec.from_xcom({spec!r}),
    )
print(json.dumps(result.to_xcom()))
"""


def test_submitters_in_processes_make_one_batch(shard, open_warehouse, tmp_path):
    server, job, spec = shard
    go = tmp_path / "go"
    code = CHILD.format(
        paths=[str(PROJECT), str(PROJECT / "plugins")],
        go=str(go),
        base_url=server.base_url,
        api_key=server.api_key,
        where=(open_warehouse.kind, open_warehouse.where),
        storage=job.storage_url,
        spec=spec.to_xcom(),
    )
    children = [
        subprocess.Popen(
            [sys.executable, "-c", code], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(4)
    ]
    go.touch()  # all at once (DuckDB: as fast as its one writer allows)
    outputs = [child.communicate(timeout=180) for child in children]

    assert [child.returncode for child in children] == [0] * 4, [err[-2000:] for _, err in outputs]
    results = [Submission.from_xcom(json.loads(out.strip().splitlines()[-1])) for out, _ in outputs]
    client = server.client()
    assert (batch_uploads(client), created_batches(client)) == (1, 1)
    assert len({r.batch_id for r in results}) == 1
    assert sorted(r.reattached for r in results) == [False, True, True, True]


def test_a_submitter_waits_a_bounded_time_for_another_then_says_what_to_do(shard, open_warehouse):
    server, job, spec = shard
    backend = OpenAIBatchBackend(client=server.client())
    key = spec.submission_key_for(backend.account)
    with open_warehouse() as holder, open_warehouse() as waiter:
        with BatchLedger(holder).claim(key, timeout=1), pytest.raises(SubmissionBusy, match="retry the task"):
            submit_shard(backend, BatchLedger(waiter), job, spec, claim_timeout=0.3)
        assert batch_uploads(server.client()) == 0
        submitted = submit_shard(backend, BatchLedger(waiter), job, spec, claim_timeout=0.3)
    assert submitted.reattached is False and created_batches(server.client()) == 1


CRASHING_CHILD = """
import os, sys
sys.path[:0] = {paths!r}
from llm_batch import ledger, submission
from llm_batch.handoffs import ShardSpec
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from openai import OpenAI
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import WarehouseAt

real_update = ledger.BatchLedger.update
def update(self, key, **changes):
    if changes.get("batch_id"):
        os._exit(137)  # dies holding the claim: the batch exists, the ledger does not know it
    real_update(self, key, **changes)
ledger.BatchLedger.update = update
client = OpenAI(base_url={base_url!r}, api_key={api_key!r}, max_retries=0)
warehouse = WarehouseAt(*{where!r})()
submission.submit_shard(
    OpenAIBatchBackend(client=client), ledger.BatchLedger(warehouse), sentiment_job(storage_url={storage!r}),
    ShardSpec.from_xcom({spec!r}),
)
"""


def test_a_submitter_that_died_holding_the_claim_blocks_no_one(shard, open_warehouse):
    server, job, spec = shard
    code = CRASHING_CHILD.format(
        paths=[str(PROJECT), str(PROJECT / "plugins")],
        base_url=server.base_url,
        api_key=server.api_key,
        where=(open_warehouse.kind, open_warehouse.where),
        storage=job.storage_url,
        spec=spec.to_xcom(),
    )
    died = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert died.returncode == 137, died.stderr[-2000:]

    with open_warehouse() as warehouse:
        retried = submit_shard(
            OpenAIBatchBackend(client=server.client()), BatchLedger(warehouse), job, spec, claim_timeout=5
        )
    client = server.client()
    assert retried.reattached is True
    assert (batch_uploads(client), created_batches(client)) == (1, 1)
