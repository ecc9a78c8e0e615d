"""The deferred wait for one batch, run by the triggerer.

Native async only: every trigger in the triggerer shares one event loop, so a blocking call here
would stall all of them. Polls go through the loop's shared client (see ``clients``) with the
SDK's retries off, so that backoff, logging and give-up decisions are this module's.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import AsyncIterator
from typing import Any

import openai
from airflow.triggers.base import BaseTrigger, TriggerEvent

from llm_batch.clients import DEFAULT_CONN_ID, discard_shared_async_client, redact, shared_async_client

log = logging.getLogger(__name__)

TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
TRANSIENT_STATUS_CODES = frozenset({408, 409, 429})
POLL_TIMEOUT_SECONDS = 30.0
CANCEL_TIMEOUT_SECONDS = 20.0  # below the triggerer's own on_kill bound (30 s by default)
CANCEL_ATTEMPTS = 3
_TIMESTAMPS = (
    "created_at",
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


def batch_summary(batch: Any) -> dict[str, Any]:
    """A JSON-safe summary of a Batch for trigger events and XCom (ids, counts, usage, errors)."""
    counts = batch.request_counts
    usage = batch.usage
    errors = batch.errors.data if batch.errors and batch.errors.data else []
    return {
        "id": batch.id,
        "status": batch.status,
        "endpoint": batch.endpoint,
        "model": getattr(batch, "model", None),
        "input_file_id": batch.input_file_id,
        "output_file_id": batch.output_file_id,
        "error_file_id": batch.error_file_id,
        "request_counts": {
            "total": counts.total if counts else 0,
            "completed": counts.completed if counts else 0,
            "failed": counts.failed if counts else 0,
        },
        "usage": {
            "input_tokens": usage.input_tokens if usage else 0,
            "output_tokens": usage.output_tokens if usage else 0,
            "total_tokens": usage.total_tokens if usage else 0,
            # Priced differently from plain input and output tokens, so kept for the cost report.
            "cached_tokens": _detail(usage, "input_tokens_details", "cached_tokens"),
            "reasoning_tokens": _detail(usage, "output_tokens_details", "reasoning_tokens"),
        },
        "errors": [{"code": e.code, "message": e.message, "param": e.param, "line": e.line} for e in errors],
        **{name: getattr(batch, name, None) for name in _TIMESTAMPS},
    }


def is_transient(exc: BaseException) -> bool:
    """Whether a failed API call is worth retrying: network trouble, 408/409/429 or any 5xx."""
    if isinstance(exc, openai.APIConnectionError):  # includes APITimeoutError
        return True
    if isinstance(exc, openai.APIStatusError):
        return exc.status_code in TRANSIENT_STATUS_CODES or exc.status_code >= 500
    return False


def backoff_seconds(failures: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """Exponential backoff with jitter after ``failures`` consecutive failures, never above ``cap``.

    The jitter keeps a thousand waits that failed together from retrying together; a server's
    Retry-After is honoured as a floor.
    """
    ceiling = min(cap, base * 2 ** min(failures - 1, 30))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, cap)


def retry_after_seconds(exc: BaseException) -> float | None:
    """The server's Retry-After hint of a failed call, in seconds, if it gave one as a number."""
    response = getattr(exc, "response", None)
    if response is None:
        return None
    for header, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(response.headers[header]) * scale
        except (KeyError, ValueError):
            continue
    return None


