"""Airflow's OpenAIHook as a second client: the provider's batch calls work against the server."""

from __future__ import annotations

import json

import pytest
from airflow.providers.openai.exceptions import OpenAIBatchCancelled, OpenAIBatchJobException
from airflow.providers.openai.hooks.openai import BatchStatus, OpenAIHook

from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, jsonl


@pytest.fixture
def hook(shared_server, monkeypatch):
    connection = {"conn_type": "openai", "password": shared_server.api_key, "host": shared_server.base_url}
    monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps(connection))
    return OpenAIHook()


def test_hook_uploads_creates_waits_and_reads_results(hook, tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(jsonl([chat_line(f"r{i}", "I love it") for i in range(3)]))
    file = hook.upload_file(str(path), purpose="batch")
    batch = hook.create_batch(file_id=file.id, endpoint="/v1/chat/completions", metadata={"source": "hook"})
    assert batch.status == "validating"

    hook.wait_for_batch(batch.id, wait_seconds=0.05, timeout=60)

    done = hook.get_batch(batch.id)
    assert done.status == BatchStatus.COMPLETED
    assert done.request_counts.completed == 3
    assert hook.get_file(done.output_file_id).purpose == "batch_output"


def test_hook_cancel_batch(hook, shared_server, tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(jsonl([chat_line("r", "fine")]))
    batch = hook.create_batch(
        file_id=hook.upload_file(str(path), purpose="batch").id, endpoint="/v1/chat/completions"
    )
    assert hook.cancel_batch(batch.id).status == "cancelling"
    with pytest.raises(OpenAIBatchCancelled):
        hook.wait_for_batch(batch.id, wait_seconds=0.05, timeout=60)
    assert wait_for_batch(shared_server.client(), batch.id).status == "cancelled"


def test_hook_wait_raises_for_a_failed_batch(hook, tmp_path):
    path = tmp_path / "requests.jsonl"
    path.write_bytes(b"not json\n")
    batch = hook.create_batch(
        file_id=hook.upload_file(str(path), purpose="batch").id, endpoint="/v1/chat/completions"
    )
    with pytest.raises(OpenAIBatchJobException):
        hook.wait_for_batch(batch.id, wait_seconds=0.05, timeout=60)
    assert hook.get_batch(batch.id).errors.data[0].code == "invalid_json_line"


async def test_async_client_from_aget_conn(hook):
    client = await hook.aget_conn()
    page = await client.batches.list(limit=1)
    assert page.object == "list"
    await client.close()
