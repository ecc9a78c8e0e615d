"""Fault injection, per batch (metadata) and per server (flags and the admin endpoint)."""

from __future__ import annotations

import json
import time

import openai
import pytest

from local_batch_api.engines.tokens import text_tokens
from local_batch_api.faults import METADATA_KEY, Faults
from local_batch_api.validation import prompt_texts
from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, upload

LINES = [chat_line(f"r{i:03d}", f"review {i} was good") for i in range(100)]


def run_batch(client, lines=LINES, timeout: float = 60, **faults):
    metadata = {METADATA_KEY: json.dumps(faults)} if faults else None
    file = upload(client, lines)
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
    )
    return wait_for_batch(client, batch.id, timeout=timeout)


def error_lines(client, batch) -> list[dict]:
    return [json.loads(line) for line in client.files.content(batch.error_file_id).text.splitlines()]


def test_validation_failure(client):
    batch = run_batch(client, fail_validation=True)
    assert batch.status == "failed" and batch.errors.data[0].code == "invalid_request"


def test_token_limit_exceeded_fault(client):
    batch = run_batch(client, token_limit_exceeded=True)
    assert batch.status == "failed"
    (error,) = batch.errors.data
    assert error.code == "token_limit_exceeded" and error.line is None
    assert error.message.startswith("Enqueued token limit reached for gpt-4o-mini")


def enqueued_tokens(lines) -> int:
    """What the service counts of a file: the prompt text of each request, about 4 characters a token."""
    bodies = (line["body"] for line in lines)
    return sum(text_tokens("".join(prompt_texts(body))) for body in bodies)


def test_enqueued_token_limit_counts_active_batches_of_the_same_model(start_server):
    limit = enqueued_tokens(LINES) * 3 // 2  # room for one file of LINES, not two
    client = start_server("--enqueued-token-limit", str(limit), "--request-seconds", "0.05").client()
    first = upload(client, LINES)
    running = client.batches.create(
        input_file_id=first.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_for_batch(client, running.id, {"in_progress"})
    second = run_batch(client)
    assert second.status == "failed" and second.errors.data[0].code == "token_limit_exceeded"
    assert f"Limit: {limit:,} enqueued tokens" in second.errors.data[0].message
    client.batches.cancel(running.id)


@pytest.mark.parametrize(
    ("status", "type_"), [(500, "server_error"), (429, "requests"), (400, "invalid_request_error")]
)
def test_a_share_of_lines_fails_with_the_given_status(client, status, type_):
    batch = run_batch(client, line_failure_share=0.3, line_failure_status=status, seed=7)
    assert batch.status == "completed"
    assert batch.request_counts.failed + batch.request_counts.completed == 100
    assert 15 <= batch.request_counts.failed <= 45
    errors = error_lines(client, batch)
    assert len(errors) == batch.request_counts.failed
    assert {e["response"]["status_code"] for e in errors} == {status}
    assert {e["response"]["body"]["error"]["type"] for e in errors} == {type_}
    again = run_batch(client, line_failure_share=0.3, line_failure_status=status, seed=7)
    assert {e["custom_id"] for e in error_lines(client, again)} == {e["custom_id"] for e in errors}  # seeded


def test_expire_after_a_share_is_done(client):
    batch = run_batch(client, expire_after_share=0.4)
    assert batch.status == "expired"
    # As the service reports it: ``failed`` counts requests that ran and failed; the expired
    # ones are total - completed - failed, each with a batch_expired line in the error file.
    counts = batch.request_counts
    assert (counts.total, counts.completed, counts.failed) == (100, 40, 0)
    expired = error_lines(client, batch)
    assert len(expired) == counts.total - counts.completed - counts.failed
    assert {e["error"]["code"] for e in expired} == {"batch_expired"}


def test_stall_in_finalizing(client):
    file = upload(client, LINES[:3])
    metadata = {METADATA_KEY: json.dumps({"stall_finalizing_seconds": 1.5})}
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
    )
    finalizing = wait_for_batch(client, batch.id, {"finalizing"})
    time.sleep(0.8)
    assert client.batches.retrieve(batch.id).status == "finalizing"
    done = wait_for_batch(client, batch.id)
    assert done.status == "completed" and done.completed_at >= finalizing.finalizing_at + 1


def test_unknown_fault_in_metadata_is_rejected(client):
    file = upload(client, LINES[:1])
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(
            input_file_id=file.id,
            endpoint="/v1/chat/completions",
            completion_window="24h",
            metadata={METADATA_KEY: json.dumps({"no_such_fault": 1})},
        )
    assert "no_such_fault" in caught.value.body["message"]


@pytest.mark.parametrize("status", [429, 500])
def test_transient_api_errors_carry_retry_after_and_the_sdk_recovers(start_server, status):
    flags = {"api_error_share": 0.5, "api_error_status": status, "retry_after_seconds": 0.01, "seed": 3}
    server = start_server(*(arg for key, value in flags.items() for arg in ("--fault", f"{key}={value}")))
    failing = server.client(max_retries=0)
    outcomes = []
    for _ in range(20):
        try:
            failing.models.list()
            outcomes.append("ok")
        except openai.APIStatusError as exc:
            assert exc.status_code == status
            assert exc.response.headers["retry-after-ms"] == "10"
            outcomes.append("error")
    assert 3 <= outcomes.count("error") <= 17
    server.set_faults(
        **{**flags, "api_error_share": 0.3}
    )  # the SDK's retries make a failure vanishingly rare
    retrying = server.client(max_retries=8)
    batch = run_batch(retrying, LINES[:5])
    assert batch.status == "completed"


def test_server_faults_can_be_changed_at_run_time(start_server):
    server = start_server()
    assert server.set_faults(line_failure_share=1.0, line_failure_status=500)["line_failure_share"] == 1.0
    client = server.client()
    batch = run_batch(client, LINES[:4])
    assert batch.request_counts.failed == 4 and batch.output_file_id is None
    server.set_faults()
    assert run_batch(client, LINES[:4]).request_counts.completed == 4


def test_faults_parse_loose_values():
    faults = Faults.from_mapping({"fail_validation": "true", "line_failure_share": "0.5", "seed": "4"})
    assert faults.fail_validation is True and faults.line_failure_share == 0.5 and faults.seed == 4
    with pytest.raises(Exception, match="invalid value"):
        Faults.from_mapping({"seed": "four"})


def test_server_faults_can_be_limited_to_the_next_batches(start_server):
    server = start_server()
    server.set_faults(expire_after_share=0.5, limit_batches=1)
    client = server.client()
    assert run_batch(client, LINES[:10]).status == "expired"
    assert run_batch(client, LINES[:10]).status == "completed"  # the follow-up batch runs clean
