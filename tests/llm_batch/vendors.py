"""Each vendor's backend on the local server, and what the server holds of each: for tests that
run the same job through OpenAI, Azure OpenAI and Anthropic."""

from __future__ import annotations

from openai import AzureOpenAI

from llm_batch.backends import BatchBackend
from llm_batch.backends.anthropic_backend import AnthropicBatchBackend
from llm_batch.backends.azure_backend import AzureOpenAIBatchBackend
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from tests.batch_server import ServerProcess, anthropic_client

# The model each vendor's runs ask for (on Azure, the deployment's name).
MODELS = {"openai": "gpt-4o-mini", "azure": "gpt-4o-mini", "anthropic": "claude-haiku-4-5"}
AZURE_API_VERSION = "2024-10-21"


def azure_client(server: ServerProcess) -> AzureOpenAI:
    return AzureOpenAI(
        azure_endpoint=f"http://127.0.0.1:{server.port}",
        api_key=server.api_key or "unused",
        api_version=AZURE_API_VERSION,
        max_retries=0,
        _strict_response_validation=True,
    )


def backend_on(vendor: str, server: ServerProcess) -> BatchBackend:
    if vendor == "anthropic":
        return AnthropicBatchBackend(client=anthropic_client(server))
    if vendor == "azure":
        return AzureOpenAIBatchBackend(client=azure_client(server))
    return OpenAIBatchBackend(client=server.client())


def batch_ids_on(vendor: str, server: ServerProcess) -> list[str]:
    """Every batch the vendor's API lists (newest first)."""
    if vendor == "anthropic":
        return [b.id for b in anthropic_client(server).messages.batches.list(limit=100)]
    client = azure_client(server) if vendor == "azure" else server.client()
    return [b.id for b in client.batches.list(limit=100)]
