"""What a retry can fix: the one rule for calls to a provider, result lines and whole batches.

Errors that no retry can fix derive from ``PermanentError``; the DAG's tasks fail at once on them.

A call or a request line is worth another try when no answer came, or it timed out (408),
collided (409), was throttled (429), or the server failed (5xx). A failed batch is worth
submitting again, byte for byte, only when its errors say nothing about the content.
"""

from __future__ import annotations


class PermanentError(Exception):
    """An error no retry can fix: the task fails at once, and the message says what to change."""


# Statuses that say "not now" rather than "not this"; any 5xx counts too.
RETRYABLE_STATUS_CODES = frozenset({408, 409, 429})
# Batch-level failures that say nothing about the content: the same bytes may go through later.
RETRYABLE_BATCH_ERRORS = frozenset({"token_limit_exceeded", "rate_limit_exceeded", "server_error"})


def is_retryable_status(status_code: int | None) -> bool:
    """Whether a call or request that ended with ``status_code`` (``None``: no answer) may succeed again."""
    return status_code is None or status_code in RETRYABLE_STATUS_CODES or status_code >= 500


def is_retryable_batch_failure(codes: frozenset[str] | set[str]) -> bool:
    """Whether a batch that failed with these error codes may succeed if submitted again."""
    return bool(codes) and set(codes) <= RETRYABLE_BATCH_ERRORS
