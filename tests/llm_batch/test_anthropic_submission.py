"""Never paying twice on Anthropic, whose batches carry no metadata: a lost create is recognised
by what the batch holds, and when that cannot tell candidates apart nothing is created."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
from pathlib import Path

import httpx2
import pytest

from include.sample_data.reviews import generate_reviews
from llm_batch.backends.anthropic_backend import AmbiguousOrphanBatches, AnthropicBatchBackend, batch_state
from llm_batch.build import build_run
from llm_batch.collect import collect_shard
from llm_batch.ledger import BatchLedger
from llm_batch.run_window import RunWindow
from llm_batch.submission import submit_shard
from llm_batch.warehouse import duckdb_warehouse
from tests.batch_server import anthropic_client, wait_for_message_batch
from tests.llm_batch.jobs import sentiment_job

PROJECT = Path(__file__).resolve().parents[2]
DAY = dt.date(2026, 11, 21)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
MODEL = "claude-haiku-4-5"


def prepared(server, tmp_path):
    """(server, the job as Anthropic runs it, its one shard, the warehouse file)."""
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    job = backend.job_for(sentiment_job(storage_url=(tmp_path / "files").as_uri(), model=MODEL))
    (spec,) = build_run(job, WINDOW, generate_reviews(DAY, 1, per_day=(30, 30))).shards
    return server, job, spec, tmp_path / "warehouse.duckdb"


@pytest.fixture
def setup(start_server, tmp_path):
    return prepared(start_server(), tmp_path)


@pytest.fixture
def slow_setup(start_server, tmp_path):
    """Batches stay in progress for a while: their custom_ids cannot be read yet."""
    return prepared(start_server("--request-seconds", "1"), tmp_path)


def batches_on(server) -> list:
    return list(anthropic_client(server).messages.batches.list(limit=100))


def decoy(server, requests: int, prefix: str):
    """A batch of another shard with as many requests as ours, other custom_ids."""
    params = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "hello"}]}
    return anthropic_client(server).messages.batches.create(
        requests=[{"custom_id": f"{prefix}-{n}", "params": params} for n in range(requests)]
    )


class CrashBeforeCreate(Exception):
    """The worker dies after the requests were fixed and ledgered, before the create."""


class DiesBeforeCreate(AnthropicBatchBackend):
    def create_or_find(self, *args, **kwargs):
        raise CrashBeforeCreate


def test_a_submit_killed_right_after_create_re_attaches_on_retry(setup):
    server, job, spec, warehouse_path = setup
    child = f"""
import os, sys
sys.path[:0] = {[str(PROJECT), str(PROJECT / "plugins")]!r}
from llm_batch import ledger, submission
from llm_batch.backends.anthropic_backend import AnthropicBatchBackend
from llm_batch.warehouse import duckdb_warehouse
from tests.batch_server import anthropic_client
from tests.llm_batch.jobs import sentiment_job

real_update = ledger.BatchLedger.update
def update(self, key, **changes):
    if changes.get("batch_id"):
        os._exit(137)  # the worker dies: the batch exists, the ledger does not know it
    real_update(self, key, **changes)
ledger.BatchLedger.update = update

class Server:
    port, api_key = {server.port!r}, {server.api_key!r}

