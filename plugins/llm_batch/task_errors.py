"""How the library's errors become task outcomes in Airflow."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from airflow.sdk.exceptions import AirflowFailException


@contextmanager
def permanent_errors_fail_at_once() -> Iterator[None]:
    """The library's errors that no retry can fix fail the task at once, with their message."""
    from llm_batch.retryable import PermanentError

    try:
        yield
    except PermanentError as exc:
        raise AirflowFailException(f"{type(exc).__name__}: {exc}") from None
