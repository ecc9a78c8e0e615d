"""Live progress of batches in flight, asked of the provider: the ledger only learns counts at the end."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, TypedDict

if TYPE_CHECKING:
    from llm_batch.backends.base import BatchBackend


class Progress(TypedDict):
    status: str
    completed: int
    failed: int
    total: int


BatchProgress = Callable[[list[str]], dict[str, Progress]]


def provider_progress(make_backend: Callable[[], BatchBackend], timeout: float = 2.0) -> BatchProgress:
    """Look up batches through the pipeline's own backend (one per lookup), a few at once.

    A batch the provider does not answer for within ``timeout`` is left out: the page then shows
    what the ledger knows.
    """

    def lookup(batch_ids: list[str]) -> dict[str, Progress]:
        if not batch_ids:
            return {}
        backend = make_backend()
        try:
            with ThreadPoolExecutor(max_workers=min(8, len(batch_ids))) as pool:
                looked = pool.map(lambda batch_id: _progress(backend, batch_id, timeout), batch_ids)
                return dict(_found(zip(batch_ids, looked, strict=True)))
        finally:
            backend.close()

    return lookup


def _progress(backend: BatchBackend, batch_id: str, timeout: float) -> Progress | None:
    from llm_batch.backends.errors import BackendError

    try:
        state = backend.retrieve(batch_id, timeout=timeout)
    except BackendError:
        return None
    status, completed, failed, total = state.progress
    return Progress(status=status, completed=completed, failed=failed, total=total)


def _found(pairs: Iterable[tuple[str, Progress | None]]) -> Iterable[tuple[str, Progress]]:
    return ((batch_id, progress) for batch_id, progress in pairs if progress is not None)
