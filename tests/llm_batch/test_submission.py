"""Idempotent submission against the real local server: crashes and retries never pay twice."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import httpx
import pytest
from openai import OpenAI

from include.sample_data.reviews import generate_reviews
from llm_batch.backends.openai_backend import METADATA_KEY, OpenAIBatchBackend, batch_state
from llm_batch.build import build_run
from llm_batch.collect import collect_shard
from llm_batch.handoffs import ShardSpec
from llm_batch.ledger import BatchLedger
from llm_batch.load import load_run
from llm_batch.run_window import RunWindow
from llm_batch.submission import submit_shard
from llm_batch.warehouse import duckdb_warehouse
from tests.batch_server import wait_for_batch
from tests.llm_batch.jobs import sentiment_job

PROJECT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 21)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))


@pytest.fixture
def setup(start_server, tmp_path):
    server = start_server()
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri())
    rows = generate_reviews(DAY, 1, per_day=(30, 30))
    built = build_run(job, WINDOW, rows)
    (spec,) = built.shards
    return server, job, spec, built.summary, tmp_path / "warehouse.duckdb"


def backend_on(server, client: OpenAI | None = None) -> OpenAIBatchBackend:
    return OpenAIBatchBackend(client=client or server.client())


def key_on(server, spec: ShardSpec) -> str:
    return spec.submission_key_for(backend_on(server).account)


def batches_on(server) -> list:
    return list(server.client().batches.list(limit=100))


def test_a_submit_killed_right_after_create_re_attaches_on_retry(setup):
    server, job, spec, summary, warehouse_path = setup
    child = f"""
import os, sys
sys.path[:0] = {[str(PROJECT), str(PROJECT / "plugins")]!r}
from llm_batch import ledger, submission
from llm_batch.warehouse import duckdb_warehouse
from tests.llm_batch.jobs import sentiment_job
from openai import OpenAI
from llm_batch.backends.openai_backend import OpenAIBatchBackend

real_update = ledger.BatchLedger.update
def update(self, key, **changes):
    if changes.get("batch_id"):
        os._exit(137)  # the worker dies: the batch exists, the ledger does not know it
    real_update(self, key, **changes)
