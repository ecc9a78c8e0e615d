"""The OpenAI Batch API (and any server with its contract) as a batch backend.

Clients come from the provider's ``OpenAIHook``: a sync client per backend for worker-side
calls, and one async client per (connection, event loop) for the triggerer. Both are built with
the SDK's own retries off, so every retry follows ``retry`` and a create is never repeated
blindly: the submission key travels in the batch's metadata, and a create whose answer was lost
is looked up by it before being tried again.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import io
import logging
from collections.abc import Callable, Iterator
from typing import Any

import openai
import orjson
from airflow.providers.openai.hooks.openai import OpenAIHook
from openai import AsyncOpenAI, OpenAI
from openai.types import Batch

from llm_batch.backends.base import BatchBackend
from llm_batch.backends.errors import (
    translated_errors,
)
from llm_batch.backends.jsonl import jsonl_records
from llm_batch.backends.providers import Provider
from llm_batch.backends.records import (
    BatchInput,
    BatchProblem,
    BatchState,
    BatchStatus,
    BatchTimes,
    LineOutcome,
    RequestCounts,
    ResultLine,
    SubmissionTag,
    SubmitResult,
    TokenUsage,
)
from llm_batch.backends.retry import (
    ONCE,
    READ_RETRY,
    RetryPolicy,
    acall_with_retries,
    call_with_retries,
    create_once,
)
from llm_batch.backends.status_reader import LoopClients, sdk_model
from llm_batch.clock import utcnow

log = logging.getLogger(__name__)

DEFAULT_CONN_ID = "openai_default"
METADATA_KEY = "llm_batch_key"
METADATA_GENERATION = "llm_batch_generation"
ORPHAN_SCAN_LIMIT = 500  # the list has no server-side filter: bound the scan of an account's history
CLOCK_SLACK = dt.timedelta(minutes=10)  # the service's clock against ours
UPLOAD_RETRY = RetryPolicy(tries=3, base=1.0, cap=30.0)
# The shared async client's connections. On the triggerer it cancels batches (looks go through
# ``status_reader``); bounded because httpcore walks every connection of its pool, probing the idle
# ones' sockets, each time a request starts or ends (the SDK's default allows 1,000).
TRIGGER_POOL_CONNECTIONS = 64
_LINE_OUTCOMES = {"batch_expired": LineOutcome.EXPIRED, "batch_cancelled": LineOutcome.CANCELLED}


class OpenAIBatchBackend(BatchBackend):
    """Batches of one OpenAI connection.

    :param conn_id: The Airflow connection (type ``openai``): key, and base URL in ``host``.
    :param client: A sync client to use instead of the connection's (tests: custom transports).
    """

    name = Provider.OPENAI

    def __init__(self, conn_id: str = DEFAULT_CONN_ID, *, client: OpenAI | None = None) -> None:
        self.conn_id = conn_id
        self._client = client.with_options(max_retries=0) if client is not None else None
        self._loop = LoopClients(f"{self.name}:{conn_id}", self._build_async_client)

    # --- worker side -------------------------------------------------------------------------

    @property
    def client(self) -> OpenAI:
        """The sync client, built from the connection on first use."""
        if self._client is None:
            self._client = self._build_client().with_options(max_retries=0)
        return self._client

    def _build_client(self) -> OpenAI:
        return OpenAIHook(conn_id=self.conn_id).get_conn()

    def wire_endpoint(self, endpoint: str) -> str:
        """The batch endpoint as this service names it (the library's names are OpenAI's)."""
        return endpoint

    def wire_lines(self, content: bytes, endpoint: str) -> bytes:
        """The shard's request lines as this service takes them."""
        return content

    @property
    def account(self) -> str:
        return f"{self.conn_id} {str(self.client.base_url).rstrip('/')}"

    def upload(self, batch_input: BatchInput) -> str:
        content = self.wire_lines(batch_input.read(), batch_input.endpoint)

        def create_file() -> str:
            with _translated():
                file = self.client.files.create(file=(batch_input.name, io.BytesIO(content)), purpose="batch")
            return file.id

        return call_with_retries(create_file, UPLOAD_RETRY, "Uploading the batch input")

    def create_or_find(
        self, batch_input: BatchInput, tag: SubmissionTag, *, uploaded: str | None
    ) -> SubmitResult:
        if uploaded is None:
            raise ValueError("the OpenAI Batch API creates batches from an uploaded file: upload first")
        metadata = {METADATA_KEY: tag.key, METADATA_GENERATION: str(tag.generation), **tag.labels}
        started = utcnow()

        def create() -> SubmitResult:
            with _translated():
                batch = self.client.batches.create(
                    input_file_id=uploaded,
                    endpoint=self.wire_endpoint(batch_input.endpoint),
                    completion_window="24h",
                    metadata=metadata,
                )
            return SubmitResult(batch_state(batch), recovered=False)

        def find_lost() -> SubmitResult | None:
            found = self.find(tag.key, tag.generation, not_before=started)
            return SubmitResult(found, recovered=True) if found is not None else None

        return create_once(create, find_lost, "Creating the batch")

    def find(
        self,
        key: str,
        generation: int,
        *,
        not_before: dt.datetime,
        sent: BatchInput | None = None,
        recorded: Callable[[str], bool] | None = None,
    ) -> BatchState | None:
        cutoff = (not_before - CLOCK_SLACK).replace(tzinfo=dt.UTC).timestamp()

        def scan() -> BatchState | None:
            with _translated():
                for scanned, batch in enumerate(self.client.batches.list(limit=100)):
                    if scanned >= ORPHAN_SCAN_LIMIT or batch.created_at < cutoff:
                        return None
                    metadata = batch.metadata or {}
                    if metadata.get(METADATA_KEY) == key and metadata.get(METADATA_GENERATION) == str(
                        generation
                    ):
                        return batch_state(batch)
            return None

        return call_with_retries(scan, READ_RETRY, "Looking for the batch by its key")

    def retrieve(
        self, batch_id: str, *, retry: RetryPolicy = ONCE, timeout: float | None = None
    ) -> BatchState:
        def retrieve_once() -> BatchState:
            with _translated():
                return batch_state(self.client.batches.retrieve(batch_id, **_timeout(timeout)))

        return call_with_retries(retrieve_once, retry, f"Looking at batch {batch_id}")

    def cancel(self, batch_id: str, *, retry: RetryPolicy, timeout: float | None = None) -> BatchState:
        def cancel_once() -> BatchState:
            with _translated(cancelling=True):
                return batch_state(self.client.batches.cancel(batch_id, **_timeout(timeout)))

        return call_with_retries(cancel_once, retry, f"Cancelling batch {batch_id}")

    def results(self, state: BatchState) -> Iterator[ResultLine]:
        for raw in self._lines(state.output_ref):
            yield _answered_line(orjson.loads(raw))
        for raw in self._lines(state.error_ref):
            yield _failed_line(orjson.loads(raw))

    def refresh_credentials(self) -> None:
        self.close()
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    def _lines(self, file_id: str | None) -> Iterator[bytes]:
        if not file_id:
            return

        def open_content(stack: contextlib.ExitStack) -> Any:
            with _translated():
                return stack.enter_context(self.client.files.with_streaming_response.content(file_id))

        with contextlib.ExitStack() as stack:
            response = call_with_retries(lambda: open_content(stack), READ_RETRY, f"Reading file {file_id}")
            yield from jsonl_records(response.iter_bytes())

    # --- triggerer side ----------------------------------------------------------------------

    async def _build_async_client(self) -> AsyncOpenAI:
        limits = type(openai.DEFAULT_CONNECTION_LIMITS)(
            max_connections=TRIGGER_POOL_CONNECTIONS, max_keepalive_connections=TRIGGER_POOL_CONNECTIONS
        )
        # In a thread: an HTTP client reads its TLS context from disk and, in a fresh process,
        # imports its transport first (0.3-0.6 s on a busy day here), which on the loop would
        # stall every other wait. The hook's client still makes its own TLS context on the loop
        # (one, tens of ms, once per account and loop); it has not connected, so swapping it
        # leaves nothing open.
        http_client = await asyncio.to_thread(openai.DefaultAsyncHttpxClient, limits=limits)
        built = await OpenAIHook(conn_id=self.conn_id).aget_conn()
        return built.with_options(max_retries=0, http_client=http_client)

    async def aretrieve(self, batch_id: str, *, timeout: float | None = None) -> BatchState:
        return batch_state(
            sdk_model(Batch, await self._loop.get_json(f"batches/{batch_id}", timeout=timeout))
        )

    async def acancel(self, batch_id: str, *, retry: RetryPolicy, timeout: float | None = None) -> BatchState:
        async def cancel_once() -> BatchState:
            client = await self._loop.sdk_client()
            with _translated(cancelling=True):
                return batch_state(await client.batches.cancel(batch_id, **_timeout(timeout)))

        return await acall_with_retries(cancel_once, retry, f"Cancelling batch {batch_id}")


