"""Anthropic's Message Batches as a batch backend.

There is no file to upload: a batch is created with its requests inline, each a Messages API
body (``endpoints/messages.py`` builds them from the job). Batches carry no metadata either, so
a create whose answer was lost is recognised by what it holds: created after the submission's
intent, with as many requests as were sent, and (once it has ended) the same custom_ids. When
more than one batch fits and none can be told apart, nothing is created and the submission stops
with the candidates named: paying twice is worse than asking a person.

The connection (type ``anthropic``, or common-ai's ``pydanticai`` with an ``anthropic:`` model):
``password`` is the API key, ``host`` the base URL (empty for Anthropic itself).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import datetime as dt
import logging
from collections.abc import Callable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

import anthropic
import orjson
from anthropic import Anthropic, AsyncAnthropic
from anthropic.types.messages import MessageBatch

from llm_batch.backends.base import BatchBackend
from llm_batch.backends.errors import (
    BatchAlreadyEnded,
    translated_errors,
)
from llm_batch.backends.jsonl import jsonl_records
from llm_batch.backends.providers import Provider
from llm_batch.backends.records import (
    BatchInput,
    BatchState,
    BatchStatus,
    BatchTimes,
    LineOutcome,
    RequestCounts,
    ResultLine,
    SubmissionTag,
    SubmitResult,
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
from llm_batch.endpoints import CHAT, MESSAGES, RESPONSES
from llm_batch.retryable import PermanentError

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

log = logging.getLogger(__name__)

INLINE_INPUT = "inline"  # the "upload" reference: the requests go with the create itself
ORPHAN_SCAN_LIMIT = 500
CLOCK_SLACK = dt.timedelta(minutes=2)  # the service's clock against ours
# Anthropic's error types and the HTTP status each comes with: a request that ended ``errored``
# with a retryable one (429, 500, 529) goes to the next round like a 429 or 5xx line of OpenAI's.
ERROR_STATUS = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "billing_error": 402,
    "permission_error": 403,
    "not_found_error": 404,
    "request_too_large": 413,
    "rate_limit_error": 429,
    "api_error": 500,
    "timeout_error": 504,
    "overloaded_error": 529,
}
_NEVER_RAN = {"canceled": LineOutcome.CANCELLED, "expired": LineOutcome.EXPIRED}


class AmbiguousOrphanBatches(PermanentError):
    """More than one batch could be the one a lost create made; which one is for a person to say."""


class AnthropicBatchBackend(BatchBackend):
    """Message Batches of one Anthropic connection.

    :param conn_id: The Airflow connection: key in ``password``, base URL in ``host``.
    :param client: A sync client to use instead of the connection's (tests).
    :param async_client: An async client to use instead of the connection's (tests).
    """

    name = Provider.ANTHROPIC

    def __init__(
        self,
        conn_id: str = "anthropic_default",
        *,
        client: Anthropic | None = None,
        async_client: AsyncAnthropic | None = None,
    ) -> None:
        self.conn_id = conn_id
        self._client = client.with_options(max_retries=0) if client is not None else None
        self._given_async_client = async_client
        self._loop = LoopClients(f"{self.name}:{conn_id}", self._build_async_client)

    def job_for(self, job: BatchJob) -> BatchJob:
        if job.endpoint in (CHAT, RESPONSES):
            return dataclasses.replace(job, endpoint=MESSAGES)
        if job.endpoint != MESSAGES:
            raise PermanentError(
                f"{job.name}: Anthropic's Message Batches have no {job.endpoint} endpoint; run this job "
                "through an OpenAI or Azure OpenAI connection"
            )
        return job

    # --- worker side -------------------------------------------------------------------------

    @property
    def client(self) -> Anthropic:
        if self._client is None:
            from airflow.providers.common.compat.sdk import BaseHook

            conn = BaseHook.get_connection(self.conn_id)
            self._client = Anthropic(**anthropic_client_kwargs(conn, conn.extra_dejson))
        return self._client

    @property
    def account(self) -> str:
        return f"{self.conn_id} {str(self.client.base_url).rstrip('/')}"

    def upload(self, batch_input: BatchInput) -> str:
        return INLINE_INPUT

    def create_or_find(
        self, batch_input: BatchInput, tag: SubmissionTag, *, uploaded: str | None
    ) -> SubmitResult:
        requests = message_requests(batch_input.read())
        started = utcnow()

        def create() -> SubmitResult:
            with _translated():
                batch = self.client.messages.batches.create(requests=requests)
            return SubmitResult(batch_state(batch), recovered=False)

        def find_lost() -> SubmitResult | None:
            found = self.find(tag.key, tag.generation, not_before=started, sent=batch_input)
            return SubmitResult(found, recovered=True) if found is not None else None

        return create_once(create, find_lost, "Creating the Message Batch")

    def find(
        self,
        key: str,
        generation: int,
        *,
        not_before: dt.datetime,
        sent: BatchInput | None = None,
        recorded: Callable[[str], bool] | None = None,
    ) -> BatchState | None:
        """The batch made from ``sent`` since ``not_before``, recognised by its requests.

        Without ``sent`` nothing was handed over yet (the inline "upload" is recorded before any
        create), so there is nothing to find.
        """
        if sent is None:
            return None
        expected_ids = {request["custom_id"] for request in message_requests(sent.read())}
        cutoff = (not_before - CLOCK_SLACK).replace(tzinfo=dt.UTC)
        candidates = [
            batch
            for batch in call_with_retries(lambda: self._recent(cutoff), READ_RETRY, "Listing recent batches")
            if _total(batch) == len(expected_ids) and not (recorded and recorded(batch.id))
        ]
        matching, unknown = [], []
        for batch in candidates:
            if batch.processing_status != "ended":
                unknown.append(batch)  # results (and so custom_ids) only once ended
            elif self._custom_ids(batch.id) == expected_ids:
                matching.append(batch)
        if len(matching) == 1:
            return batch_state(matching[0])
        if not matching and not unknown:
            return None
        if len(matching) + len(unknown) == 1:
            return batch_state(unknown[0])
        ids = ", ".join(b.id for b in matching + unknown)
        raise AmbiguousOrphanBatches(
            f"Submission {key[:16]} (try {generation}) may already have a batch, but {len(matching + unknown)} "
            f"batches created since {not_before:%Y-%m-%d %H:%M:%S} UTC hold {len(expected_ids)} requests and "
            f"cannot be told apart: {ids}. Nothing was created. Cancel the ones that are not this shard's "
            "(or wait for them to end, so their custom_ids can be compared), then retry the task"
        )

    def _recent(self, cutoff: dt.datetime) -> list[Any]:
        batches = []
        with _translated():
            for scanned, batch in enumerate(self.client.messages.batches.list(limit=100)):
                if scanned >= ORPHAN_SCAN_LIMIT or batch.created_at < cutoff:
                    break
                batches.append(batch)
        return batches

    def _custom_ids(self, batch_id: str) -> set[str]:
        return {line.custom_id for line in self._result_lines(batch_id)}

    def retrieve(
        self, batch_id: str, *, retry: RetryPolicy = ONCE, timeout: float | None = None
    ) -> BatchState:
        def retrieve_once() -> BatchState:
            with _translated():
                return batch_state(self.client.messages.batches.retrieve(batch_id, **_timeout(timeout)))

        return call_with_retries(retrieve_once, retry, f"Looking at batch {batch_id}")

    def cancel(self, batch_id: str, *, retry: RetryPolicy, timeout: float | None = None) -> BatchState:
        def cancel_once() -> BatchState:
            with _translated(cancelling=True):
                return _cancelled(
                    batch_state(self.client.messages.batches.cancel(batch_id, **_timeout(timeout)))
                )

        return call_with_retries(cancel_once, retry, f"Cancelling batch {batch_id}")

    def results(self, state: BatchState) -> Iterator[ResultLine]:
        yield from self._result_lines(state.id)

    def _result_lines(self, batch_id: str) -> Iterator[ResultLine]:
        def open_results(stack: contextlib.ExitStack) -> Any:
            with _translated():
                return stack.enter_context(
                    self.client.messages.batches.with_streaming_response.results(batch_id)
                )

        with contextlib.ExitStack() as stack:
            response = call_with_retries(
                lambda: open_results(stack), READ_RETRY, f"Reading results of {batch_id}"
            )
            for raw in jsonl_records(response.iter_bytes()):
                yield result_line(orjson.loads(raw))

    def refresh_credentials(self) -> None:
        self.close()
        self._client = None

    def close(self) -> None:
        if self._client is not None:
            self._client.close()

    # --- triggerer side ----------------------------------------------------------------------

    async def _build_async_client(self) -> AsyncAnthropic:
        if self._given_async_client is not None:
            return self._given_async_client.with_options(max_retries=0)
        from airflow.providers.common.compat.connection import get_async_connection, get_async_extra_dejson

        conn = await get_async_connection(self.conn_id)
        kwargs = anthropic_client_kwargs(conn, await get_async_extra_dejson(conn))
        # In a thread: the client's HTTP client reads its TLS context from disk (and, in a fresh
        # process, imports its transport), which on the loop would stall every other wait.
        return await asyncio.to_thread(AsyncAnthropic, **kwargs)

    async def aretrieve(self, batch_id: str, *, timeout: float | None = None) -> BatchState:
        answer = await self._loop.get_json(f"v1/messages/batches/{batch_id}", timeout=timeout)
        return batch_state(sdk_model(MessageBatch, answer))

    async def acancel(self, batch_id: str, *, retry: RetryPolicy, timeout: float | None = None) -> BatchState:
        async def cancel_once() -> BatchState:
            client = await self._loop.sdk_client()
            with _translated(cancelling=True):
                return _cancelled(
                    batch_state(await client.messages.batches.cancel(batch_id, **_timeout(timeout)))
                )

        return await acall_with_retries(cancel_once, retry, f"Cancelling batch {batch_id}")


def anthropic_client_kwargs(conn: Any, extras: Mapping[str, Any]) -> dict[str, Any]:
    """``Anthropic`` arguments from a connection; the SDK's own retries off (``retry`` owns them)."""
    kwargs: dict[str, Any] = {"api_key": extras.get("api_key") or conn.password, "max_retries": 0}
    if conn.host:
        kwargs["base_url"] = conn.host
    return kwargs


