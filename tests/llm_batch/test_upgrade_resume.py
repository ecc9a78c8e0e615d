"""A run started before the backend seam, deferred mid-wait, finishes after the upgrade.

The literal data below is what the code before the seam wrote: its trigger's ``serialize()``
as the sensor deferred it, its trigger events, its submit task's XCom and its ledger row.
Only the ids of the batch and files (which the test server assigns) and machine paths are
substituted; every key and value shape is as it was.
"""

from __future__ import annotations

import asyncio
import copy
import datetime as dt
import importlib
import json
from typing import Literal

import pytest
from airflow.sdk.exceptions import AirflowException
from pydantic import BaseModel, Field

from include.sample_data.reviews import generate_reviews
from llm_batch.backends import BatchState, batch_backend
from llm_batch.backends.openai_backend import METADATA_GENERATION, METADATA_KEY
from llm_batch.backends.shared_clients import close_shared_async_clients
from llm_batch.build import build_run
from llm_batch.clock import utcnow
from llm_batch.collect import collect_shard
from llm_batch.handoffs import ShardSpec, Submission
from llm_batch.ledger import BatchLedger, LedgerEntry
from llm_batch.run_window import RunWindow
from llm_batch.sensors import BatchSensor
from llm_batch.storage import ObjectStoragePath
from llm_batch.submission import submit_shard
from llm_batch.warehouse import duckdb_warehouse
from local_batch_api.faults import METADATA_KEY as FAULTS_KEY
from tests.batch_server import wait_for_batch
from tests.llm_batch.jobs import sentiment_job

DAY = dt.date(2026, 11, 21)


# The answer schema of the job the old run ran. Its name and docstring (none) are in the bytes sent.
class Sentiment(BaseModel):
    label: Literal["positive", "neutral", "negative"]
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(max_length=300)


# --- as the code before the seam wrote them ----------------------------------------------------

OLD_TRIGGER = (
    "llm_batch.triggers.BatchTrigger",
    {
        "batch_id": "batch_bfdb74b41e50770552015891",
        "conn_id": "openai_default",
        "poll_interval": 60.0,
        "max_backoff": 600.0,
    },
)
OLD_LEGACY_KEY = "5c4e406d07296e7f050f958b4240692e6e2f9b7b"
OLD_SUBMITTED = {
    "batch_id": "batch_1498a44b694e9ce201d67b89",
    "submission_key": "5c4e406d07296e7f050f958b4240692e6e2f9b7b",
    "reattached": False,
    "spec": {
        "job": "review_sentiment",
        "interval_label": "2026-11-21",
        "shard": 0,
        "attempt": 1,
        "path": "file:///tmp/tmpkk_0mr2b/files/review_sentiment/2026-11-21/shards/21c3d05eb83f52e3db1713f2b86c0f40f7e182bc.jsonl",
        "index_path": "file:///tmp/tmpkk_0mr2b/files/review_sentiment/2026-11-21/9789635cda15cd9e/index.parquet",
        "requests": 28,
        "bytes": 31210,
        "estimated_tokens": 3286,
        "digest": "21c3d05eb83f52e3db1713f2b86c0f40f7e182bc813e4373018cb6ac15a76171",
        "identity_salt": "",
    },
}
OLD_TERMINAL_EVENT = {
    "status": "terminal",
    "batch": {
        "id": "batch_1498a44b694e9ce201d67b89",
        "status": "completed",
        "endpoint": "/v1/chat/completions",
        "model": "gpt-4o-mini",
        "input_file_id": "file-9f1616756fa77c41e39acaa9",
        "output_file_id": "file-88301eb3e9eb23f79d96922d",
        "error_file_id": None,
        "request_counts": {"total": 28, "completed": 28, "failed": 0},
        "usage": {
            "input_tokens": 3293,
            "output_tokens": 615,
            "total_tokens": 3908,
            "cached_tokens": 0,
            "reasoning_tokens": 0,
        },
        "errors": [],
        "created_at": 1796066829,
        "in_progress_at": 1796066829,
        "finalizing_at": 1796066829,
        "completed_at": 1796066829,
        "failed_at": None,
        "expired_at": None,
        "cancelling_at": None,
        "cancelled_at": None,
    },
}
OLD_ERROR_EVENT = {
    "status": "error",
    "batch_id": "batch_doesnotexist",
    "message": "Batch batch_doesnotexist: NotFoundError 404: Error code: 404 - No such Batch object: batch_doesnotexist",
}
OLD_LEDGER_ROW = {
    "submission_key": "5c4e406d07296e7f050f958b4240692e6e2f9b7b",
    "job": "review_sentiment",
    "interval_label": "2026-11-21",
    "run_id": "scheduled__2026-11-22T00:00:00+00:00",
    "shard": 0,
    "attempt": 1,
    "generation": 1,
    "content_digest": "21c3d05eb83f52e3db1713f2b86c0f40f7e182bc813e4373018cb6ac15a76171",
    "job_fingerprint": "b4fcaf20fffbb072105da5a5dee6fdc1a890c1b29bb465e080cbcd8d6282feea",
    "model": "gpt-4o-mini",
    "endpoint": "/v1/chat/completions",
    "requests": 28,
    "input_file_id": "file-9f1616756fa77c41e39acaa9",
    "batch_id": "batch_1498a44b694e9ce201d67b89",
    "status": "validating",
    "completed": None,
    "failed": None,
    "input_tokens": None,
    "output_tokens": None,
    "cost_usd": None,
    "sync_cost_usd": None,
    "error": None,
    "intent_at": "2026-11-30 19:27:08.950221",
    "submitted_at": "2026-11-30 19:27:09.120584",
    "finished_at": None,
}

