"""Answers each request by forwarding it to an OpenAI-compatible synchronous server.

``/v1/messages`` goes to the upstream's ``/messages`` with Anthropic's headers (``x-api-key``,
``anthropic-version``), so an Anthropic-compatible upstream answers Message Batches too.

Bounded concurrency keeps the upstream's rate limits in reach; transient failures (429, 5xx,
connection errors) are retried with backoff, honouring ``Retry-After``. What still fails is
returned as that request's reply, so the batch records it in its error file as the service does.
"""

from __future__ import annotations

import asyncio
import random

import httpx
import orjson

from local_batch_api.engines import EngineReply, error_body

RETRYABLE_STATUS = frozenset({408, 409, 429, 500, 502, 503, 504, 529})
ANTHROPIC_VERSION = "2023-06-01"


class UpstreamEngine:
    def __init__(
        self,
        base_url: str,
        *,
        api_key: str | None = None,
        concurrency: int = 16,
        max_retries: int = 3,
        timeout_seconds: float = 600.0,
        backoff_seconds: float = 0.5,
    ) -> None:
        headers = {"content-type": "application/json"}
        self._client = httpx.AsyncClient(
            base_url=base_url.rstrip("/"),
            headers=headers,
            timeout=timeout_seconds,
            limits=httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency),
        )
        # Each dialect's key header, and only that one: Anthropic reads a bearer token as OAuth.
        self._openai_headers = {"authorization": f"Bearer {api_key}"} if api_key else {}
        self._anthropic_headers = {"anthropic-version": ANTHROPIC_VERSION}
        if api_key:
            self._anthropic_headers["x-api-key"] = api_key
        self._slots = asyncio.Semaphore(concurrency)
        self._max_retries = max_retries
        self._backoff = backoff_seconds

    async def answer_many(self, url: str, bodies: list[dict]) -> list[EngineReply]:
        path = url.removeprefix("/v1")
        return list(await asyncio.gather(*(self._answer(path, body) for body in bodies)))

    async def _answer(self, path: str, body: dict) -> EngineReply:
        payload = orjson.dumps(body)
        attempt = 0
        while True:
            async with self._slots:
                reply, retry_after = await self._post(path, payload)
            if reply.status_code not in RETRYABLE_STATUS or attempt >= self._max_retries:
                return reply
            attempt += 1
            delay = retry_after if retry_after is not None else self._backoff * 2 ** (attempt - 1)
            await asyncio.sleep(min(delay, 60.0) * (1 + random.random() * 0.1))

    async def _post(self, path: str, payload: bytes) -> tuple[EngineReply, float | None]:
        try:
            headers = self._anthropic_headers if path == "/messages" else self._openai_headers
            response = await self._client.post(path, content=payload, headers=headers)
        except httpx.HTTPError as exc:
            body = error_body(f"Upstream request failed: {type(exc).__name__}.", type="server_error")
            return EngineReply(502, body), None
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict):
            body = error_body(
                f"Upstream answered {response.status_code} with a body that is not JSON.", type="server_error"
            )
            status = response.status_code if response.status_code >= 400 else 502
            return EngineReply(status, body), None
        return EngineReply(response.status_code, body), _retry_after(response.headers)

    async def aclose(self) -> None:
        await self._client.aclose()


def _retry_after(headers: httpx.Headers) -> float | None:
    if "retry-after-ms" in headers:
        try:
            return float(headers["retry-after-ms"]) / 1000
        except ValueError:
            pass
    try:
        return float(headers["retry-after"]) if "retry-after" in headers else None
    except ValueError:
        return None
