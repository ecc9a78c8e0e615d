"""The one decision made after each look at a batch being waited for, by the trigger and the sensor.

Given a batch's state, or the error a look raised, a ``PollDecision`` says whether the wait is
over (terminal, or an error waiting cannot fix), whether to read the connection again (a 401:
the key may have been rotated), or how long to wait before the next look, and whether the
progress changed since the last look. The callers only do the I/O: the trigger with ``await``,
the sensor on its worker.
"""

from __future__ import annotations

import enum
from typing import NamedTuple

from llm_batch.backends.errors import BackendError, CredentialsRejected
from llm_batch.backends.records import BatchState
from llm_batch.backends.retry import backoff_seconds


class PollAction(enum.Enum):
    FINISH = "finish"  # the batch is terminal: hand its state on
    GIVE_UP = "give_up"  # an error that waiting cannot fix (unknown batch, bad key, other 4xx)
    REFRESH_CREDENTIALS = "refresh_credentials"  # read the connection again, then look at once
    WAIT = "wait"  # look again after ``delay`` seconds


class PollDecision(NamedTuple):  # a tuple: made after every poll of every wait
    action: PollAction
    delay: float = 0.0
    state: BatchState | None = None
    error: BackendError | None = None
    progress_changed: bool = False  # a state whose status or counts differ from the last one seen


class BatchPoll:
    """The memory of one wait: last progress seen, consecutive failures, the polling cadence.

    :param poll_interval: Seconds between two looks; the cadence is fixed, so slow answers do
        not stretch it.
    :param max_backoff: Longest pause after repeated transient errors.
    :param first_poll_at: When the first look starts (monotonic seconds), the cadence's origin.
    """

    def __init__(self, poll_interval: float, max_backoff: float, first_poll_at: float | None = None) -> None:
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff
        self.failures = 0
        self._progress: tuple | None = None
        self._credentials_refreshed = False
        self._next_poll = first_poll_at

    def after_state(self, state: BatchState, now: float) -> PollDecision:
        """Decide after a look that answered; ``now`` is a monotonic clock reading in seconds."""
        self.failures, self._credentials_refreshed = 0, False
        changed = state.progress != self._progress
        self._progress = state.progress
        if state.is_terminal:
            return PollDecision(PollAction.FINISH, state=state, progress_changed=changed)
        start = now if self._next_poll is None else self._next_poll
        self._next_poll = max(start + self.poll_interval, now)
        return PollDecision(PollAction.WAIT, self._next_poll - now, state=state, progress_changed=changed)

    def after_error(self, error: BackendError, now: float) -> PollDecision:
        """Decide after a look that failed: back off and retry, re-read the key once, or give up."""
        if isinstance(error, CredentialsRejected) and not self._credentials_refreshed:
            self._credentials_refreshed = True
            return PollDecision(PollAction.REFRESH_CREDENTIALS, error=error)
        if not error.retryable:
            return PollDecision(PollAction.GIVE_UP, error=error)
        self.failures += 1
        delay = backoff_seconds(self.failures, self.poll_interval, self.max_backoff, error.retry_after)
        self._next_poll = now + delay
        return PollDecision(PollAction.WAIT, delay, error=error)