# --- an old run on a test server ---------------------------------------------------------------


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    await close_shared_async_clients()


@pytest.fixture
def old_run(start_server, tmp_path, monkeypatch):
    """The state an old run left: its shard files, its batch (mid-wait) and its ledger row."""
    server = start_server()
    connection = {"conn_type": "openai", "password": server.api_key, "host": server.base_url}
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps(connection))
    job = sentiment_job(
        storage_url=(tmp_path / "files").as_uri(), output_schema=Sentiment, request_params={"temperature": 0}
    )
    built = build_run(
        job, RunWindow(DAY, DAY + dt.timedelta(days=1)), generate_reviews(DAY, 1, per_day=(30, 30))
    )
    (spec,) = built.shards
    assert spec.digest == OLD_SUBMITTED["spec"]["digest"]  # the same rows give the same bytes as before

    return server, job, spec, tmp_path / "warehouse.duckdb"


def submit_the_old_way(
    server, spec: ShardSpec, warehouse_path, *, record_batch: bool = True, stall: float = 1.0
):
    """What the old submit did: a batch tagged with the key without the account, and its ledger row."""
    client = server.client()
    with ObjectStoragePath(spec.path).open("rb") as handle:
        file = client.files.create(file=("shard.jsonl", handle.read()), purpose="batch")
    metadata = {
        METADATA_KEY: OLD_LEGACY_KEY,
        METADATA_GENERATION: "1",
        "job": spec.job,
        "interval": spec.interval_label,
        "shard": str(spec.shard),
        "attempt": str(spec.attempt),
        FAULTS_KEY: json.dumps({"stall_finalizing_seconds": stall}),
    }
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
    )
    row = {**OLD_LEDGER_ROW, "input_file_id": file.id, "batch_id": batch.id if record_batch else None}
    row.update(intent_at=utcnow(), submitted_at=utcnow() if record_batch else None)
    with duckdb_warehouse(warehouse_path) as warehouse:
        BatchLedger(warehouse).record_intent(LedgerEntry(**row))
    submitted = copy.deepcopy(OLD_SUBMITTED)
    submitted["batch_id"] = batch.id
    submitted["spec"].update(path=spec.path, index_path=spec.index_path)
    return batch, submitted


def old_trigger_for(batch_id: str):
    """The trigger the triggerer rebuilds from the old row: same class path, the old kwargs."""
    classpath, kwargs = copy.deepcopy(OLD_TRIGGER)
    kwargs.update(batch_id=batch_id, poll_interval=0.05)  # a test cannot wait a minute between polls
    module_name, class_name = classpath.rsplit(".", 1)
    return getattr(importlib.import_module(module_name), class_name)(**kwargs)


