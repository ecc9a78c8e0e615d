"""The one retry rule for every provider call."""

from __future__ import annotations

import pytest

from llm_batch.backends import (
    BackendError,
    BatchAlreadyEnded,
    BatchNotFound,
    CredentialsRejected,
    RetryPolicy,
)
from llm_batch.backends.errors import redact
from llm_batch.backends.retry import acall_with_retries, backoff_seconds, call_with_retries

QUICK = RetryPolicy(tries=4, base=0.001, cap=0.01)


@pytest.mark.parametrize("status_code", [None, 408, 409, 429, 500, 502, 503, 529])
def test_no_answer_throttling_and_server_errors_are_retryable(status_code):
    assert BackendError("x", status_code=status_code).retryable


@pytest.mark.parametrize("status_code", [400, 401, 403, 404, 413, 422])
def test_client_errors_are_not(status_code):
    assert not BackendError("x", status_code=status_code).retryable


def test_typed_errors_and_a_cancel_of_an_ended_batch_are_not_retryable():
    assert not CredentialsRejected("x", status_code=401).retryable
    assert not BatchNotFound("x", status_code=404).retryable
    assert not BatchAlreadyEnded("x", status_code=409).retryable


def test_messages_never_carry_a_key():
    error = BackendError("AuthenticationError 401: Incorrect API key provided: sk-abcdef0123456789")
    assert "sk-abcdef0123456789" not in str(error) and "sk-***" in str(error)
    assert redact("Bearer abc.def-123456") == "Bearer ***"


def test_backoff_grows_with_jitter_up_to_the_cap_and_honours_retry_after():
    assert all(0.5 <= backoff_seconds(n, base=1.0, cap=8.0) <= 8.0 for n in range(1, 8) for _ in range(50))
    assert all(0.5 <= backoff_seconds(1, 1.0, 8.0) <= 1.0 for _ in range(50))
    assert all(4.0 <= backoff_seconds(6, 1.0, 8.0) <= 8.0 for _ in range(50))
    assert backoff_seconds(1, 1.0, 8.0, retry_after=5.0) == 5.0
    assert backoff_seconds(1, 1.0, 8.0, retry_after=60.0) == 8.0


def flaky(errors: list[BackendError], result: str = "done"):
    calls = []

    def call():
        calls.append(1)
        if errors:
            raise errors.pop(0)
        return result

    return call, calls


def test_retryable_failures_are_tried_again_until_the_call_works():
    call, calls = flaky([BackendError("429", status_code=429), BackendError("503", status_code=503)])
    assert call_with_retries(call, QUICK, "test") == "done" and len(calls) == 3


def test_a_non_retryable_failure_is_raised_at_once():
    call, calls = flaky([BatchNotFound("404", status_code=404)])
    with pytest.raises(BatchNotFound):
        call_with_retries(call, QUICK, "test")
    assert len(calls) == 1


def test_the_last_try_raises():
    call, calls = flaky([BackendError("500", status_code=500)] * 5)
    with pytest.raises(BackendError):
        call_with_retries(call, QUICK, "test")
    assert len(calls) == QUICK.tries


def test_a_lost_answer_is_looked_up_before_trying_again():
    call, calls = flaky([BackendError("APITimeoutError: timed out")])
    looked = []
    found = call_with_retries(call, QUICK, "test", before_retry=lambda error: looked.append(error) or "found")
    assert found == "found" and len(calls) == 1 and len(looked) == 1


async def test_the_async_calls_follow_the_same_rule():
    errors = [BackendError("429", status_code=429)]

    async def call():
        if errors:
            raise errors.pop(0)
        return "done"

    assert await acall_with_retries(call, QUICK, "test") == "done"
    with pytest.raises(CredentialsRejected):
        await acall_with_retries(flaky_async(CredentialsRejected("401", status_code=401)), QUICK, "test")


def flaky_async(error: BackendError):
    async def call():
        raise error

    return call
