"""Collecting finished batches against the real local server: every request ends in one bucket."""

from __future__ import annotations

import datetime as dt
import json

import pyarrow as pa
import pytest
from pydantic import BaseModel, Field

from include.sample_data.reviews import generate_reviews
from llm_batch.backends.openai_backend import OpenAIBatchBackend, batch_state
from llm_batch.build import build_run
from llm_batch.collect import BatchFailedError, collect_shard
from llm_batch.handoffs import ShardSpec
from llm_batch.run_window import RunWindow
from llm_batch.storage import ObjectStoragePath, read_table
from local_batch_api.faults import METADATA_KEY
from tests.batch_server import wait_for_batch
from tests.llm_batch.jobs import embeddings_job, responses_job, sentiment_job

DAY = dt.date(2026, 11, 20)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))


@pytest.fixture(scope="module")
def rows() -> pa.Table:
    table = generate_reviews(DAY, 1, per_day=(60, 60))
    return table.filter(
        pa.compute.less(pa.compute.utf8_length(pa.compute.fill_null(table["review_text"], "")), 2000)
    )


def run_batch(client, spec: ShardSpec, endpoint: str, faults: dict | None = None) -> dict:
    with ObjectStoragePath(spec.path).open("rb") as handle:
        file = client.files.create(file=("shard.jsonl", handle.read()), purpose="batch")
    metadata = {METADATA_KEY: json.dumps(faults)} if faults else None
    batch = client.batches.create(
        input_file_id=file.id, endpoint=endpoint, completion_window="24h", metadata=metadata
    )
    return batch_state(wait_for_batch(client, batch.id)).to_summary()


def backend(client) -> OpenAIBatchBackend:
    return OpenAIBatchBackend(client=client)


def built_shard(job, rows) -> ShardSpec:
    built = build_run(job, WINDOW, rows)
    (spec,) = built.shards
    return spec


def test_clean_batch_gives_one_typed_result_per_request(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows)
    outcome = collect_shard(
        backend(client), job, spec, run_batch(client, spec, job.endpoint), submission_key="k"
    )
    results = read_table(ObjectStoragePath(outcome.results_path))
    assert outcome.results == spec.requests == results.num_rows and outcome.failures == 0
    assert outcome.retry_spec is None and outcome.input_tokens > 0
    assert set(results["label"].to_pylist()) <= {"positive", "neutral", "negative"}
    provenance = results.select(["vendor", "model"]).to_pylist()
    assert {tuple(r.values()) for r in provenance} == {("openai", job.model)}
    assert results.schema.field("confidence").type == pa.float64()
    assert 0 < outcome.cost_usd < outcome.sync_cost_usd


def test_responses_and_embeddings_jobs(client, tmp_path, rows):
    job = responses_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows.slice(0, 10))
    outcome = collect_shard(
        backend(client), job, spec, run_batch(client, spec, job.endpoint), submission_key="k"
    )
    assert outcome.results == spec.requests
    job = embeddings_job(storage_url=(tmp_path / "e").as_uri())
    spec = built_shard(job, rows.slice(0, 10))
    outcome = collect_shard(
        backend(client), job, spec, run_batch(client, spec, job.endpoint), submission_key="k"
    )
    vectors = read_table(ObjectStoragePath(outcome.results_path))["embedding"].to_pylist()
    assert len(vectors) == spec.requests and {len(v) for v in vectors} == {256}


def test_retryable_line_failures_become_the_next_round_then_failures(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri(), max_attempts=2)
    spec = built_shard(job, rows)
    faults = {"line_failure_share": 0.3, "line_failure_status": 500, "seed": 5}
    first = collect_shard(
        backend(client), job, spec, run_batch(client, spec, job.endpoint, faults), submission_key="k"
    )
    assert first.retries > 0 and first.results + first.retries == spec.requests
    retry = first.retry_spec
    assert retry.attempt == 2 and retry.requests == first.retries and retry.digest != spec.digest
    # The same custom_ids fail again under the same seed: the last round records them as failures.
    second = collect_shard(
        backend(client), job, retry, run_batch(client, retry, job.endpoint, faults), submission_key="k2"
    )
    assert second.retry_spec is None and second.failures == retry.requests
    assert second.failure_reasons == {"server_error_500": retry.requests}


