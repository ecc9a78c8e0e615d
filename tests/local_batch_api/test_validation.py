"""Validation after create: one ``errors.data`` entry per bad line, with the service's codes."""

from __future__ import annotations

import io

import orjson
import pytest

from local_batch_api.validation import validate_input_file
from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, jsonl, upload


def create(client, file_id: str, endpoint: str = "/v1/chat/completions"):
    return client.batches.create(input_file_id=file_id, endpoint=endpoint, completion_window="24h")


def failed_errors(client, lines: list, endpoint: str = "/v1/chat/completions") -> list[dict]:
    batch = wait_for_batch(client, create(client, upload(client, lines).id, endpoint).id)
    assert batch.status == "failed" and batch.failed_at is not None
    assert batch.output_file_id is None and batch.error_file_id is None
    return [e.model_dump() for e in batch.errors.data]


def without(line: dict, key: str) -> dict:
    return {k: v for k, v in line.items() if k != key}


GOOD = chat_line("good", "fine")


@pytest.mark.parametrize(
    ("bad_line", "code", "param"),
    [
        (b"{not json", "invalid_json_line", None),
        (b"[1, 2, 3]", "invalid_json_line", None),
        (orjson.dumps(without(chat_line("a", "x"), "custom_id")), "missing_required_parameter", "custom_id"),
        (orjson.dumps(without(chat_line("a", "x"), "method")), "missing_required_parameter", "method"),
        (orjson.dumps(without(chat_line("a", "x"), "url")), "missing_required_parameter", "url"),
        (orjson.dumps(without(chat_line("a", "x"), "body")), "missing_required_parameter", "body"),
        (orjson.dumps({**chat_line("a", "x"), "url": "/v1/embeddings"}), "invalid_url", "url"),
        (orjson.dumps(chat_line("a", "x", stream=True)), "streaming_unsupported", "body.stream"),
        (orjson.dumps({**chat_line("a", "x"), "body": {"messages": []}}), "invalid_request", "body.model"),
        (orjson.dumps(chat_line("good", "again")), "duplicate_custom_id", None),
        (orjson.dumps(chat_line("other", "x", model="gpt-4o")), "mismatched_model", None),
    ],
)
def test_each_bad_line_is_reported_with_its_code_and_line_number(client, bad_line, code, param):
    errors = failed_errors(client, [GOOD, bad_line, chat_line("also-good", "ok")])
    assert len(errors) == 1
    assert errors[0]["code"] == code and errors[0]["param"] == param and errors[0]["line"] == 2
    assert errors[0]["message"]


def test_every_bad_line_gets_its_own_entry(client):
    lines = [
        GOOD,
        b"garbage",
        chat_line("good", "dup"),
        without(chat_line("c", "x"), "body"),
        chat_line("d", "ok"),
    ]
    errors = failed_errors(client, lines)
    assert [(e["line"], e["code"]) for e in errors] == [
        (2, "invalid_json_line"),
        (3, "duplicate_custom_id"),
        (4, "missing_required_parameter"),
    ]


def test_streaming_message_names_the_endpoint(client):
    line = {
        "custom_id": "a",
        "method": "POST",
        "url": "/v1/responses",
        "body": {"model": "gpt-5", "input": "x", "stream": True},
    }
    (error,) = failed_errors(client, [line], endpoint="/v1/responses")
    assert error["message"] == "Responses: Streaming is not supported in the Batch API."


def test_unknown_input_file_creates_a_batch_that_fails(client):
    batch = wait_for_batch(client, create(client, "file-doesnotexist0000").id)
    assert batch.status == "failed"
    (error,) = batch.errors.data
    assert error.code == "invalid_request" and error.param == "file_id" and error.line is None
    assert "file-doesnotexist0000" in error.message


def test_empty_file_fails(client):
    file = client.files.create(file=("empty.jsonl", io.BytesIO(b"")), purpose="batch")
    batch = wait_for_batch(client, create(client, file.id).id)
    assert batch.status == "failed" and batch.errors.data[0].code == "empty_file"


def test_binary_garbage_fails_line_by_line_without_harm(client):
    garbage = bytes(range(256)) * 40 + b"\n\xff\xfe\x00\n"
    file = client.files.create(file=("junk.jsonl", io.BytesIO(garbage)), purpose="batch")
    batch = wait_for_batch(client, create(client, file.id).id)
    assert batch.status == "failed"
    assert {e.code for e in batch.errors.data} == {"invalid_json_line"}


def test_deeply_nested_json_is_an_invalid_line_not_a_crash(client):
    nested = b'{"custom_id": "a", "body": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    errors = failed_errors(client, [GOOD, nested])
    assert errors == [
        {"code": "invalid_json_line", "message": errors[0]["message"], "param": None, "line": 2}
    ]


def test_limits_on_requests_and_bytes(tmp_path):
    path = tmp_path / "input.jsonl"
    path.write_bytes(jsonl([chat_line(f"r{i}", "x") for i in range(11)]))
    too_many = validate_input_file(path, "/v1/chat/completions", max_requests=10, max_bytes=10**9)
    assert [e["code"] for e in too_many.errors] == ["too_many_requests"]
    too_big = validate_input_file(path, "/v1/chat/completions", max_requests=100, max_bytes=100)
    assert [e["code"] for e in too_big.errors] == ["file_too_large"]
    fine = validate_input_file(path, "/v1/chat/completions", max_requests=11, max_bytes=10**9)
    assert fine.errors == [] and fine.total == 11 and fine.model == "gpt-4o-mini" and fine.enqueued_tokens > 0


def test_limits_apply_to_batches_on_the_server(start_server):
    client = start_server("--max-batch-requests", "3").client()
    errors = failed_errors(client, [chat_line(f"r{i}", "x") for i in range(4)])
    assert [e["code"] for e in errors] == ["too_many_requests"]
