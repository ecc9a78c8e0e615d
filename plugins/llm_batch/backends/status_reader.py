"""The triggerer's look at a batch: one plain GET through an aiohttp session shared on the loop.

Why not the SDK's async client: building its request and passing it through httpx's connection
pool cost about 2 ms of CPU per call here, which held one triggerer loop under ~500 looks a
second, where 5,000 waits polling every 5 s need 1,000. The same GET through aiohttp costs about
0.2 ms. The SDK still defines what is sent and read: its client's base URL, default and auth
headers and default query (Azure's ``api-version``) make the request, and the SDK's model class
reads the answer (``sdk_model``). Everything else stays on the SDK.

``LoopClients`` is a wait's handle on both, shared by every wait of an account on the loop.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar

import aiohttp
import orjson
import pydantic
from aiohttp.helpers import get_env_proxy_for_url
from yarl import URL

from llm_batch.backends.errors import BackendError, http_error
from llm_batch.backends.shared_clients import discard_shared_async_client, shared_async_client

# Connections of one reader: at 100 ms a look, 1,000 looks a second keep about 100 open; more
# wait for a free one. aiohttp's pool costs the same per look whatever its size.
STATUS_CONNECTIONS = 256


class StatusReader:
    """GETs of one provider account, made as its SDK client would make them."""

    def __init__(
        self,
        base_url: str,
        headers: Mapping[str, str],
        query: Mapping[str, str],
        *,
        proxy: tuple[URL, aiohttp.BasicAuth | None] | None = None,
        made_from: Any = None,
    ) -> None:
        self.base_url = base_url.rstrip("/") + "/"
        self.made_from = made_from  # the SDK client whose request this reader makes
        self._headers = dict(headers)
        self._query = dict(query)
        self._proxy, self._proxy_auth = proxy or (None, None)
        self._session: aiohttp.ClientSession | None = None
        self._looks = 0  # in flight
        self._holders = 0  # waits between their first look and their end (``LoopClients``)
        self._retired = False

    @classmethod
    async def of(cls, client: Any) -> StatusReader:
        """The reader of an ``openai.AsyncOpenAI`` / ``AsyncAzureOpenAI`` or ``anthropic.AsyncAnthropic``."""
        headers = {**client.default_headers, **client.auth_headers}
        # Headers the SDK leaves out (its ``Omit`` markers) are not strings.
        sent = {name: value for name, value in headers.items() if isinstance(value, str)}
        base_url = str(client.base_url)
        return cls(base_url, sent, client.default_query, proxy=await env_proxy(base_url), made_from=client)

    async def get_json(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        """GET ``path`` (relative to the base URL); its JSON object, or a :class:`BackendError`."""
        if self._session is None:  # made on the loop that uses it, as aiohttp requires
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=STATUS_CONNECTIONS),
                headers=self._headers,
                proxy=self._proxy,
                proxy_auth=self._proxy_auth,
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
            await self._close_if_idle()
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

    @property
    def closed(self) -> bool:
        """No session open: none was made yet, or the last look or wait using it has ended."""
        return self._session is None

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    def hold(self) -> None:
        self._holders += 1

    async def release(self) -> None:
        self._holders -= 1
        await self._close_if_idle()

    async def retire(self) -> None:
        """Close the session now, or when the last look still under way ends (other waits share it)."""
        self._retired = True
        await self._close_if_idle()

    async def _close_if_idle(self) -> None:
        # Open while a wait holds it: an event loop that ends (as under ``airflow dags test``)
        # must not be left with an open session, and a look made without a hold closes it after.
        if not self._looks and (self._retired or not self._holders):
            await self.close()


class LoopClients:
    """One wait's clients of its account on the triggerer's loop, each shared by every wait there:
    the SDK client (cancels) and the status reader made from it (looks).

    The reader is held from :meth:`hold` to :meth:`release`, so that its session closes once the
    last wait using it ends.
    """

    def __init__(self, key: str, build_sdk_client: Callable[[], Awaitable[Any]]) -> None:
        self._key, self._build_sdk_client = key, build_sdk_client
        self._sdk_client: Any = None  # the last one used
        self._reader: StatusReader | None = None  # the last one used
        self._held: StatusReader | None = None
        self._holding = False

    async def sdk_client(self) -> Any:
        """The loop's SDK client of the account, built on first use."""
        self._sdk_client = await shared_async_client(self._key, self._build_sdk_client)
        return self._sdk_client

    async def reader(self) -> StatusReader:
        """The loop's status reader of the account, made on first use; held if this wait holds one."""

        async def build() -> StatusReader:
            return await StatusReader.of(await self.sdk_client())

        reader = self._reader = await shared_async_client(f"{self._key}:status", build)
        if self._holding and reader is not self._held:  # first use, or made anew after a discard
            reader.hold()
            if self._held is not None:
                await self._held.release()
            self._held = reader
        return reader

    async def get_json(self, path: str, *, timeout: float | None = None) -> dict[str, Any]:
        """A look: ``path`` read through the reader (see :meth:`StatusReader.get_json`)."""
        return await (await self.reader()).get_json(path, timeout=timeout)

    async def hold(self) -> None:
        self._holding = True
        await self.reader()

    async def release(self) -> None:
        self._holding = False
        if (held := self._held) is not None:
            self._held = None
            await held.release()

    async def discard(self) -> None:
        """Forget the loop's SDK client and reader (after a 401: the key may have been rotated), so
        that the next call reads the connection again. Not closed while other waits still use them."""
        for client in (self._sdk_client, self._reader and self._reader.made_from):
            if client is not None:
                discard_shared_async_client(self._key, client)
        self._sdk_client = None
        if (reader := self._reader) is not None:
            discard_shared_async_client(f"{self._key}:status", reader)
            await reader.retire()


async def env_proxy(url: str) -> tuple[URL, aiohttp.BasicAuth | None] | None:
    """The proxy ``HTTP(S)_PROXY`` / ``NO_PROXY`` (and ``~/.netrc``) give ``url``, as the SDK's httpx
    client reads them. Read once per reader: aiohttp's ``trust_env`` reads them on every request,
    in a thread, which doubled the CPU of a look."""
    try:
        return await asyncio.to_thread(get_env_proxy_for_url, URL(url))
    except LookupError:
        return None


M = TypeVar("M", bound=pydantic.BaseModel)


def sdk_model(model: type[M], answer: dict[str, Any]) -> M:
    """``answer`` as the SDK's ``model``: validated by pydantic-core (about 10 µs), or, when the
    service sends what the SDK's types do not know yet, built leniently as the SDK builds it
    (``construct``, about 50 µs: a fifth of a look's CPU)."""
    try:
        return model.model_validate(answer)
    except pydantic.ValidationError:
        return model.construct(**answer)


def _error_message(body: bytes) -> str:
    """The provider's own message (both shapes hold ``error.message``), else the start of the body."""
    try:
        error = orjson.loads(body).get("error")
    except (orjson.JSONDecodeError, AttributeError):
        error = None
    if isinstance(error, dict) and isinstance(error.get("message"), str):
        return error["message"]
    return body[:200].decode(errors="replace")
