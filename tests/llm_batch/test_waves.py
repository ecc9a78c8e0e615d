"""Waves under the enqueued-token limit: a run needing several times its model's limit finishes
without the service ever refusing a batch for it, and a limit declared too high costs no round.

Runs go through the library's steps (``include.window_run``) against the local server started
with ``--enqueued-token-limit``; the ledger and the server's batches are read back.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from include.sample_data.reviews import generate_reviews
from include.window_run import WindowRun
from llm_batch import capacity
from llm_batch.backends.azure_backend import AzureOpenAIBatchBackend
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.job import ShardLimits
from llm_batch.run_window import RunWindow
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import WarehouseAt, store_source

DAY = dt.date(2026, 3, 31)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
SOURCE = generate_reviews(DAY, 1, per_day=(30, 30))
ANSWERABLE = 28  # two sample rows have no text


@pytest.fixture
def setup(start_server, tmp_path):
    warehouse = WarehouseAt("duckdb", str(tmp_path / "warehouse.duckdb"))
    with warehouse() as opened:
        store_source(opened, SOURCE)
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri())
    # The run's whole need, as the library estimates it: the server's limit is a third of it.
    probe = WindowRun(job, WINDOW, warehouse, OpenAIBatchBackend(client=None), "probe").build()
    limit = probe.summary.estimated_input_tokens // 3 + 1

    def run(declared_limit: int, run_id: str = "scheduled__2026-04-01") -> WindowRun:
        server = start_server("--enqueued-token-limit", str(limit), "--request-seconds", "0.25")
        limited = dataclasses.replace(job, shard_limits=ShardLimits(max_enqueued_tokens=declared_limit))
        return WindowRun(limited, WINDOW, warehouse, OpenAIBatchBackend(client=server.client()), run_id)

    run.limit, run.warehouse = limit, warehouse
    return run


def ledger(setup) -> list[dict]:
    with setup.warehouse() as warehouse:
        return warehouse.read_arrow(
            'SELECT "attempt", "generation", "status", "estimated_tokens" FROM llm_batch_ledger ORDER BY "shard"'
        ).to_pylist()


def refusals(run: WindowRun) -> int:
    batches = run.backend.client.batches.list(limit=100)
    return sum(
        1 for b in batches if b.errors and any(e.code == "token_limit_exceeded" for e in b.errors.data)
    )


def test_a_run_needing_three_times_the_limit_finishes_in_waves_never_over_it(setup):
    run = setup(declared_limit=setup.limit)
    loaded = run.run()

    assert loaded.results == ANSWERABLE
    rows = ledger(setup)
    assert len(rows) >= 3  # one shard per wave: each fits the limit, no two together
    assert all(row["estimated_tokens"] <= setup.limit for row in rows)
    assert refusals(run) == 0  # the server never saw the limit passed
    assert {row["attempt"] for row in rows} == {1} and {row["generation"] for row in rows} == {1}
    assert run.report().rounds == 1


def test_a_limit_declared_too_high_is_recovered_from_without_using_a_round(setup):
    run = setup(declared_limit=None)
    # The connection declares three times the service's limit; shards of a quarter of the run
    # each fit alone, so the library sends them all at once and the service refuses some.
    run.backend.enqueued_token_limits = {run.job.model: 3 * setup.limit}
    run.job = dataclasses.replace(run.job, shard_limits=ShardLimits(max_requests=ANSWERABLE // 4))
    loaded = run.run()

    assert loaded.results == ANSWERABLE
    assert refusals(run) >= 1  # the service refused at least one batch for the limit
    rows = ledger(setup)
    assert {row["attempt"] for row in rows} == {1}  # refused batches went again in the same round
    assert max(row["generation"] for row in rows) >= 2
    assert run.report().rounds == 1


def test_the_limit_comes_from_the_job_then_the_connection_then_the_models_default():
    backend = OpenAIBatchBackend(client=None)
    job = sentiment_job()
    assert capacity.token_limit(job, backend) == 2_000_000  # gpt-4o-mini's published tier-1 limit
    backend.enqueued_token_limits = {job.model: 90_000_000}
    assert capacity.token_limit(job, backend) == 90_000_000
    declared = dataclasses.replace(job, shard_limits=ShardLimits(max_enqueued_tokens=5_000))
    assert capacity.token_limit(declared, backend) == 5_000
    assert capacity.token_limit(sentiment_job(model="house-model-7"), OpenAIBatchBackend(client=None)) is None
    # OpenAI's published figures are not an Azure deployment's quota.
    assert capacity.token_limit(job, AzureOpenAIBatchBackend(client=None)) is None
