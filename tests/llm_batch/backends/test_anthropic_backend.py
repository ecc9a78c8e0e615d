"""The Anthropic backend against the server's Message Batches, through the real anthropic SDK."""

from __future__ import annotations

import asyncio

import anthropic
import orjson
import pytest

from llm_batch.backends import BatchAlreadyEnded, BatchNotFound, BatchStatus, LineOutcome, RetryPolicy
from llm_batch.backends.anthropic_backend import AnthropicBatchBackend, result_line
from llm_batch.backends.records import BatchInput, SubmissionTag
from llm_batch.backends.shared_clients import close_shared_async_clients
from llm_batch.retryable import is_retryable_status
from tests.batch_server import anthropic_client, wait_for_message_batch

PARAMS = {
    "model": "claude-haiku-4-5",
    "max_tokens": 32,
    "messages": [{"role": "user", "content": "great kettle"}],
}
RETRY = RetryPolicy(tries=3, base=0.05, cap=0.5)


def lines(count: int) -> BatchInput:
    content = b"".join(
        b'{"custom_id":"r%03d","method":"POST","url":"/v1/messages","body":%s}\n' % (n, orjson.dumps(PARAMS))
        for n in range(count)
    )
    return BatchInput(name="in.jsonl", endpoint="/v1/messages", requests=count, read=lambda: content)


def create(backend: AnthropicBatchBackend, count: int = 4):
    return backend.create_or_find(
        lines(count), SubmissionTag("key", 1), uploaded=backend.upload(lines(count))
    )


@pytest.fixture
def backend(start_server):
    server = start_server()
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    backend.server = server
    return backend


def test_a_batch_is_created_from_the_shards_lines_and_read_back_typed(backend):
    made = create(backend)
    assert made.recovered is False and made.state.id.startswith("msgbatch_")
    assert made.state.counts.total == 4 and made.state.status in (
        BatchStatus.IN_PROGRESS,
        BatchStatus.COMPLETED,
    )

    wait_for_message_batch(anthropic_client(backend.server), made.state.id)
    state = backend.retrieve(made.state.id)
    assert state.status is BatchStatus.COMPLETED and state.is_terminal
    assert state.counts == (4, 4, 0) and state.times.completed_at >= state.times.created_at
    results = list(backend.results(state))
    assert sorted(r.custom_id for r in results) == ["r000", "r001", "r002", "r003"]
    assert all(r.outcome is LineOutcome.ANSWERED and r.body["type"] == "message" for r in results)


def test_an_expired_batch_reports_its_never_run_requests_for_the_next_round(backend):
    backend.server.set_faults(expire_after_share=0.5, limit_batches=1)
    made = create(backend, 6)
    wait_for_message_batch(anthropic_client(backend.server), made.state.id)
    state = backend.retrieve(made.state.id)

    assert state.status is BatchStatus.EXPIRED and state.times.expired_at is not None
    outcomes = sorted(r.outcome for r in backend.results(state))
    assert outcomes.count(LineOutcome.EXPIRED) == state.counts.failed == 3
    assert outcomes.count(LineOutcome.ANSWERED) == state.counts.completed == 3


@pytest.mark.parametrize(
    ("status", "kind", "retryable"), [(529, "overloaded_error", True), (400, None, False)]
)
def test_errored_requests_keep_their_type_and_whether_a_retry_helps(backend, status, kind, retryable):
    backend.server.set_faults(line_failure_share=1.0, line_failure_status=status, limit_batches=1)
    made = create(backend, 2)
    wait_for_message_batch(anthropic_client(backend.server), made.state.id)

    failed = list(backend.results(backend.retrieve(made.state.id)))
    assert {r.outcome for r in failed} == {LineOutcome.FAILED}
    assert all(is_retryable_status(r.status_code) is retryable and r.error_message for r in failed)
    if kind:
        assert {r.error_code for r in failed} == {kind}


def test_cancel_stops_a_running_batch_and_says_when_nothing_was_left(start_server):
    server = start_server("--request-seconds", "0.2")
    backend = AnthropicBatchBackend(client=anthropic_client(server))
    made = create(backend, 10)

    cancelling = backend.cancel(made.state.id, retry=RETRY)
    assert cancelling.status in (BatchStatus.CANCELLING, BatchStatus.CANCELLED)
    wait_for_message_batch(anthropic_client(server), made.state.id)
    state = backend.retrieve(made.state.id)
    assert state.status is BatchStatus.CANCELLED and state.times.cancelled_at is not None
    assert LineOutcome.CANCELLED in {r.outcome for r in backend.results(state)}
    finished = create(backend, 1)
    wait_for_message_batch(anthropic_client(server), finished.state.id)
    with pytest.raises(BatchAlreadyEnded):
        backend.cancel(finished.state.id, retry=RETRY)


def test_the_triggers_calls_go_through_one_shared_async_client(backend):
    made = create(backend)
    key = backend.server.api_key

    async def look() -> tuple:
        waits = [
            AnthropicBatchBackend(
                async_client=anthropic.AsyncAnthropic(
                    base_url=f"http://127.0.0.1:{backend.server.port}", api_key=key
                )
            )
            for _ in range(3)
        ]
        for wait in waits:
            await wait.aconnect()
        states = [await wait.aretrieve(made.state.id) for wait in waits]
        with pytest.raises(BatchNotFound):
            await waits[0].aretrieve("msgbatch_unknown")
        shared = {id(await wait._loop.reader()) for wait in waits}
        await close_shared_async_clients()
        return states, shared

    states, shared = asyncio.run(look())
    assert {s.id for s in states} == {made.state.id} and len(shared) == 1


def test_result_lines_map_every_kind_of_result():
    ok = result_line({"custom_id": "a", "result": {"type": "succeeded", "message": {"id": "msg_1"}}})
    over = result_line(
        {
            "custom_id": "b",
            "result": {
                "type": "errored",
                "error": {"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
            },
        }
    )
    bad = result_line(
        {
            "custom_id": "c",
            "result": {
                "type": "errored",
                "error": {
                    "type": "error",
                    "error": {"type": "invalid_request_error", "message": "max_tokens: required"},
                },
            },
        }
    )
    assert (ok.outcome, ok.body) == (LineOutcome.ANSWERED, {"id": "msg_1"})
    assert (over.outcome, over.status_code, over.error_code) == (LineOutcome.FAILED, 529, "overloaded_error")
    assert (bad.status_code, bad.error_code, bad.error_message) == (
        400,
        "invalid_request_error",
        "max_tokens: required",
    )
    assert result_line({"custom_id": "d", "result": {"type": "canceled"}}).outcome is LineOutcome.CANCELLED
    assert result_line({"custom_id": "e", "result": {"type": "expired"}}).outcome is LineOutcome.EXPIRED
