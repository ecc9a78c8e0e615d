"""The interface every batch provider implements: the only way the library talks to one.

A backend owns its provider's clients, credentials, retries and wire formats. Callers hand it
a shard's request lines and a submission key, and get back typed records (``records``) and
typed errors (``errors``); nothing of the provider's SDK leaks out. Sync methods serve workers
(submission, the sensor, collect); the async ones serve the triggerer, whose event loop they
never block.
"""

from __future__ import annotations

import datetime as dt
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, ClassVar

from llm_batch.backends.providers import Provider
from llm_batch.backends.records import BatchInput, BatchState, ResultLine, SubmissionTag, SubmitResult
from llm_batch.backends.retry import ONCE, RetryPolicy
from llm_batch.backends.status_reader import LoopClients

if TYPE_CHECKING:
    from llm_batch.job import BatchJob


class BatchBackend(ABC):
    """One provider account's batches, reached through one Airflow connection."""

    #: The provider, as logs name it and as each result and failure row records it (``vendor``).
    name: ClassVar[Provider]
    #: The account's clients on the triggerer's loop (made in ``__init__``, connected on first use).
    _loop: LoopClients
    #: Enqueued-token limits declared for this account, by model (or deployment): the
    #: connection's ``enqueued_token_limits`` extra. See ``llm_batch.capacity``.
    enqueued_token_limits: Mapping[str, int] = MappingProxyType({})

    @property
    @abstractmethod
    def account(self) -> str:
        """Which account the batches live in (connection id and base URL).

        Part of a submission's identity: the same shard sent through another connection is
        another submission, never a re-attach to a batch of another account.
        """

    @abstractmethod
    def upload(self, batch_input: BatchInput) -> str | None:
        """Stage the input with the provider before the batch is created.

        Returns the reference :meth:`create_or_find` names (recorded by the caller so that a
        retry does not upload again), or ``None`` where the provider takes the lines with the
        create itself.
        """

    @abstractmethod
    def create_or_find(
        self, batch_input: BatchInput, tag: SubmissionTag, *, uploaded: str | None
    ) -> SubmitResult:
        """Create the batch of a submission's try, or find the one that a create whose answer
        was lost made anyway: never two batches for one key and generation."""

    def job_for(self, job: BatchJob) -> BatchJob:
        """The job as this provider runs it: its endpoint named as the provider's API has it.

        A job is declared once (e.g. for chat completions); a provider whose API differs maps it
        to its own endpoint strategy, or refuses it with a ``PermanentError`` saying why.
        """
        return job

    @abstractmethod
    def find(
        self,
        key: str,
        generation: int,
        *,
        not_before: dt.datetime,
        sent: BatchInput | None = None,
        recorded: Callable[[str], bool] | None = None,
    ) -> BatchState | None:
        """The newest batch of this submission created since ``not_before`` (UTC), if any.

        Recovers a batch created by a worker that died before it could record the batch's id.
        ``sent`` is the input handed over before that create, for providers whose batches carry
        no identity of their own and are recognised by their requests; ``recorded`` tells the
        batches the ledger already holds for a submission, which are no one's orphan.
        """

    @abstractmethod
    def retrieve(
        self, batch_id: str, *, retry: RetryPolicy = ONCE, timeout: float | None = None
    ) -> BatchState:
        """A look at the batch; tried once by default, because pollers own the pace of polling."""

    @abstractmethod
    def cancel(self, batch_id: str, *, retry: RetryPolicy, timeout: float | None = None) -> BatchState:
        """Ask the provider to cancel; raises ``BatchAlreadyEnded`` if there is nothing left to cancel."""

    @abstractmethod
    def results(self, state: BatchState) -> Iterator[ResultLine]:
        """Stream the result lines of a finished batch, one per request that has one, in no order."""

    @abstractmethod
    def refresh_credentials(self) -> None:
        """Read the connection again on the next call (after a 401: the key may have been rotated)."""

    async def aconnect(self) -> None:
        """Make the loop's shared status reader (and the SDK client it is made from) ready.

        Called before a wait's first poll: a thousand waits that start together then queue
        once behind the client's creation, before their polls are spread out, not after.
        """
        await self._loop.hold()

    async def adisconnect(self) -> None:
        """End what :meth:`aconnect` began: the shared reader closes once no wait holds it."""
        await self._loop.release()

    @abstractmethod
    async def aretrieve(self, batch_id: str, *, timeout: float | None = None) -> BatchState:
        """:meth:`retrieve` on the event loop: one GET through the loop's shared ``StatusReader``."""

    @abstractmethod
    async def acancel(self, batch_id: str, *, retry: RetryPolicy, timeout: float | None = None) -> BatchState:
        """:meth:`cancel` on the event loop, through the loop's shared client."""

    async def arefresh_credentials(self) -> None:
        """:meth:`refresh_credentials` for the loop's shared client and status reader."""
        await self._loop.discard()

    def close(self) -> None:  # noqa: B027 - backends without a pool of their own have nothing to close
        """Release the worker-side client's connection pool."""

    def __enter__(self) -> BatchBackend:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
