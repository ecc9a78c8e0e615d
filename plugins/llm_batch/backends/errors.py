"""Failed provider calls, as callers see them: whether to retry, and a message without secrets.

Each backend translates its SDK's exceptions into these, so the retry rule, the poll decision
and the callers' error handling are written once for every provider.
"""

from __future__ import annotations

import re

from llm_batch.retryable import is_retryable_status

_KEY_LIKE = re.compile(r"\b(sk-|Bearer\s+)[A-Za-z0-9_\-*.]{6,}")


def redact(text: str) -> str:
    """Mask anything that looks like an API key or bearer token in ``text``."""
    return _KEY_LIKE.sub(lambda match: f"{match.group(1)}***", text)


class BackendError(Exception):
    """A call to the provider failed. ``str()`` is a one-line description with key-like text masked.

    :param description: What failed, e.g. ``"RateLimitError 429: slow down"``.
    :param status_code: The HTTP status, or ``None`` when no answer arrived.
    :param retry_after: The server's Retry-After hint in seconds, when it gave one.
    """

    def __init__(self, description: str, *, status_code: int | None = None, retry_after: float | None = None):
        super().__init__(redact(description))
        self.status_code = status_code
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether trying the same call again may succeed: no answer, 408/409/429 or any 5xx."""
        return is_retryable_status(self.status_code)

    @property
    def answer_lost(self) -> bool:
        """No answer arrived (or the server broke mid-way): the call may have taken effect anyway."""
        return self.status_code is None or self.status_code >= 500


class CredentialsRejected(BackendError):
    """401: the key is wrong, or was rotated in the connection since the client was built."""


class BatchNotFound(BackendError):
    """404: no such batch on this account."""


class BatchAlreadyEnded(BackendError):
    """A cancel of a batch that has already finished (409): nothing left to cancel."""

    @property
    def retryable(self) -> bool:
        return False
