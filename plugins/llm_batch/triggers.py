"""The deferred wait for one batch, run by the triggerer.

Native async only: every trigger in the triggerer shares one event loop, so a blocking call here
would stall all of them. Looks go through the backend's async client, shared by all waits on the
loop; what to do after each look is ``polling.BatchPoll``'s decision, the same the sensor makes.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import AsyncIterator
from typing import Any

from airflow.triggers.base import BaseTrigger, TriggerEvent

from llm_batch.backends import BackendError, BatchAlreadyEnded, RetryPolicy, abatch_backend
from llm_batch.backends.openai_backend import DEFAULT_CONN_ID
from llm_batch.polling import BatchPoll, PollAction

log = logging.getLogger(__name__)

POLL_TIMEOUT_SECONDS = 30.0
CANCEL_TIMEOUT_SECONDS = 20.0  # below the triggerer's own on_kill bound (30 s by default)
CANCEL_RETRY = RetryPolicy(tries=3, base=0.5, cap=4.0)


class BatchTrigger(BaseTrigger):
    """
    Wait for a batch to reach a terminal status, without a worker.

    Fires ``{"status": "terminal", "batch": <BatchState.to_summary()>}`` once the batch is
    completed, failed, expired or cancelled, or ``{"status": "error", "batch_id", "message"}`` on
    an error that waiting cannot fix (unknown batch, bad key, other 4xx).

    :param batch_id: The batch to wait for.
    :param conn_id: The connection of the batch's provider account.
    :param poll_interval: Seconds between two polls.
    :param max_backoff: Longest pause, in seconds, after repeated transient errors.
    """

    def __init__(
        self,
        batch_id: str,
        conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60.0,
        max_backoff: float = 600.0,
    ) -> None:
        super().__init__()
        self.batch_id = batch_id
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.max_backoff = max_backoff

    def serialize(self) -> tuple[str, dict[str, Any]]:
        return (
            "llm_batch.triggers.BatchTrigger",
            {
                "batch_id": self.batch_id,
                "conn_id": self.conn_id,
                "poll_interval": self.poll_interval,
                "max_backoff": self.max_backoff,
            },
        )

    async def run(self) -> AsyncIterator[TriggerEvent]:
        loop = asyncio.get_running_loop()
        backend = await abatch_backend(self.conn_id)
        await backend.aconnect()
        try:
            # A random phase spreads the polls of waits that start together (a triggerer restart
            # re-creates all of them at once); the sensor has just checked the batch anyway. It
            # follows the client's creation: waits queued behind it would otherwise poll in step.
            await asyncio.sleep(random.uniform(0, self.poll_interval))
            poll = BatchPoll(self.poll_interval, self.max_backoff, first_poll_at=loop.time())
            while True:
                try:
                    state = await backend.aretrieve(self.batch_id, timeout=POLL_TIMEOUT_SECONDS)
                except BackendError as error:
                    decision = poll.after_error(error, loop.time())
                else:
                    decision = poll.after_state(state, loop.time())
                if decision.progress_changed:
                    log.info("%s", decision.state.progress_line(time.time()))
                match decision.action:
                    case PollAction.FINISH:
                        yield TriggerEvent({"status": "terminal", "batch": decision.state.to_summary()})
                        return
                    case PollAction.GIVE_UP:
                        yield self._error(decision.error)
                        return
                    case PollAction.REFRESH_CREDENTIALS:
                        await backend.arefresh_credentials()
                    case PollAction.WAIT:
                        if decision.error is not None:
                            log.warning(
                                "Batch %s: transient error (%s), attempt %d; polling again in %.1f s",
                                self.batch_id,
                                decision.error,
                                poll.failures,
                                decision.delay,
                            )
                        await asyncio.sleep(decision.delay)
        finally:
            await backend.adisconnect()  # the loop's reader closes once no wait uses it

    async def on_kill(self) -> None:
        """Cancel the batch when a user clears or marks the deferred task; 409 means it already ended."""
        backend = await abatch_backend(self.conn_id)
        try:
            async with asyncio.timeout(CANCEL_TIMEOUT_SECONDS):
                state = await backend.acancel(
                    self.batch_id, retry=CANCEL_RETRY, timeout=CANCEL_TIMEOUT_SECONDS / 4
                )
            log.info("Batch %s: cancel requested on kill, now %s", self.batch_id, state.status)
        except BatchAlreadyEnded:
            log.info("Batch %s had already finished; nothing to cancel", self.batch_id)
        except BackendError as exc:
            log.warning("Batch %s: cancel on kill failed: %s", self.batch_id, exc)
        except TimeoutError:
            log.warning(
                "Batch %s: cancel on kill timed out after %.0f s", self.batch_id, CANCEL_TIMEOUT_SECONDS
            )

    def _error(self, error: BackendError | None) -> TriggerEvent:
        message = f"Batch {self.batch_id}: {error}"
        log.error("%s", message)
        return TriggerEvent({"status": "error", "batch_id": self.batch_id, "message": message})
