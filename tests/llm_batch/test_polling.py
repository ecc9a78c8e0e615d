"""The one poll decision the trigger and the sensor act on."""

from __future__ import annotations

import pytest

from llm_batch.backends import BackendError, BatchNotFound, BatchState, BatchStatus, CredentialsRejected
from llm_batch.backends.records import RequestCounts
from llm_batch.polling import BatchPoll, PollAction


def state(status: str, completed: int = 0, total: int = 3) -> BatchState:
    return BatchState(id="batch_x", status=BatchStatus(status), counts=RequestCounts(total, completed, 0))


def test_a_running_batch_is_polled_again_on_a_fixed_cadence():
    poll = BatchPoll(poll_interval=5.0, max_backoff=60.0, first_poll_at=0.0)

    first = poll.after_state(state("in_progress"), now=0.3)  # the answer took 300 ms
    second = poll.after_state(state("in_progress"), now=5.2)

    assert first.action is PollAction.WAIT and first.delay == pytest.approx(4.7)
    assert second.delay == pytest.approx(4.8)  # slow answers do not stretch the interval
    late = poll.after_state(state("in_progress"), now=30.0)
    assert late.delay == 0.0  # behind schedule: look at once, never a negative sleep


@pytest.mark.parametrize("status", ["completed", "failed", "expired", "cancelled"])
def test_a_terminal_batch_finishes_the_wait(status):
    decision = BatchPoll(1.0, 10.0).after_state(state(status), now=0.0)
    assert decision.action is PollAction.FINISH and decision.state.status == status


@pytest.mark.parametrize("status", ["validating", "in_progress", "finalizing", "cancelling"])
def test_a_batch_on_its_way_is_waited_for(status):
    assert BatchPoll(1.0, 10.0).after_state(state(status), now=0.0).action is PollAction.WAIT


def test_progress_changes_are_reported_once():
    poll = BatchPoll(1.0, 10.0)
    seen = [
        poll.after_state(s, now=0.0).progress_changed
        for s in (state("validating"), state("in_progress"), state("in_progress"), state("in_progress", 2))
    ]
    assert seen == [True, True, False, True]


def test_transient_errors_back_off_up_to_the_cap_and_honour_retry_after():
    poll = BatchPoll(poll_interval=1.0, max_backoff=8.0)
    delays = [
        poll.after_error(BackendError("ServerError 503", status_code=503), now=0.0).delay for _ in range(6)
    ]
    assert 0.5 <= delays[0] <= 1.0 and delays[-1] >= 4.0 and max(delays) <= 8.0
    assert poll.failures == 6
    throttled = poll.after_error(
        BackendError("RateLimitError 429", status_code=429, retry_after=7.5), now=0.0
    )
    assert throttled.action is PollAction.WAIT and throttled.delay >= 7.5
    poll.after_state(state("in_progress"), now=0.0)
    assert poll.failures == 0


def test_no_answer_at_all_is_transient():
    decision = BatchPoll(1.0, 10.0).after_error(BackendError("APITimeoutError: timed out"), now=0.0)
    assert decision.action is PollAction.WAIT


@pytest.mark.parametrize("status_code", [400, 403, 404, 422])
def test_errors_waiting_cannot_fix_give_up(status_code):
    error = (BatchNotFound if status_code == 404 else BackendError)(
        f"Error {status_code}", status_code=status_code
    )
    decision = BatchPoll(1.0, 10.0).after_error(error, now=0.0)
    assert decision.action is PollAction.GIVE_UP and decision.error is error


def test_a_rejected_key_is_read_again_once_per_run_of_failures():
    poll = BatchPoll(1.0, 10.0)
    rejected = CredentialsRejected("AuthenticationError 401", status_code=401)

    assert poll.after_error(rejected, now=0.0).action is PollAction.REFRESH_CREDENTIALS
    assert poll.after_error(rejected, now=0.0).action is PollAction.GIVE_UP
    poll.after_state(state("in_progress"), now=0.0)  # the new key worked
    assert poll.after_error(rejected, now=0.0).action is PollAction.REFRESH_CREDENTIALS