backend = AnthropicBatchBackend(client=anthropic_client(Server))
job = backend.job_for(sentiment_job(storage_url={job.storage_url!r}, model={MODEL!r}))
spec = submission.ShardSpec.from_xcom({spec.to_xcom()!r})
submission.submit_shard(backend, ledger.BatchLedger(duckdb_warehouse({str(warehouse_path)!r})), job, spec)
"""
    killed = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=120)
    assert killed.returncode == 137, killed.stderr[-2000:]
    (created,) = batches_on(server)
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    key = spec.submission_key_for(backend.account)
    with duckdb_warehouse(warehouse_path) as warehouse:
        assert BatchLedger(warehouse).get(key).batch_id is None

        retried = submit_shard(backend, BatchLedger(warehouse), job, spec)

        assert retried.reattached is True and retried.batch_id == created.id
        assert BatchLedger(warehouse).get(key).batch_id == created.id
        ended = batch_state(wait_for_message_batch(anthropic_client(server), created.id))
        outcome = collect_shard(backend, job, spec, ended.to_summary(), submission_key=key)
        again = submit_shard(backend, BatchLedger(warehouse), job, spec)
    assert outcome.results == spec.requests and again.batch_id == created.id
    assert [b.id for b in batches_on(server)] == [created.id]


class LoseCreateAnswers(httpx2.BaseTransport):
    """Forwards to the server, then drops the answer of the first batch create: a timeout after success."""

    def __init__(self) -> None:
        self.inner = httpx2.HTTPTransport()
        self.dropped = 0

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        response = self.inner.handle_request(request)
        if request.method == "POST" and request.url.path == "/v1/messages/batches" and not self.dropped:
            response.read()
            self.dropped += 1
            raise httpx2.ReadTimeout("answer lost", request=request)
        return response


def test_a_create_whose_answer_was_lost_is_found_not_duplicated(setup):
    server, job, spec, warehouse_path = setup
    transport = LoseCreateAnswers()
    client = anthropic_client(server, http_client=httpx2.Client(transport=transport))
    with duckdb_warehouse(warehouse_path) as warehouse:
        result = submit_shard(AnthropicBatchBackend(client=client), BatchLedger(warehouse), job, spec)
    assert transport.dropped == 1
    (batch,) = batches_on(server)
    assert result.batch_id == batch.id


def test_batches_of_the_same_size_that_cannot_be_told_apart_stop_the_submission(slow_setup):
    server, job, spec, warehouse_path = slow_setup
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    with duckdb_warehouse(warehouse_path) as warehouse:
        dying = DiesBeforeCreate(client=anthropic_client(server))
        with pytest.raises(CrashBeforeCreate):
            submit_shard(dying, BatchLedger(warehouse), job, spec)
        decoys = {decoy(server, spec.requests, prefix).id for prefix in ("a", "b")}

        with pytest.raises(AmbiguousOrphanBatches) as raised:
            submit_shard(backend, BatchLedger(warehouse), job, spec)

    assert all(batch_id in str(raised.value) for batch_id in decoys)
    assert "Nothing was created" in str(raised.value)
    assert {b.id for b in batches_on(server)} == decoys


def test_ended_batches_of_the_same_size_with_other_requests_are_not_taken_for_ours(setup):
    server, job, spec, warehouse_path = setup
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    with duckdb_warehouse(warehouse_path) as warehouse:
        with pytest.raises(CrashBeforeCreate):
            submit_shard(DiesBeforeCreate(client=anthropic_client(server)), BatchLedger(warehouse), job, spec)
        other = decoy(server, spec.requests, "other")
        wait_for_message_batch(anthropic_client(server), other.id)

        made = submit_shard(backend, BatchLedger(warehouse), job, spec)

    assert made.reattached is False and made.batch_id != other.id
    assert {b.id for b in batches_on(server)} == {other.id, made.batch_id}


def test_a_batch_the_ledger_holds_for_another_submission_is_no_orphan(slow_setup):
    server, job, spec, warehouse_path = slow_setup
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    with duckdb_warehouse(warehouse_path) as warehouse:
        ledger = BatchLedger(warehouse)
        with pytest.raises(CrashBeforeCreate):
            submit_shard(DiesBeforeCreate(client=anthropic_client(server)), ledger, job, spec)
        running = decoy(server, spec.requests, "shard1")  # in progress: custom_ids not yet readable
        other_key = "another-submission"
        ours = ledger.get(spec.submission_key_for(backend.account))
        ledger.record_intent(dataclasses.replace(ours, submission_key=other_key))
        ledger.update(other_key, batch_id=running.id)

        made = submit_shard(backend, ledger, job, spec)

    assert made.reattached is False and made.batch_id != running.id
