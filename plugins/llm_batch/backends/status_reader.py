"""The triggerer's look at a batch: one plain GET through an aiohttp session shared on the loop.

Why not the SDK's async client: building its request and passing it through httpx's connection
pool cost about 2 ms of CPU per call here, which held one triggerer loop under ~500 looks a
second, where 5,000 waits polling every 5 s need 1,000. The same GET through aiohttp costs about
0.2 ms. The SDK still defines what is sent and read: its client's base URL, default and auth
headers and default query (Azure's ``api-version``) make the request, and the SDK's model class
reads the answer (leniently, as the SDK itself does). Everything else stays on the SDK.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import aiohttp
import orjson

from llm_batch.backends.errors import BackendError, http_error
from llm_batch.backends.shared_clients import discard_shared_async_client, shared_async_client

# Connections of one reader: at 100 ms a look, 1,000 looks a second keep about 100 open; more
# wait for a free one. aiohttp's pool costs the same per look whatever its size.
STATUS_CONNECTIONS = 256


class StatusReader:
    """GETs of one provider account, made as its SDK client would make them."""

    def __init__(
        self, base_url: str, headers: Mapping[str, str], query: Mapping[str, str], *, made_from: Any = None
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.made_from = made_from  # the SDK client whose request this reader makes
        self._headers = dict(headers)
        self._query = dict(query)
        self._session: aiohttp.ClientSession | None = None
        self._looks = 0  # in flight
        self._retired = False

    @classmethod
    def of(cls, client: Any) -> StatusReader:
        """The reader of an ``openai.AsyncOpenAI`` / ``AsyncAzureOpenAI`` or ``anthropic.AsyncAnthropic``."""
        headers = {**client.default_headers, **client.auth_headers}
        # Headers the SDK leaves out (its ``Omit`` markers) are not strings.
        sent = {name: value for name, value in headers.items() if isinstance(value, str)}
        return cls(str(client.base_url), sent, client.default_query, made_from=client)

    async def get_json(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        """GET ``path`` (relative to the base URL); its JSON object, or a :class:`BackendError`."""
        if self._session is None:  # made on the loop that uses it, as aiohttp requires
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=STATUS_CONNECTIONS),
                headers=self._headers,
                trust_env=True,  # HTTP(S)_PROXY as the SDK's httpx client reads them
            )
        self._looks += 1
        try:
            async with self._session.get(
                self.base_url + path, params=self._query, timeout=aiohttp.ClientTimeout(total=timeout)
            ) as response:
                body = await response.read()
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise BackendError(f"{type(exc).__name__}: {exc or 'no answer'}") from None
        finally:
            self._looks -= 1
            if self._retired and not self._looks:
                await self.close()
        if response.status >= 400:
            raise http_error("HTTP", response.status, _error_message(body), response.headers)
        try:
            answer = orjson.loads(body)
        except orjson.JSONDecodeError:
            answer = None
        if not isinstance(answer, dict):
            raise BackendError(
                f"HTTP {response.status}: the answer is not a JSON object: {body[:200]!r}",
                status_code=response.status,
            )
        return answer

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def retire(self) -> None:
        """Close the session now, or when the last look still under way ends (other waits share it)."""
        self._retired = True
        if not self._looks:
            await self.close()


async def shared_status_reader(key: str, sdk_client: Callable[[], Awaitable[Any]]) -> StatusReader:
    """The running loop's reader for ``key``, made from the loop's SDK client of the same account."""

    async def build() -> StatusReader:
        return StatusReader.of(await sdk_client())

    return await shared_async_client(f"{key}:status", build)


async def discard_status_reader(key: str, reader: StatusReader) -> None:
    """Forget the loop's reader for ``key`` and the SDK client it was made from (after a 401: the
    key may have been rotated), so that the next look reads the connection again."""
    discard_shared_async_client(f"{key}:status", reader)
    discard_shared_async_client(key, reader.made_from)
    await reader.retire()


def _error_message(body: bytes) -> str:
    """The provider's own message (both shapes hold ``error.message``), else the start of the body."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return body[:200].decode(errors="replace")