def batch_state(batch: Any) -> BatchState:
    """The typed state of an SDK ``Batch``."""
    counts = batch.request_counts
    usage = batch.usage
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    return BatchState(
        id=batch.id,
        status=BatchStatus(batch.status),
        endpoint=batch.endpoint,
        model=getattr(batch, "model", None),
        counts=RequestCounts(counts.total, counts.completed, counts.failed) if counts else RequestCounts(),
        usage=TokenUsage(
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
            total_tokens=usage.total_tokens,
            cached_tokens=_detail(usage, "input_tokens_details", "cached_tokens"),
            reasoning_tokens=_detail(usage, "output_tokens_details", "reasoning_tokens"),
        )
        if usage
        else TokenUsage(),
        problems=tuple(BatchProblem(e.code, e.message, e.param, e.line) for e in errors),
        times=BatchTimes(
            created_at=batch.created_at,
            in_progress_at=batch.in_progress_at,
            finalizing_at=batch.finalizing_at,
            completed_at=batch.completed_at,
            failed_at=batch.failed_at,
            expired_at=batch.expired_at,
            cancelling_at=batch.cancelling_at,
            cancelled_at=batch.cancelled_at,
        ),
        input_ref=batch.input_file_id,
        output_ref=batch.output_file_id,
        error_ref=batch.error_file_id,
    )


