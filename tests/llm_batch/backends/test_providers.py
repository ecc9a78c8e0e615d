"""Which backend a connection gets: a job moves between vendors by its connection alone."""

from __future__ import annotations

import asyncio
import json
import threading

import httpx2._transports.default
import pytest

from llm_batch.backends import Provider, abatch_backend, batch_backend
from llm_batch.backends.anthropic_backend import AnthropicBatchBackend
from llm_batch.backends.azure_backend import AzureOpenAIBatchBackend
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.backends.providers import provider_of
from llm_batch.backends.records import BatchInput, SubmissionTag
from llm_batch.retryable import PermanentError
from tests.conftest import chat_line, jsonl


@pytest.mark.parametrize(
    ("conn_type", "host", "extras", "provider"),
    [
        ("openai", None, {}, Provider.OPENAI),
        ("openai", "http://127.0.0.1:8765/v1", {}, Provider.OPENAI),
        ("openai", "https://res.openai.azure.com/openai/v1", {}, Provider.OPENAI),  # Azure's v1 surface
        ("openai", "https://res.openai.azure.com", {"api_version": "2024-10-21"}, Provider.AZURE),
        ("openai", None, {"azure_endpoint": "https://res.openai.azure.com"}, Provider.AZURE),
        ("pydanticai_azure", "https://res.openai.azure.com", {"api_version": "2024-10-21"}, Provider.AZURE),
        ("pydanticai_azure", "https://res.openai.azure.com/openai/v1", {}, Provider.OPENAI),
        ("anthropic", None, {}, Provider.ANTHROPIC),
        ("pydanticai", None, {"model": "anthropic:claude-haiku-4-5"}, Provider.ANTHROPIC),
        ("pydanticai", None, {"model": "openai:gpt-5"}, Provider.OPENAI),
    ],
)
def test_the_provider_follows_the_connections_type_and_extras(conn_type, host, extras, provider):
    assert provider_of(conn_type, host, extras) is provider


@pytest.fixture
def connections(shared_server, monkeypatch):
    root = f"http://127.0.0.1:{shared_server.port}"
    for conn_id, connection in {
        "vendor_openai": {
            "conn_type": "openai",
            "password": shared_server.api_key,
            "host": shared_server.base_url,
        },
        "vendor_azure": {
            "conn_type": "openai",
            "password": shared_server.api_key,
            "host": root,
            "extra": {"api_version": "2024-10-21"},
        },
        "vendor_azure_v1": {
            "conn_type": "openai",
            "password": shared_server.api_key,
            "host": f"{root}/openai/v1",
        },
        "vendor_anthropic": {"conn_type": "anthropic", "password": shared_server.api_key, "host": root},
        "vendor_azure_no_endpoint": {"conn_type": "pydanticai_azure", "password": "k"},
    }.items():
        monkeypatch.setenv(f"AIRFLOW_CONN_{conn_id.upper()}", json.dumps(connection))
    return shared_server


def chat_input(endpoint: str = "/v1/chat/completions") -> BatchInput:
    content = jsonl([chat_line("r1", "a fine kettle"), chat_line("r2", "broke at once")])
    return BatchInput(name="in.jsonl", endpoint=endpoint, requests=2, read=lambda: content)


@pytest.mark.parametrize(
    ("conn_id", "kind"),
    [
        ("vendor_openai", OpenAIBatchBackend),
        ("vendor_azure", AzureOpenAIBatchBackend),
        ("vendor_azure_v1", OpenAIBatchBackend),
    ],
)
def test_openai_shaped_connections_create_batches_on_their_surface(connections, conn_id, kind):
    backend = batch_backend(conn_id)
    assert type(backend) is kind
    made = backend.create_or_find(
        chat_input(), SubmissionTag(conn_id, 1), uploaded=backend.upload(chat_input())
    )
    state = backend.retrieve(made.state.id)
    # Azure's classic data plane names the endpoint without /v1; the others keep the library's name.
    assert state.endpoint == (
        "/chat/completions" if kind is AzureOpenAIBatchBackend else "/v1/chat/completions"
    )
    assert asyncio.run(_aretrieve(conn_id, state.id)).id == state.id


def test_an_anthropic_connection_gets_the_message_batches_backend(connections):
    backend = batch_backend("vendor_anthropic")
    assert isinstance(backend, AnthropicBatchBackend)
    assert backend.account == f"vendor_anthropic http://127.0.0.1:{connections.port}"
    assert backend.upload(chat_input()) == "inline"


def test_an_azure_connection_without_an_endpoint_says_what_to_set(connections):
    with pytest.raises(PermanentError, match="set its host"):
        batch_backend("vendor_azure_no_endpoint").account  # noqa: B018 - builds the client


@pytest.mark.parametrize(
    ("conn_id", "made_on_the_loop"),
    [("vendor_openai", 1), ("vendor_azure", 0), ("vendor_anthropic", 0)],
)
def test_a_waits_clients_set_up_tls_off_the_event_loop(connections, conn_id, made_on_the_loop, monkeypatch):
    """A TLS context reads the certificates from disk: made on the triggerer's loop, it would stall
    every other wait. The OpenAI hook's own client still makes one there, swapped out before use."""
    from llm_batch.backends.shared_clients import close_shared_async_clients

    made_in: list[int] = []
    create_ssl_context = httpx2._transports.default.create_ssl_context

    def recorded(*args, **kwargs):
        made_in.append(threading.get_ident())
        return create_ssl_context(*args, **kwargs)

    monkeypatch.setattr(httpx2._transports.default, "create_ssl_context", recorded)

    async def first_wait_connects() -> int:
        backend = await abatch_backend(conn_id)
        await backend.aconnect()
        await backend.adisconnect()
        await close_shared_async_clients()
        return threading.get_ident()

    loop_thread = asyncio.run(first_wait_connects())
    assert len(made_in) == made_on_the_loop + 1  # the client that serves the waits, made in a thread
    assert made_in.count(loop_thread) == made_on_the_loop


async def _aretrieve(conn_id: str, batch_id: str):
    from llm_batch.backends.shared_clients import close_shared_async_clients

    backend = await abatch_backend(conn_id)
    try:
        return await backend.aretrieve(batch_id)
    finally:
        await close_shared_async_clients()


def test_a_manual_runs_batch_connection_moves_the_job_to_that_vendor(connections):
    from dags.review_sentiment import JOB
    from llm_batch.steps import Connections, RunOptions

    options = RunOptions.from_params({"batch_conn_id": "vendor_anthropic", "model": "claude-haiku-4-5"})
    job = options.job_for(JOB)

    assert (job.openai_conn_id, job.model) == ("vendor_anthropic", "claude-haiku-4-5")
    backend = Connections.of(job).backend()
    assert isinstance(backend, AnthropicBatchBackend) and backend.job_for(job).endpoint == "/v1/messages"
    assert RunOptions.from_params({}).job_for(JOB) is JOB
