"""The OpenAI backend against the real local server over HTTP: typed states, lines and errors."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from llm_batch.backends import (
    BackendError,
    BatchAlreadyEnded,
    BatchInput,
    BatchNotFound,
    BatchState,
    BatchStatus,
    CredentialsRejected,
    LineOutcome,
    RetryPolicy,
    SubmissionTag,
    batch_backend,
)
from llm_batch.backends.openai_backend import (
    METADATA_GENERATION,
    METADATA_KEY,
    OpenAIBatchBackend,
    _failed_line,
)
from llm_batch.backends.shared_clients import close_shared_async_clients, shared_async_clients
from local_batch_api.faults import METADATA_KEY as FAULTS_KEY
from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, echo_line, jsonl

ONCE = RetryPolicy(tries=1)


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    await close_shared_async_clients()


@pytest.fixture
def backend(shared_server, monkeypatch) -> OpenAIBatchBackend:
    """The backend of the ``openai_default`` connection, pointed at the shared server."""
    connection = {"conn_type": "openai", "password": shared_server.api_key, "host": shared_server.base_url}
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps(connection))
    return batch_backend("openai_default")


def shard(lines: int = 3) -> BatchInput:
    content = jsonl([chat_line(f"r{i:03d}", f"review {i} was good") for i in range(lines)])
    return BatchInput(
        name="shard.jsonl", endpoint="/v1/chat/completions", requests=lines, read=lambda: content
    )


def submit(backend: OpenAIBatchBackend, key: str, lines: int = 3, **faults) -> BatchState:
    labels = {FAULTS_KEY: json.dumps(faults)} if faults else {}
    uploaded = backend.upload(shard(lines))
    return backend.create_or_find(shard(lines), SubmissionTag(key, 1, labels), uploaded=uploaded).state


def test_the_account_is_the_connection_and_its_base_url(backend, shared_server):
    assert backend.account == f"openai_default {shared_server.base_url.rstrip('/')}"


def test_a_created_batch_carries_its_key_and_is_found_by_it(backend, shared_server, request):
    key = f"key-{request.node.name}"
    state = submit(backend, key)
    sdk_batch = shared_server.client().batches.retrieve(state.id)

    assert state.status in {BatchStatus.VALIDATING, BatchStatus.IN_PROGRESS} and not state.is_terminal
    assert sdk_batch.metadata[METADATA_KEY] == key and sdk_batch.metadata[METADATA_GENERATION] == "1"
    since = dt.datetime.now(dt.UTC).replace(tzinfo=None) - dt.timedelta(minutes=1)
    assert backend.find(key, 1, not_before=since).id == state.id
    assert backend.find(key, 2, not_before=since) is None
    assert backend.find(key, 1, not_before=since + dt.timedelta(hours=1)) is None


def test_a_finished_batch_streams_typed_answers(backend, shared_server, request):
    state = submit(backend, f"key-{request.node.name}")
    wait_for_batch(shared_server.client(), state.id)
    done = backend.retrieve(state.id)

    lines = list(backend.results(done))

    assert done.status is BatchStatus.COMPLETED and done.is_terminal
    assert done.counts.completed == 3 and done.usage.input_tokens > 0 and done.times.ended_at
    assert sorted(line.custom_id for line in lines) == ["r000", "r001", "r002"]
    assert {line.outcome for line in lines} == {LineOutcome.ANSWERED}
    assert all(line.body["choices"][0]["message"]["content"] for line in lines)
    assert BatchState.from_summary(done.to_summary()) == done


def test_failed_and_expired_requests_are_told_apart(backend, shared_server, request):
    failing = submit(
        backend,
        f"key-{request.node.name}-1",
        lines=10,
        line_failure_share=0.5,
        line_failure_status=400,
        seed=1,
    )
    expiring = submit(backend, f"key-{request.node.name}-2", lines=10, expire_after_share=0.4)
    for state in (failing, expiring):
        wait_for_batch(shared_server.client(), state.id)

    failed = [
        line for line in backend.results(backend.retrieve(failing.id)) if line.outcome is LineOutcome.FAILED
    ]
    expired = backend.retrieve(expiring.id)
    outcomes = [line.outcome for line in backend.results(expired)]

    assert failed and all(line.status_code == 400 and line.error_message for line in failed)
    assert expired.status is BatchStatus.EXPIRED
    assert outcomes.count(LineOutcome.ANSWERED) == 4 and outcomes.count(LineOutcome.EXPIRED) == 6


def test_error_file_lines_as_the_service_writes_them():
    cancelled = {
        "custom_id": "a",
        "response": None,
        "error": {"code": "batch_cancelled", "message": "Batch cancelled"},
    }
    rejected = {
        "custom_id": "b",
        "response": {
            "status_code": 400,
            "body": {"error": {"code": "invalid_value", "message": "bad value"}},
        },
        "error": None,
    }
    assert _failed_line(cancelled).outcome is LineOutcome.CANCELLED
    assert _failed_line(rejected)[1:] == (LineOutcome.FAILED, None, 400, "invalid_value", "bad value")


def test_errors_are_typed_and_carry_no_key(backend, shared_server, monkeypatch):
    with pytest.raises(BatchNotFound) as unknown:
        backend.retrieve("batch_doesnotexist")
    assert unknown.value.status_code == 404 and not unknown.value.retryable

    wrong_key = "sk-wrong-0123456789abcdef"
    connection = {"conn_type": "openai", "password": wrong_key, "host": shared_server.base_url}
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_WRONG", json.dumps(connection))
    with pytest.raises(CredentialsRejected) as rejected:
        batch_backend("openai_wrong").retrieve("batch_whatever")
    assert wrong_key not in str(rejected.value) and "401" in str(rejected.value)


def test_throttling_carries_the_servers_retry_after_and_uploads_retry_through_it(start_server):
    server = start_server()
    backend = OpenAIBatchBackend(client=server.client())
    server.set_faults(api_error_share=1.0, api_error_status=429, retry_after_seconds=0.25)
    with pytest.raises(BackendError) as throttled:
        backend.retrieve("batch_x")
    assert throttled.value.status_code == 429 and throttled.value.retryable
    assert throttled.value.retry_after == pytest.approx(0.25)

    server.set_faults(api_error_share=0.5, api_error_status=503, retry_after_seconds=0.01, seed=3)
    file_ids = {backend.upload(shard()) for _ in range(3)}
    assert len(file_ids) == 3 and all(file_id.startswith("file-") for file_id in file_ids)


def test_cancel_of_a_running_batch_and_of_a_finished_one(start_server, request):
    server = start_server("--request-seconds", "0.05")
    backend = OpenAIBatchBackend(client=server.client())
    running = submit(backend, f"key-{request.node.name}", lines=40)
    wait_for_batch(server.client(), running.id, {"in_progress"})

    assert backend.cancel(running.id, retry=ONCE).status in {BatchStatus.CANCELLING, BatchStatus.CANCELLED}
    wait_for_batch(server.client(), running.id)
    with pytest.raises(BatchAlreadyEnded):
        backend.cancel(submit_and_finish(backend, server, f"key-{request.node.name}-2"), retry=ONCE)


def submit_and_finish(backend, server, key: str) -> str:
    state = submit(backend, key, lines=1)
    wait_for_batch(server.client(), state.id)
    return state.id


async def test_the_async_side_agrees_with_the_sync_side_and_shares_one_client(
    backend, shared_server, request
):
    state = submit(backend, f"key-{request.node.name}", lines=1)
    wait_for_batch(shared_server.client(), state.id)
    other = batch_backend("openai_default")

    looked = [await backend.aretrieve(state.id), await other.aretrieve(state.id)]

    assert looked[0] == looked[1] == backend.retrieve(state.id)
    # One SDK client (cancels) and the status reader made from it (looks), shared by every wait.
    assert sorted(shared_async_clients()) == ["openai:openai_default", "openai:openai_default:status"]
    with pytest.raises(BatchAlreadyEnded):
        await other.acancel(state.id, retry=ONCE)
    with pytest.raises(BatchNotFound):
        await other.aretrieve("batch_doesnotexist")


LINE_BREAKS_OF_STR_SPLITLINES = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]


def test_answers_holding_any_unicode_line_break_come_back_whole(backend, shared_server, request):
    """JSON leaves U+2028, U+2029 and U+0085 unescaped: a JSONL reader must split on ``\\n`` alone."""
    prompts = {
        f"r{i:02d}{brk}x": f"one{brk}two {brk}three" for i, brk in enumerate(LINE_BREAKS_OF_STR_SPLITLINES)
    }
    lines = [echo_line(custom_id, prompt) for custom_id, prompt in prompts.items()]
    content = jsonl(lines)
    assert (
        "\u2028".encode() in content and "\x85".encode() in content
    )  # raw, as a JSON encoder may leave them
    shard_input = BatchInput(
        name="breaks.jsonl", endpoint="/v1/completions", requests=len(lines), read=lambda: content
    )
    labels = {FAULTS_KEY: json.dumps({"line_failure_share": 0.5, "line_failure_status": 500, "seed": 3})}
    tag = SubmissionTag(f"key-{request.node.name}", 1, labels)
    state = backend.create_or_find(shard_input, tag, uploaded=backend.upload(shard_input)).state
    wait_for_batch(shared_server.client(), state.id)
    done = backend.retrieve(state.id)

    results = list(backend.results(done))

    answered = {line.custom_id: line for line in results if line.outcome is LineOutcome.ANSWERED}
    failed = {line.custom_id for line in results if line.outcome is LineOutcome.FAILED}
    assert done.counts.completed == len(answered) > 0 and done.counts.failed == len(failed) > 0
    assert sorted([*answered, *failed]) == sorted(prompts)
    for custom_id, line in answered.items():
        assert line.body["choices"][0]["text"].startswith(prompts[custom_id])
