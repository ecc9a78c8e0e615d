"""The one retry rule for every call to a provider, sync or async.

Retryable: no answer (timeouts, connection trouble), 408, 409, 429 and 5xx. Not retryable:
everything else (400, 401, 403, 404...). Delays grow exponentially with jitter, so a thousand
waits that failed together do not retry together, and honour the server's Retry-After.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

from llm_batch.backends.errors import BackendError

log = logging.getLogger(__name__)
T = TypeVar("T")


def backoff_seconds(failures: int, base: float, cap: float, retry_after: float | None = None) -> float:
    """The pause after ``failures`` consecutive failures: exponential with jitter, never above ``cap``.

    A server's Retry-After is a floor (still capped: a wait must not stall for an hour on a hint).
    """
    ceiling = min(cap, base * 2 ** min(failures - 1, 30))
    delay = random.uniform(ceiling / 2, ceiling)
    if retry_after:
        delay = max(delay, retry_after)
    return min(delay, cap)


@dataclass(frozen=True)
class RetryPolicy:
    """How often and how patiently one call is tried: ``tries`` in all, backoff from ``base`` to ``cap``."""

    tries: int = 4
    base: float = 1.0
    cap: float = 30.0

    def delay_after(self, error: BackendError, failures: int) -> float:
        """The pause before the next try, or re-raise ``error`` when the call should not be tried again."""
        if not error.retryable or failures >= self.tries:
            raise error
        return backoff_seconds(failures, self.base, self.cap, error.retry_after)


ONCE = RetryPolicy(tries=1)
CREATE_RETRY = RetryPolicy(tries=6, base=2.0, cap=60.0)  # creating a batch: patient, it is the run's turn
READ_RETRY = RetryPolicy(tries=3, base=1.0, cap=30.0)  # lookups and downloads


def create_once(create: Callable[[], T], find_lost: Callable[[], T | None], what: str) -> T:
    """``create()`` under ``CREATE_RETRY``; before trying again after an error whose answer was
    lost (the create may have taken effect), ``find_lost()`` looks for what it made, and a find
    is used instead of creating a second one."""

    def look_before_retrying(error: BackendError) -> T | None:
        return find_lost() if error.answer_lost else None  # else it was refused: nothing exists

    return call_with_retries(create, CREATE_RETRY, what, before_retry=look_before_retrying)


def call_with_retries(
    call: Callable[[], T],
    policy: RetryPolicy,
    what: str,
    *,
    before_retry: Callable[[BackendError], T | None] | None = None,
) -> T:
    """``call()`` under ``policy``. ``before_retry`` may return a result instead of trying again
    (e.g. a create whose answer was lost but which took effect)."""
    failures = 0
    while True:
        try:
            return call()
        except BackendError as error:
            failures += 1
            if before_retry is not None and error.retryable and (found := before_retry(error)) is not None:
                return found
            delay = policy.delay_after(error, failures)
            log.warning("%s failed (%s); try %d again in %.1f s", what, error, failures + 1, delay)
            time.sleep(delay)


async def acall_with_retries(call: Callable[[], Awaitable[T]], policy: RetryPolicy, what: str) -> T:
    """The async twin of :func:`call_with_retries`, for the triggerer's event loop."""
    failures = 0
    while True:
        try:
            return await call()
        except BackendError as error:
            failures += 1
            delay = policy.delay_after(error, failures)
            log.warning("%s failed (%s); try %d again in %.1f s", what, error, failures + 1, delay)
            await asyncio.sleep(delay)
