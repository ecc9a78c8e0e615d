"""Azure OpenAI's classic and v1 data planes: the OpenAI handlers, refused and authenticated as Azure does."""

from __future__ import annotations

import io
import json

import httpx
import openai
import pytest

from local_batch_api.faults import METADATA_KEY
from tests.batch_server import wait_for_batch
from tests.conftest import jsonl

API_VERSION = "2024-10-21"
DEPLOYMENT = "gpt-4o-mini-global-batch"


def azure_line(custom_id: str, url: str = "/chat/completions") -> dict:
    body = {"model": DEPLOYMENT, "messages": [{"role": "user", "content": f"Review {custom_id}: great"}]}
    return {"custom_id": custom_id, "method": "POST", "url": url, "body": body}


def classic(server, **kwargs) -> openai.AzureOpenAI:
    kwargs.setdefault("api_key", server.api_key)
    return openai.AzureOpenAI(
        azure_endpoint=f"http://127.0.0.1:{server.port}",
        api_version=API_VERSION,
        max_retries=0,
        _strict_response_validation=True,
        **kwargs,
    )


def v1(server, **kwargs) -> openai.OpenAI:
    kwargs.setdefault("api_key", server.api_key)
    return openai.OpenAI(
        base_url=f"http://127.0.0.1:{server.port}/openai/v1",
        max_retries=0,
        _strict_response_validation=True,
        **kwargs,
    )


def run(client, lines, endpoint="/chat/completions", **faults):
    file = client.files.create(file=("input.jsonl", io.BytesIO(jsonl(lines))), purpose="batch")
    metadata = {METADATA_KEY: json.dumps(faults)} if faults else None
    batch = client.batches.create(
        input_file_id=file.id, endpoint=endpoint, completion_window="24h", metadata=metadata
    )
    return wait_for_batch(client, batch.id)


def output(client, file_id) -> list[dict]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_classic_paths_run_a_batch_against_a_deployment(shared_server):
    client = classic(shared_server)
    done = run(client, [azure_line(f"r{i}") for i in range(6)])
    assert done.status == "completed" and done.endpoint == "/chat/completions"
    assert done.request_counts.completed == 6 and done.model == DEPLOYMENT
    lines = output(client, done.output_file_id)
    assert {line["response"]["body"]["model"] for line in lines} == {DEPLOYMENT}
    assert client.batches.retrieve(done.id).id == done.id
    assert done.id in [b.id for b in client.batches.list(limit=100)]
    assert client.files.retrieve(done.output_file_id).purpose == "batch_output"
    # The same objects as the OpenAI surface: one store behind both.
    assert shared_server.client().batches.retrieve(done.id) == done


def test_classic_paths_cancel_and_expire(start_server):
    server = start_server("--request-seconds", "0.02")
    client = classic(server)
    half = run(client, [azure_line(f"r{i}") for i in range(10)], expire_after_share=0.5)
    assert half.status == "expired" and half.request_counts.completed == 5
    expired = output(client, half.error_file_id)
    assert {line["error"]["code"] for line in expired} == {"batch_expired"}

    file = client.files.create(
        file=("input.jsonl", io.BytesIO(jsonl([azure_line(f"c{i}") for i in range(100)]))), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/chat/completions", completion_window="24h"
    )
    wait_for_batch(client, batch.id, {"in_progress"})
    assert client.batches.cancel(batch.id).status == "cancelling"
    assert wait_for_batch(client, batch.id).status == "cancelled"


def test_the_v1_surface_runs_batches_with_the_openai_client(shared_server):
    client = v1(shared_server)
    done = run(
        client, [azure_line(f"r{i}", "/v1/chat/completions") for i in range(3)], "/v1/chat/completions"
    )
    assert done.status == "completed" and done.request_counts.completed == 3
    embeddings = run(
        client,
        [{**azure_line("e", "/v1/embeddings"), "body": {"model": "emb", "input": "hello"}}],
        "/v1/embeddings",
    )
    assert embeddings.status == "completed"
    assert client.chat.completions.create(
        model=DEPLOYMENT, messages=[{"role": "user", "content": "Hi"}]
    ).choices


def test_endpoints_azure_does_not_batch_are_refused(shared_server):
    with pytest.raises(openai.BadRequestError):
        run(classic(shared_server), [azure_line("r", "/completions")], "/completions")


def test_a_missing_api_version_is_not_found_as_azure_answers(shared_server):
    root = f"http://127.0.0.1:{shared_server.port}/openai"
    headers = {"api-key": shared_server.api_key}
    missing = httpx.get(f"{root}/batches", headers=headers)
    assert missing.status_code == 404
    assert missing.json() == {"error": {"code": "404", "message": "Resource not found"}}
    old = httpx.get(f"{root}/batches", params={"api-version": "2024-02-01"}, headers=headers)
    assert old.status_code == 400 and old.json()["error"]["message"] == "API version not supported"
    assert (
        httpx.get(f"{root}/batches", params={"api-version": API_VERSION}, headers=headers).status_code == 200
    )
    assert httpx.get(f"{root}/v1/batches", headers=headers).status_code == 200
    assert (
        httpx.get(f"{root}/v1/batches", params={"api-version": "preview"}, headers=headers).status_code == 200
    )
    assert (
        httpx.get(f"{root}/v1/batches", params={"api-version": API_VERSION}, headers=headers).status_code
        == 400
    )


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/openai/deployments/gpt-4o/chat/completions"),
        ("GET", "/openai/models"),
        ("GET", "/openai/v1/fine_tuning/jobs"),
        ("PUT", "/openai/batches"),
    ],
)
def test_anything_else_is_not_found(shared_server, method, path):
    response = httpx.request(
        method,
        f"http://127.0.0.1:{shared_server.port}{path}",
        params={"api-version": API_VERSION},
        headers={"api-key": shared_server.api_key},
    )
    assert response.status_code == 404
    assert response.json() == {"error": {"code": "404", "message": "Resource not found"}}


def test_the_key_comes_in_the_api_key_header(shared_server):
    with pytest.raises(openai.AuthenticationError) as refused:
        classic(shared_server, api_key="wrong").batches.list()
    assert refused.value.body["code"] == "401" and "Access denied" in refused.value.body["message"]
    with pytest.raises(openai.AuthenticationError):
        v1(shared_server, api_key="wrong").batches.list()
    root = f"http://127.0.0.1:{shared_server.port}"
    assert httpx.get(f"{root}/openai/v1/files", headers={"api-key": shared_server.api_key}).status_code == 200
    # The api-key header is Azure's: the OpenAI surface does not take it.
    assert httpx.get(f"{root}/v1/files", headers={"api-key": shared_server.api_key}).status_code == 401


def test_server_faults_reach_the_azure_paths(start_server):
    server = start_server("--fault", "line_failure_share=1.0", "--fault", "line_failure_status=429")
    client = classic(server)
    done = run(client, [azure_line(f"r{i}") for i in range(3)])
    assert done.request_counts.failed == 3
    server.set_faults(api_error_share=1.0, api_error_status=429, retry_after_seconds=0.01)
    with pytest.raises(openai.RateLimitError):
        client.batches.list()
    with pytest.raises(openai.RateLimitError):
        v1(server).files.list()