async def first_event(trigger) -> dict:
    events = trigger.run()
    try:
        async with asyncio.timeout(60):
            return (await anext(events)).payload
    finally:
        await events.aclose()


# --- the tests ---------------------------------------------------------------------------------


def test_the_old_identity_is_still_computed_the_same_way():
    assert ShardSpec.from_xcom(OLD_SUBMITTED["spec"]).legacy_submission_key == OLD_LEGACY_KEY
    assert OLD_SUBMITTED["submission_key"] == OLD_LEDGER_ROW["submission_key"] == OLD_LEGACY_KEY


async def test_a_wait_deferred_by_the_old_code_finishes_and_collects(old_run):
    server, job, spec, warehouse_path = old_run
    batch, submitted = submit_the_old_way(server, spec, warehouse_path)

    event = await first_event(old_trigger_for(batch.id))
    summary = BatchSensor(task_id="wait", batch_id=submitted).execute_complete({}, event)
    old_xcom = Submission.from_xcom(submitted)  # as the new collect task reads the old submit's XCom
    outcome = await asyncio.to_thread(
        collect_shard,
        batch_backend("openai_default"),
        job,
        old_xcom.spec,
        summary,
        submission_key=old_xcom.submission_key,
    )

    assert event["status"] == "terminal" and summary["id"] == batch.id and summary["status"] == "completed"
    assert summary.keys() - {"schema_version"} == OLD_TERMINAL_EVENT["batch"].keys()
    assert outcome.results == spec.requests and outcome.submission_key == OLD_LEGACY_KEY


def test_an_event_of_the_old_trigger_is_understood_and_its_summary_collected(old_run):
    server, job, spec, warehouse_path = old_run
    batch, submitted = submit_the_old_way(server, spec, warehouse_path, stall=0)
    done = wait_for_batch(server.client(), batch.id)
    event = copy.deepcopy(OLD_TERMINAL_EVENT)
    event["batch"].update(id=done.id, input_file_id=done.input_file_id, output_file_id=done.output_file_id)

    summary = BatchSensor(task_id="wait", batch_id=submitted).execute_complete({}, event)
    outcome = collect_shard(
        batch_backend("openai_default"), job, spec, summary, submission_key=submitted["submission_key"]
    )

    assert summary == event["batch"]
    reread = BatchState.from_summary(OLD_TERMINAL_EVENT["batch"]).to_summary()
    assert reread == {"schema_version": 1, **OLD_TERMINAL_EVENT["batch"]}
    assert outcome.results == spec.requests and outcome.failures == 0
    with pytest.raises(AirflowException, match="NotFoundError 404"):
        BatchSensor(task_id="wait", batch_id="batch_doesnotexist").execute_complete({}, OLD_ERROR_EVENT)


def test_a_submit_retried_after_the_upgrade_re_attaches_to_the_old_batch(old_run):
    server, job, spec, warehouse_path = old_run
    batch, _ = submit_the_old_way(server, spec, warehouse_path)
    with duckdb_warehouse(warehouse_path) as warehouse:
        retried = submit_shard(batch_backend("openai_default"), BatchLedger(warehouse), job, spec)
        keys = [entry.submission_key for entry in BatchLedger(warehouse).entries(job.name)]

    assert retried.batch_id == batch.id and retried.reattached is True
    assert retried.submission_key == OLD_LEGACY_KEY and keys == [OLD_LEGACY_KEY]
    assert [b.id for b in server.client().batches.list()] == [batch.id]


def test_an_old_submit_that_died_after_create_is_found_by_the_old_key(old_run):
    server, job, spec, warehouse_path = old_run
    batch, _ = submit_the_old_way(server, spec, warehouse_path, record_batch=False)
    with duckdb_warehouse(warehouse_path) as warehouse:
        retried = submit_shard(batch_backend("openai_default"), BatchLedger(warehouse), job, spec)
        entry = BatchLedger(warehouse).get(OLD_LEGACY_KEY)

    assert retried.batch_id == batch.id == entry.batch_id and retried.reattached is True
    assert [b.id for b in server.client().batches.list()] == [batch.id]