def test_non_retryable_line_failures_are_recorded_with_their_reason(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows)
    faults = {"line_failure_share": 0.2, "line_failure_status": 400, "seed": 1}
    outcome = collect_shard(
        backend(client), job, spec, run_batch(client, spec, job.endpoint, faults), submission_key="k"
    )
    failures = read_table(ObjectStoragePath(outcome.failures_path))
    assert outcome.retry_spec is None and failures.num_rows == outcome.failures > 0
    assert set(failures["stage"].to_pylist()) == {"request"}
    assert set(failures["vendor"].to_pylist()) == {"openai"}  # the vendor that refused them
    assert outcome.results + outcome.failures == spec.requests


def test_expired_batch_lands_the_finished_part_and_retries_the_rest(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows)
    summary = run_batch(client, spec, job.endpoint, {"expire_after_share": 0.5})
    assert summary["status"] == "expired"
    outcome = collect_shard(backend(client), job, spec, summary, submission_key="k")
    assert outcome.results == spec.requests // 2
    assert outcome.retry_reasons == {"batch_expired": spec.requests - spec.requests // 2}


def test_cancelled_batch_retries_what_never_ran(start_server, tmp_path, rows):
    client = start_server("--request-seconds", "0.02").client()
    job = sentiment_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows)
    with ObjectStoragePath(spec.path).open("rb") as handle:
        file = client.files.create(file=("shard.jsonl", handle.read()), purpose="batch")
    batch = client.batches.create(input_file_id=file.id, endpoint=job.endpoint, completion_window="24h")
    while client.batches.retrieve(batch.id).request_counts.completed < 10:
        pass
    client.batches.cancel(batch.id)
    summary = batch_state(wait_for_batch(client, batch.id)).to_summary()
    outcome = collect_shard(backend(client), job, spec, summary, submission_key="k")
    assert outcome.results >= 10
    assert outcome.retry_reasons == {"batch_cancelled": spec.requests - outcome.results}


class StricterSentiment(BaseModel):
    label: str
    confidence: float = Field(ge=0, le=1)
    reason: str = Field(min_length=500)


def test_answers_that_break_the_schema_are_failures_not_rows(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows.slice(0, 10))
    summary = run_batch(client, spec, job.endpoint)
    strict = sentiment_job(storage_url=tmp_path.as_uri(), output_schema=StricterSentiment)
    outcome = collect_shard(backend(client), strict, spec, summary, submission_key="k")
    failures = read_table(ObjectStoragePath(outcome.failures_path))
    assert outcome.results == 0 and failures.num_rows == spec.requests
    assert set(failures["reason"].to_pylist()) == {"schema_violation"}
    assert "reason" in failures["detail"][0].as_py()


def test_truncated_answers_are_failures(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri(), request_params={"max_completion_tokens": 3})
    spec = built_shard(job, rows.slice(0, 5))
    outcome = collect_shard(
        backend(client), job, spec, run_batch(client, spec, job.endpoint), submission_key="k"
    )
    assert outcome.failure_reasons == {"truncated": spec.requests}


def test_a_failed_batch_is_a_clear_error_naming_the_line(client, tmp_path, rows):
    job = sentiment_job(storage_url=tmp_path.as_uri())
    spec = built_shard(job, rows.slice(0, 5))
    path = ObjectStoragePath(spec.path)
    path.write_bytes(path.read_bytes() + b"{broken line\n")
    summary = run_batch(client, spec, job.endpoint)
    with pytest.raises(BatchFailedError, match=r"line 6: invalid_json_line"):
        collect_shard(backend(client), job, spec, summary, submission_key="k")


def test_each_shard_collects_only_its_own_requests(client, tmp_path, rows):
    from llm_batch.job import ShardLimits

    job = sentiment_job(storage_url=tmp_path.as_uri(), shard_limits=ShardLimits(max_requests=20))
    specs = build_run(job, WINDOW, rows).shards
    assert len(specs) >= 2
    for spec in specs:
        outcome = collect_shard(
            backend(client), job, spec, run_batch(client, spec, job.endpoint), submission_key="k"
        )
        assert outcome.results == spec.requests and outcome.retry_spec is None