class BatchTrigger(BaseTrigger):
    """
    Wait for an OpenAI-compatible batch to reach a terminal status, without a worker.

    Fires ``{"status": "terminal", "batch": batch_summary(...)}`` once the batch is completed,
    failed, expired or cancelled, or ``{"status": "error", "batch_id", "message"}`` on an error
    that waiting cannot fix (unknown batch, bad key, other 4xx).

    :param batch_id: The batch to wait for.
    :param conn_id: The OpenAI connection to use.
    :param poll_interval: Seconds between two polls.
    :param max_backoff: Longest pause, in seconds, after repeated transient errors.
    """

    def __init__(
        self,
        batch_id: str,
        conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        max_backoff: float = 600.0,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "llm_batch.triggers.BatchTrigger",
            {
                "batch_id": self.batch_id,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "max_backoff": self.max_backoff,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        shared = await shared_async_client(self.conn_id)
        # A copy with other options keeps using the shared client's connection pool.
        client = shared.with_options(max_retries=0, timeout=POLL_TIMEOUT_SECONDS)
        progress: tuple | None = None
        failures = 0
        key_refreshed = False
        # A random phase spreads the polls of waits that start together (a triggerer restart
        # re-creates all of them at once); the sensor has just checked the batch anyway.
        await asyncio.sleep(random.uniform(0, self.poll_interval))
        next_poll = loop.time()
        while True:
            try:
                batch = await client.batches.retrieve(self.batch_id)
            except openai.AuthenticationError as exc:
                if not key_refreshed:  # the connection's key may have been rotated: read it again
                    key_refreshed = True
                    discard_shared_async_client(self.conn_id, shared)
                    shared = await shared_async_client(self.conn_id)
                    client = shared.with_options(max_retries=0, timeout=POLL_TIMEOUT_SECONDS)
                    continue
                yield self._error(exc)
                return
            except openai.OpenAIError as exc:
                if not is_transient(exc):
                    yield self._error(exc)
                    return
                failures += 1
                delay = backoff_seconds(
                    failures, self.poll_interval, self.max_backoff, retry_after_seconds(exc)
                )
                log.warning(
                    "Batch %s: transient error (%s), attempt %d; polling again in %.1f s",
                    self.batch_id,
                    describe_error(exc),
                    failures,
                    delay,
                )
                await asyncio.sleep(delay)
                next_poll = loop.time()
                continue
            failures, key_refreshed = 0, False

            counts = batch.request_counts
            current = (
                batch.status,
                *((counts.completed, counts.failed, counts.total) if counts else (0, 0, 0)),
            )
            if current != progress:
                progress = current
                log.info("Batch %s is %s: %d completed, %d failed of %d", self.batch_id, *current)
            if batch.status in TERMINAL_STATUSES:
                yield TriggerEvent({"status": "terminal", "batch": batch_summary(batch)})
                return

            # A fixed cadence, not sleep-after-poll, so slow answers do not stretch the interval.
            next_poll = max(next_poll + self.poll_interval, loop.time())
            await asyncio.sleep(next_poll - loop.time())

    async def on_kill(self) -> None:
        """Cancel the batch when a user clears or marks the deferred task; 409 means it already ended."""
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_SECONDS):
                shared = await shared_async_client(self.conn_id)
                # Our own retries: the SDK's would also retry the 409 of a batch that already ended.
                client = shared.with_options(max_retries=0, timeout=CANCEL_TIMEOUT_SECONDS / 4)
                for attempt in range(1, CANCEL_ATTEMPTS + 1):
                    try:
                        batch = await client.batches.cancel(self.batch_id)
                        break
                    except openai.OpenAIError as exc:
                        retry = is_transient(exc) and not isinstance(exc, openai.ConflictError)
                        if not retry or attempt == CANCEL_ATTEMPTS:
                            raise
                        await asyncio.sleep(backoff_seconds(attempt, 0.5, 4.0, retry_after_seconds(exc)))
            log.info("Batch %s: cancel requested on kill, now %s", self.batch_id, batch.status)
        except openai.ConflictError:
            log.info("Batch %s had already finished; nothing to cancel", self.batch_id)
        except (openai.OpenAIError, TimeoutError) as exc:
            log.warning("Batch %s: cancel on kill failed: %s", self.batch_id, describe_error(exc))

    def _error(self, exc: BaseException) -> TriggerEvent:
        message = f"Batch {self.batch_id}: {describe_error(exc)}"
        log.error("%s", message)
        return TriggerEvent({"status": "error", "batch_id": self.batch_id, "message": message})


def describe_error(exc: BaseException) -> str:
    """A one-line description of a failed call for logs and events, with key-like text masked."""
    if isinstance(exc, openai.APIStatusError):
        return redact(f"{type(exc).__name__} {exc.status_code}: {exc.message}")
    return redact(f"{type(exc).__name__}: {exc}")


def _detail(usage: Any, details: str, field: str) -> int:
    value = getattr(getattr(usage, details, None), field, None)
    return value or 0
