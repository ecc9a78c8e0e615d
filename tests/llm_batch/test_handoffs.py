"""The records tasks hand each other: plain JSON in XCom, typed in code, readable across upgrades."""

from __future__ import annotations

import json

import pytest

from llm_batch.backends import BatchState
from llm_batch.handoffs import (
    BuildSummary,
    HandoffVersionError,
    LoadCounts,
    RunReport,
    ShardOutcome,
    ShardSpec,
    Submission,
)

SPEC = ShardSpec(
    job="review_sentiment",
    interval_label="2026-11-21",
    shard=0,
    attempt=1,
    path="file:///runs/shards/21c3.jsonl",
    index_path="file:///runs/9789/index.parquet",
    requests=28,
    bytes=31210,
    estimated_tokens=3286,
    digest="21c3d05eb83f52e3db1713f2b86c0f40f7e182bc813e4373018cb6ac15a76171",
)

SPEC_V0 = {k: v for k, v in SPEC.to_xcom().items() if k != "schema_version"}
# As the collect and build tasks wrote them before records were typed (no schema_version).
OLD_COLLECT_XCOM = {
    "batch_id": "batch_1",
    "submission_key": "5c4e406d07296e7f050f958b4240692e6e2f9b7b",
    "status": "completed",
    "shard": 0,
    "attempt": 1,
    "results_path": "file:///runs/shard-000-round-1.results.parquet",
    "failures_path": "file:///runs/shard-000-round-1.failures.parquet",
    "results": 26,
    "failures": 0,
    "retries": 2,
    "failure_reasons": {},
    "retry_reasons": {"server_error_500": 2},
    "input_tokens": 3293,
    "output_tokens": 615,
    "cost_usd": 0.000616,
    "sync_cost_usd": 0.001233,
    "model": "gpt-4o-mini",
    "retry_spec": {**SPEC_V0, "attempt": 2, "requests": 2},
}
OLD_BUILD_SUMMARY_XCOM = {
    "window": "2026-11-21",
    "rows_in": 30,
    "duplicates_collapsed": 1,
    "already_settled": 0,
    "rejected": 1,
    "rejection_reasons": {"empty_input": 1},
    "requests": 28,
    "shards": 1,
    "estimated_input_tokens": 3286,
    "estimated_cost_usd": 0.0003,
    "estimated_sync_cost_usd": 0.0006,
    "rejections_path": "file:///runs/9789/rejections.parquet",
    "run_dir": "file:///runs/9789",
    "dry_run": False,
}


def test_every_record_goes_through_json_and_back_unchanged():
    records = [
        SPEC,
        Submission(batch_id="batch_1", submission_key="k", reattached=False, spec=SPEC),
        ShardOutcome.from_xcom(OLD_COLLECT_XCOM),
        BuildSummary.from_xcom(OLD_BUILD_SUMMARY_XCOM),
        LoadCounts(results=26, failures=1, replaced=0),
        RunReport(
            job="j",
            window="2026-11-21",
            run_id="r",
            dry_run=False,
            rows_in=30,
            already_settled=0,
            duplicates_collapsed=1,
            rejected=1,
            requests=28,
            results=26,
            failures=2,
        ),
    ]
    for record in records:
        data = json.loads(json.dumps(record.to_xcom()))
        assert data["schema_version"] == 1
        assert type(record).from_xcom(data) == record


def test_records_written_before_versioning_are_read_as_they_were():
    outcome = ShardOutcome.from_xcom(OLD_COLLECT_XCOM)
    assert outcome.results == 26 and outcome.retry_reasons == {"server_error_500": 2}
    assert isinstance(outcome.retry_spec, ShardSpec) and outcome.retry_spec.attempt == 2
    assert outcome.retry_spec.submission_key_for("acct") != SPEC.submission_key_for("acct")
    summary = BuildSummary.from_xcom(OLD_BUILD_SUMMARY_XCOM)
    assert summary.requests == 28 and summary.rejection_reasons == {"empty_input": 1}
    assert ShardOutcome.from_xcom({**OLD_COLLECT_XCOM, "retry_spec": None}).retry_spec is None


def test_a_record_from_a_newer_version_fails_at_once_with_what_to_do():
    newer = {**SPEC.to_xcom(), "schema_version": 2}
    with pytest.raises(HandoffVersionError, match=r"ShardSpec of schema version 2 .* upgrade every worker"):
        ShardSpec.from_xcom(newer)
    summary = {"id": "batch_1", "status": "completed", "schema_version": 9}
    with pytest.raises(HandoffVersionError, match="batch summary of schema version 9"):
        BatchState.from_summary(summary)


def test_the_submission_identity_is_part_of_the_record_not_of_its_serialisation():
    again = ShardSpec.from_xcom(json.loads(json.dumps(SPEC.to_xcom())))
    assert again.submission_key_for("openai_default@https://api.openai.com/v1") == SPEC.submission_key_for(
        "openai_default@https://api.openai.com/v1"
    )
    assert again.legacy_submission_key == SPEC.legacy_submission_key
