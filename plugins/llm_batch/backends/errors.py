"""Failed provider calls, as callers see them: whether to retry, and a message without secrets.

Each backend translates its SDK's exceptions into these, so the retry rule, the poll decision
and the callers' error handling are written once for every provider.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

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


class translated_errors:  # lower case: read as a context manager, like contextlib's
    """Raise an SDK's exceptions as ``BackendError``s (the one vocabulary callers handle).

    ``sdk_error`` is the SDK's base exception, ``status_error`` the one that carries an HTTP
    answer (both SDKs are generated alike). A class rather than a generator: it wraps every poll
    of every wait.
    """

    __slots__ = ("cancelling", "sdk_error", "status_error")

    def __init__(
        self, sdk_error: type[Exception], status_error: type[Exception], *, cancelling: bool = False
    ):
        self.sdk_error, self.status_error, self.cancelling = sdk_error, status_error, cancelling

    def __enter__(self) -> None:
        return None

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: object) -> None:
        if isinstance(exc, self.sdk_error):
            raise self.backend_error(exc) from None  # the SDK's chain may quote a key

    def backend_error(self, exc: BaseException) -> BackendError:
        if not isinstance(exc, self.status_error):
            return BackendError(f"{type(exc).__name__}: {exc}")
        return http_error(
            type(exc).__name__, exc.status_code, exc.message, exc.response.headers, cancelling=self.cancelling
        )


def http_error(
    name: str, status: int, message: str, headers: Mapping[str, str], *, cancelling: bool = False
) -> BackendError:
    """The error of an HTTP answer with status ``status``: 401 and 404 typed, a cancel's 409 too."""
    kind = {401: CredentialsRejected, 404: BatchNotFound}.get(status, BackendError)
    if cancelling and status == 409:
        kind = BatchAlreadyEnded
    return kind(f"{name} {status}: {message}", status_code=status, retry_after=retry_after_seconds(headers))


def retry_after_seconds(headers: Mapping[str, str]) -> float | None:
    """The server's Retry-After hint in seconds (``retry-after-ms`` first, as OpenAI sends it)."""
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        try:
            return float(headers[name]) * scale
        except (KeyError, ValueError):
            continue
    return None
