"""Rows to request lines: deterministic, valid by the server's own rules, every rejection explained."""

from __future__ import annotations

import datetime as dt

import orjson
import pyarrow as pa
import pytest

from llm_batch.job import ShardLimits
from llm_batch.request_lines import build_requests, custom_id_for, dedupe
from llm_batch.sharding import ShardingError, iter_shards
from local_batch_api.validation import validate_lines
from tests.llm_batch.jobs import embeddings_job, responses_job, sentiment_job

DAY = dt.date(2026, 11, 25)


def reviews(*texts, ids=None) -> pa.Table:
    ids = ids or [f"rv-{i:03d}" for i in range(len(texts))]
    return pa.table(
        {
            "review_id": ids,
            "review_date": [DAY] * len(texts),
            "created_at": [dt.datetime(2026, 11, 25, 10, i) for i in range(len(texts))],
            "product_name": ["Kettle"] * len(texts),
            "category": ["kitchen"] * len(texts),
            "rating": [5] * len(texts),
            "language": ["en"] * len(texts),
            "review_text": list(texts),
        }
    )


def test_lines_are_deterministic_sorted_and_pass_the_server_rules():
    job = sentiment_job()
    rows = reviews("Love it", "Hate it", "Fine", ids=["rv-2", "rv-1", "rv-3"])
    first, second = build_requests(job, rows), build_requests(job, rows)
    assert [line.line for line in first.lines] == [line.line for line in second.lines]
    assert [line.custom_id for line in first.lines] == ["rv-1", "rv-2", "rv-3"]
    result = validate_lines((line.line for line in first.lines), job.endpoint, max_requests=10)
    assert result.errors == [] and result.total == 3
    body = orjson.loads(first.lines[0].line)["body"]
    assert body["model"] == "gpt-4o-mini" and body["temperature"] == 0
    assert body["response_format"]["json_schema"]["strict"] is True
    schema = body["response_format"]["json_schema"]["schema"]
    assert schema["additionalProperties"] is False and set(schema["required"]) == {
        "label",
        "confidence",
        "reason",
    }
    assert "Review: Hate it" in body["messages"][1]["content"]


def test_responses_and_embeddings_bodies():
    (line,) = build_requests(responses_job(), reviews("Great")).lines
    body = orjson.loads(line.line)["body"]
    assert (
        body["text"]["format"]["type"] == "json_schema"
        and "instructions" in body
        and "Great" in body["input"]
    )
    (line,) = build_requests(embeddings_job(), reviews("Great")).lines
    assert orjson.loads(line.line)["body"] == {
        "model": "text-embedding-3-small",
        "input": "Great",
        "dimensions": 256,
        "encoding_format": "float",
    }


def test_rows_that_cannot_become_requests_are_rejected_with_a_reason():
    huge = "word " * 200_000
    built = build_requests(sentiment_job(), reviews(None, "", "   ", huge, "fine"))
    assert [r.reason for r in built.rejections] == [
        "null_input",
        "empty_input",
        "empty_input",
        "input_too_long",
    ]
    assert [line.key for line in built.lines] == ["rv-004"]
    assert "tokens" in built.rejections[3].detail


def test_settled_requests_are_skipped_but_changed_ones_are_not():
    job = sentiment_job()
    rows = reviews("Love it", "Hate it")
    first = build_requests(job, rows)
    settled = {(line.key, line.request_fingerprint) for line in first.lines[:1]}
    assert [line.key for line in build_requests(job, rows, settled).lines] == ["rv-001"]
    other_model = sentiment_job(model="gpt-4.1-mini")
    assert len(build_requests(other_model, rows, settled).lines) == 2  # a new fingerprint
    assert job.fingerprint() != other_model.fingerprint()


def test_duplicate_keys_keep_the_latest_row():
    rows = reviews("first version", "other", "edited version", ids=["rv-1", "rv-2", "rv-1"])
    kept, collapsed = dedupe(rows, "review_id", "created_at")
    assert collapsed == 1
    assert dict(zip(kept["review_id"].to_pylist(), kept["review_text"].to_pylist(), strict=True)) == {
        "rv-1": "edited version",
        "rv-2": "other",
    }


def test_unsafe_keys_get_digest_custom_ids():
    assert custom_id_for("rv-001") == "rv-001"
    assert custom_id_for("a/b c").startswith("h-") and custom_id_for("a/b c") == custom_id_for("a/b c")
    assert custom_id_for("h-123").startswith("h-") and custom_id_for("h-123") != "h-123"


def test_shards_respect_requests_bytes_and_token_budget():
    built = build_requests(sentiment_job(), reviews(*[f"review number {i}" for i in range(10)]))
    assert [len(s.lines) for s in list(iter_shards(built.lines, ShardLimits(max_requests=4)))] == [4, 4, 2]
    size = len(built.lines[0].line) + 1
    assert all(len(s.lines) <= 2 for s in list(iter_shards(built.lines, ShardLimits(max_bytes=size * 2 + 5))))
    tokens = built.lines[0].estimated_tokens
    by_tokens = list(iter_shards(built.lines, ShardLimits(max_enqueued_tokens=tokens * 3 + 1)))
    assert (
        all(s.estimated_tokens <= tokens * 3 + 1 for s in by_tokens)
        and sum(len(s.lines) for s in by_tokens) == 10
    )
    with pytest.raises(ShardingError, match="alone"):
        list(iter_shards(built.lines, ShardLimits(max_bytes=10)))
