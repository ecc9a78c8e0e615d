"""Azure OpenAI's classic batch data plane as a batch backend.

The same Files and Batches contract as OpenAI's, reached through ``openai.AzureOpenAI``: the
connection's ``host`` (or ``azure_endpoint`` extra) is the resource endpoint, ``password`` the
key and the ``api_version`` extra the data plane's version; the job's model names a global-batch
deployment. Azure names batch endpoints without ``/v1``, so the lines' ``url`` is rewritten on
upload; the shard on object storage keeps the library's bytes (and fingerprints). Azure's v1
surface needs none of this: an ``openai`` connection whose host ends in ``/openai/v1`` is served
by the OpenAI backend as it is.
"""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson
from airflow.providers.common.compat.sdk import BaseHook
from openai import AsyncAzureOpenAI, AzureOpenAI

from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.backends.providers import Provider
from llm_batch.retryable import PermanentError

DEFAULT_API_VERSION = "2024-10-21"


class AzureOpenAIBatchBackend(OpenAIBatchBackend):
    """Batches of one Azure OpenAI resource.

    :param conn_id: The Airflow connection (``openai`` with Azure extras, or ``pydanticai_azure``).
    :param client: An ``AzureOpenAI`` client to use instead of the connection's (tests).
    """

    name = Provider.AZURE

    def __init__(self, conn_id: str = "openai_default", *, client: AzureOpenAI | None = None) -> None:
        super().__init__(conn_id, client=client)

    def _build_client(self) -> AzureOpenAI:
        conn = BaseHook.get_connection(self.conn_id)
        return AzureOpenAI(**azure_client_kwargs(self.conn_id, conn, conn.extra_dejson))

    async def _build_async_client(self) -> AsyncAzureOpenAI:
        conn = await get_async_connection(self.conn_id)
        extras = await get_async_extra_dejson(conn)
        kwargs = azure_client_kwargs(self.conn_id, conn, extras)
        # In a thread, as the OpenAI backend makes its HTTP client: TLS setup stays off the loop.
        return await asyncio.to_thread(AsyncAzureOpenAI, **kwargs, max_retries=0)

    def wire_endpoint(self, endpoint: str) -> str:
        return endpoint.removeprefix("/v1")

    def wire_lines(self, content: bytes, endpoint: str) -> bytes:
        ours = b'"url":' + orjson.dumps(endpoint)
        return content.replace(ours, b'"url":' + orjson.dumps(self.wire_endpoint(endpoint)))


def azure_client_kwargs(conn_id: str, conn: Any, extras: dict[str, Any]) -> dict[str, Any]:
    """``AzureOpenAI`` arguments from a connection: endpoint, key and API version."""
    endpoint = extras.get("azure_endpoint") or conn.host
    if not endpoint:
        raise PermanentError(
            f"Connection {conn_id!r} is an Azure OpenAI connection without an endpoint: set its host "
            "(or the azure_endpoint extra) to https://<resource>.openai.azure.com"
        )
    return {
        "azure_endpoint": endpoint,
        "api_key": extras.get("api_key") or conn.password,
        "api_version": extras.get("api_version") or DEFAULT_API_VERSION,
    }