def message_requests(content: bytes) -> list[dict[str, Any]]:
    """A shard's request lines as Message Batch requests: the line's body is the Messages params."""
    return [
        {"custom_id": line["custom_id"], "params": line["body"]}
        for line in map(orjson.loads, jsonl_records([content]))
    ]


def batch_state(batch: Any) -> BatchState:
    """The typed state of an SDK ``MessageBatch``."""
    counts = batch.request_counts
    ended = batch.processing_status == "ended"
    if batch.processing_status == "canceling":
        status = BatchStatus.CANCELLING
    elif not ended:
        status = BatchStatus.IN_PROGRESS
    elif batch.cancel_initiated_at is not None:
        status = BatchStatus.CANCELLED
    elif counts.expired:
        status = BatchStatus.EXPIRED
    else:
        status = BatchStatus.COMPLETED
    ended_at = _epoch(batch.ended_at)
    return BatchState(
        id=batch.id,
        status=status,
        endpoint=MESSAGES,
        counts=RequestCounts(
            total=_total(batch),
            completed=counts.succeeded,
            failed=counts.errored + counts.canceled + counts.expired,
        ),
        times=BatchTimes(
            created_at=_epoch(batch.created_at),
            in_progress_at=_epoch(batch.created_at),
            completed_at=ended_at if status is BatchStatus.COMPLETED else None,
            expired_at=ended_at if status is BatchStatus.EXPIRED else None,
            cancelling_at=_epoch(batch.cancel_initiated_at),
            cancelled_at=ended_at if status is BatchStatus.CANCELLED else None,
        ),
        output_ref=batch.results_url,
    )