def _answered_line(line: dict[str, Any]) -> ResultLine:
    return ResultLine(
        line.get("custom_id"), LineOutcome.ANSWERED, (line.get("response") or {}).get("body") or {}
    )


def _failed_line(line: dict[str, Any]) -> ResultLine:
    error = line.get("error") or {}
    if (outcome := _LINE_OUTCOMES.get(error.get("code"))) is not None:
        return ResultLine(
            line.get("custom_id"), outcome, error_code=error["code"], error_message=error.get("message")
        )
    response = line.get("response") or {}
    body_error = (response.get("body") or {}).get("error") or {}
    return ResultLine(
        line.get("custom_id"),
        LineOutcome.FAILED,
        status_code=response.get("status_code"),
        error_code=body_error.get("code") or error.get("code"),
        error_message=body_error.get("message") or error.get("message"),
    )


def _translated(*, cancelling: bool = False) -> translated_errors:
    """Raise the SDK's exceptions as ``BackendError``s."""
    return translated_errors(openai.OpenAIError, openai.APIStatusError, cancelling=cancelling)


def _timeout(seconds: float | None) -> dict[str, float]:
    return {"timeout": seconds} if seconds is not None else {}


def _detail(usage: Any, details: str, field: str) -> int:
    return getattr(getattr(usage, details, None), field, None) or 0
