"""The library's own copy of the Batch API's line rules, and the build that applies them."""

from __future__ import annotations

import dataclasses
import datetime as dt

import orjson
import pytest

from dags.review_sentiment import JOB
from include.sample_data.reviews import generate_reviews
from llm_batch.batch_rules import RuleBreak, check_lines
from llm_batch.build import build_run
from llm_batch.request_lines import build_requests
from llm_batch.run_window import RunWindow
from tests.conftest import request_line as request

CHAT = "/v1/chat/completions"
DAY = dt.date(2026, 11, 25)


def body(**changes) -> dict:
    return {"model": "gpt-4o-mini", "messages": [], **changes}


def test_the_lines_the_library_builds_break_no_rule():
    job = dataclasses.replace(JOB, storage_url=None)
    built = build_requests(job, generate_reviews(DAY, 1, per_day=(40, 40)))
    assert built.lines
    assert check_lines((line.line for line in built.lines), job.endpoint) == []


@pytest.mark.parametrize(
    ("raw", "code", "param"),
    [
        (b"{not json", "invalid_json_line", None),
        (b'["a list"]', "invalid_json_line", None),
        (request(drop="custom_id"), "missing_required_parameter", "custom_id"),
        (request(custom_id=None), "missing_required_parameter", "custom_id"),
        (request(drop="method"), "missing_required_parameter", "method"),
        (request(drop="url"), "missing_required_parameter", "url"),
        (request(drop="body"), "missing_required_parameter", "body"),
        (request(custom_id=""), "invalid_request", "custom_id"),
        (request(custom_id=7), "invalid_request", "custom_id"),
        (request(method="GET"), "invalid_request", "method"),
        (request(url="/v1/embeddings"), "invalid_url", "url"),
        (request(body=["not", "an", "object"]), "invalid_request", "body"),
        (request(body=body(stream=True)), "streaming_unsupported", "body.stream"),
        (request(body={"messages": []}), "invalid_request", "body.model"),
        (request(body=body(model=4)), "invalid_request", "body.model"),
    ],
)
def test_a_line_breaks_the_first_rule_it_fails(raw, code, param):
    (broken,) = check_lines([raw], CHAT)
    assert (broken.code, broken.param, broken.line) == (code, param, 1)
    assert broken.message


def test_every_bad_line_is_reported_once_with_its_line_number_counting_blank_lines():
    lines = [request("a"), b"", b"garbage", request("b", method="GET"), b"  \n", request("c")]
    assert [(b.line, b.code) for b in check_lines(lines, CHAT)] == [
        (3, "invalid_json_line"),
        (4, "invalid_request"),
    ]


def test_custom_ids_are_unique_and_the_model_is_one_per_file():
    lines = [
        request("a"),
        request("b", method="GET"),  # breaks another rule: does not take its id
        request("b"),
        request("a"),
        request("c", body=body(model="gpt-4o")),
        request("c"),  # the mismatched line above took the id
    ]
    assert check_lines(lines, CHAT) == [
        RuleBreak("invalid_request", "Only the POST method is supported.", "method", 2),
        RuleBreak(
            "duplicate_custom_id",
            "The custom_id 'a' for this request is a duplicate of another request.",
            None,
            4,
        ),
        RuleBreak(
            "mismatched_model",
            "The model 'gpt-4o' for this request does not match the rest of the batch.",
            None,
            5,
        ),
        RuleBreak(
            "duplicate_custom_id",
            "The custom_id 'c' for this request is a duplicate of another request.",
            None,
            6,
        ),
    ]


def test_the_model_is_optional_only_for_moderations_and_streaming_names_the_endpoint():
    moderation = {"custom_id": "m", "method": "POST", "url": "/v1/moderations", "body": {"input": "x"}}
    assert check_lines([orjson.dumps(moderation)], "/v1/moderations") == []
    streamed = {
        **moderation,
        "url": "/v1/responses",
        "body": {"model": "gpt-5", "input": "x", "stream": True},
    }
    (broken,) = check_lines([orjson.dumps(streamed)], "/v1/responses")
    assert broken.message == "Responses: Streaming is not supported in the Batch API."


def test_a_build_whose_lines_break_a_rule_fails_naming_the_row(tmp_path):
    job = dataclasses.replace(JOB, storage_url=tmp_path.as_uri(), request_params={"stream": True})
    rows = generate_reviews(DAY, 1, per_day=(5, 5))
    first = min(rows.column("review_id").to_pylist())
    with pytest.raises(ValueError, match=r"request lines break the Batch API's rules") as raised:
        build_run(job, RunWindow(DAY, DAY + dt.timedelta(days=1)), rows)
    message = str(raised.value)
    assert f"for key {first!r} (custom_id " in message
    assert message.endswith(
        "streaming_unsupported: Chat Completions: Streaming is not supported in the Batch API."
    )
    assert not list(tmp_path.rglob("*.jsonl")), "nothing is written for a shard that breaks the rules"