def result_line(line: dict[str, Any]) -> ResultLine:
    """One line of a Message Batch's results as a ``ResultLine``."""
    custom_id, result = line.get("custom_id"), line.get("result") or {}
    kind = result.get("type")
    if kind == "succeeded":
        return ResultLine(custom_id, LineOutcome.ANSWERED, result.get("message") or {})
    if kind in _NEVER_RAN:
        return ResultLine(custom_id, _NEVER_RAN[kind], error_code=f"batch_{kind}")
    error = ((result.get("error") or {}).get("error")) or {}
    error_type = error.get("type") or "unknown_error"
    return ResultLine(
        custom_id,
        LineOutcome.FAILED,
        status_code=ERROR_STATUS.get(error_type, 400),
        error_code=error_type,
        error_message=error.get("message"),
    )


def _cancelled(state: BatchState) -> BatchState:
    if state.status in (BatchStatus.COMPLETED, BatchStatus.EXPIRED):
        raise BatchAlreadyEnded(
            f"Batch {state.id} had already ended ({state.status.value}); nothing to cancel"
        )
    return state


def _total(batch: Any) -> int:
    counts = batch.request_counts
    return counts.processing + counts.succeeded + counts.errored + counts.canceled + counts.expired


def _translated(*, cancelling: bool = False) -> translated_errors:
    """Raise the SDK's exceptions as ``BackendError``s."""
    return translated_errors(anthropic.AnthropicError, anthropic.APIStatusError, cancelling=cancelling)


def _timeout(seconds: float | None) -> dict[str, float]:
    return {"timeout": seconds} if seconds is not None else {}


def _epoch(moment: dt.datetime | None) -> int | None:
    return int(moment.timestamp()) if moment is not None else None