ledger.BatchLedger.update = update
client = OpenAI(base_url={server.base_url!r}, api_key={server.api_key!r})
spec = submission.ShardSpec.from_xcom({spec.to_xcom()!r})
job = sentiment_job(storage_url={job.storage_url!r})
submission.submit_shard(OpenAIBatchBackend(client=client), ledger.BatchLedger(duckdb_warehouse({str(warehouse_path)!r})), job, spec)
"""
    killed = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert killed.returncode == 137, killed.stderr[-2000:]
    (created,) = batches_on(server)
    with duckdb_warehouse(warehouse_path) as warehouse:
        entry = BatchLedger(warehouse).get(key_on(server, spec))
        assert entry.batch_id is None and entry.input_file_id is not None

        retried = submit_shard(backend_on(server), BatchLedger(warehouse), job, spec)

        assert retried.reattached is True and retried.batch_id == created.id
        assert [b.id for b in batches_on(server)] == [created.id]
        assert BatchLedger(warehouse).get(key_on(server, spec)).batch_id == created.id
        done = batch_state(wait_for_batch(server.client(), created.id)).to_summary()
        outcome = collect_shard(backend_on(server), job, spec, done, submission_key=retried.submission_key)
        loaded = load_run(job, WINDOW, warehouse, [outcome], summary.rejections_path, logical_date=DAY)
        again = submit_shard(backend_on(server), BatchLedger(warehouse), job, spec)
        assert again.reattached is True and len(batches_on(server)) == 1
        landed = warehouse.read_arrow(
            "SELECT count(*) AS n, count(DISTINCT review_id) AS keys FROM review_sentiment"
        )
    assert loaded.results == spec.requests
    assert landed.to_pylist() == [{"n": spec.requests, "keys": spec.requests}]


class LoseCreateAnswers(httpx.BaseTransport):
    """Forwards to the server, then drops the answer of the first batch create: a timeout after success."""

    def __init__(self) -> None:
        self.inner = httpx.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/batches" and not self.dropped:
            response.read()
            self.dropped += 1
            raise httpx.ReadTimeout("answer lost", request=request)
        return response


def test_a_create_whose_answer_was_lost_is_found_not_duplicated(setup):
    server, job, spec, _, warehouse_path = setup
    transport = LoseCreateAnswers()
    client = OpenAI(
        base_url=server.base_url, api_key=server.api_key, http_client=httpx.Client(transport=transport)
    )
    with duckdb_warehouse(warehouse_path) as warehouse:
        result = submit_shard(backend_on(server, client), BatchLedger(warehouse), job, spec)
    assert transport.dropped == 1
    (batch,) = batches_on(server)
    assert result.batch_id == batch.id and batch.metadata[METADATA_KEY] == key_on(server, spec)


def test_a_create_the_server_applied_but_answered_500_makes_one_batch_even_with_the_sdks_retries(setup):
    """The SDK alone would make two batches here (tests/local_batch_api/test_lost_answers.py)."""
    server, job, spec, _, warehouse_path = setup
    server.set_faults(lose_create_answers=1)
    backend = backend_on(server, server.client(max_retries=2))
    with duckdb_warehouse(warehouse_path) as warehouse:
        result = submit_shard(backend, BatchLedger(warehouse), job, spec)
    (batch,) = batches_on(server)
    assert result.batch_id == batch.id and batch.metadata[METADATA_KEY] == key_on(server, spec)


def test_a_batch_failed_for_a_retryable_reason_is_submitted_again_once(setup):
    server, job, spec, _, warehouse_path = setup
    server.set_faults(token_limit_exceeded=True, limit_batches=1)
    with duckdb_warehouse(warehouse_path) as warehouse:
        first = submit_shard(backend_on(server), BatchLedger(warehouse), job, spec)
        assert wait_for_batch(server.client(), first.batch_id).status == "failed"
        second = submit_shard(backend_on(server), BatchLedger(warehouse), job, spec)
        third = submit_shard(backend_on(server), BatchLedger(warehouse), job, spec)
        entry = BatchLedger(warehouse).get(key_on(server, spec))
    assert second.batch_id != first.batch_id and second.reattached is False
    assert third.batch_id == second.batch_id and third.reattached is True
    assert entry.generation == 2 and len(batches_on(server)) == 2


def test_different_bytes_are_a_different_batch_and_forced_runs_pay_again(setup):
    server, job, spec, _, warehouse_path = setup
    other_model = sentiment_job(storage_url=job.storage_url, model="gpt-4.1-mini")
    rows = generate_reviews(DAY, 1, per_day=(30, 30))
    (other,) = build_run(other_model, WINDOW, rows).shards
    (forced,) = build_run(job, WINDOW, rows, identity_salt="manual__x").shards
    assert len({key_on(server, s) for s in (spec, other, forced)}) == 3
    with duckdb_warehouse(warehouse_path) as warehouse:
        ids = {
            submit_shard(backend_on(server), BatchLedger(warehouse), j, s).batch_id
            for j, s in ((job, spec), (other_model, other), (job, forced), (job, spec))
        }
    assert len(ids) == 3 == len(batches_on(server))


def test_ledger_rows_hold_no_secret(setup):
    server, job, spec, _, warehouse_path = setup
    with duckdb_warehouse(warehouse_path) as warehouse:
        submit_shard(backend_on(server), BatchLedger(warehouse), job, spec)
        rows = warehouse.read_arrow("SELECT * FROM llm_batch_ledger").to_pylist()
    assert rows and server.api_key not in json.dumps(rows, default=str)


def test_a_run_moved_to_another_account_submits_there_instead_of_re_attaching(setup, start_server):
    server, job, spec, _, warehouse_path = setup
    other_server = start_server(name="other")
    here = backend_on(server)
    there = OpenAIBatchBackend("openai_other", client=other_server.client())
    same_server_other_conn = OpenAIBatchBackend("openai_other", client=server.client())
    run = "scheduled__2026-11-22"  # one run, its requests its own whichever account sends them
    with duckdb_warehouse(warehouse_path) as warehouse:
        first = submit_shard(here, BatchLedger(warehouse), job, spec, run_id=run)
        moved = submit_shard(there, BatchLedger(warehouse), job, spec, run_id=run)
        renamed = submit_shard(same_server_other_conn, BatchLedger(warehouse), job, spec, run_id=run)
        again = submit_shard(here, BatchLedger(warehouse), job, spec, run_id=run)

    assert len({here.account, there.account, same_server_other_conn.account}) == 3
    assert moved.reattached is False and [b.id for b in batches_on(other_server)] == [moved.batch_id]
    assert renamed.reattached is False and renamed.batch_id != first.batch_id
    assert again.reattached is True and again.batch_id == first.batch_id
    assert len({first.submission_key, moved.submission_key, renamed.submission_key}) == 3


def test_an_old_row_whose_batch_this_account_does_not_know_is_not_re_attached(setup, start_server):
    server, job, spec, _, warehouse_path = setup
    old_server = start_server(name="old")
    with duckdb_warehouse(warehouse_path) as warehouse:
        ledger = BatchLedger(warehouse)
        old = submit_shard(backend_on(old_server), ledger, job, spec)
        # As the code before the account was part of the identity keyed it.
        warehouse.execute(
            "UPDATE llm_batch_ledger SET submission_key = :legacy WHERE submission_key = :key",
            {"legacy": spec.legacy_submission_key, "key": old.submission_key},
        )
        moved = submit_shard(backend_on(server), ledger, job, spec)

    assert moved.reattached is False and moved.submission_key == key_on(server, spec)
    assert [b.id for b in batches_on(server)] == [moved.batch_id] != [old.batch_id]
