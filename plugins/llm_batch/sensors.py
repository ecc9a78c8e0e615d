"""The wait step of a run: a deferrable sensor that hands the wait to the triggerer.

The worker only makes one quick check (so a batch that is already done costs no deferral) and
then frees its slot; ``BatchTrigger`` does the polling. Both act on the same decision
(``polling.BatchPoll``) after each look at the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException

from llm_batch.backends import BackendError, BatchAlreadyEnded, BatchBackend, batch_backend
from llm_batch.backends.openai_backend import DEFAULT_CONN_ID
from llm_batch.backends.retry import ONCE
from llm_batch.polling import BatchPoll, PollAction, PollDecision
from llm_batch.triggers import BatchTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

CHECK_TIMEOUT_SECONDS = 10.0  # the first check must not hold the worker long; the trigger retries
KILL_TIMEOUT_SECONDS = 5.0


class BatchSensor(BaseSensorOperator):
    """
    Wait until a batch is completed, failed, expired or cancelled, and return its summary.

    The summary (``BatchState.to_summary()``: ids, status, request counts, usage, errors,
    timestamps; no secrets) is the task's return value, so it lands in XCom for the collect step.
    A failed, expired or cancelled batch is returned, not raised: collect decides what to land.

    :param batch_id: The batch to wait for (templated). Also accepts the dict a submit task
        returns (an ``XComArg``, or a mapped ``.expand(batch_id=submit.output)``), using its
        ``"batch_id"`` key.
    :param conn_id: The connection of the batch's provider account.
    :param poll_interval: Seconds between polls, in the triggerer or (not deferrable) here.
    :param deferrable: Wait in the triggerer (default). ``False`` pokes from the worker.
    """

    template_fields: Sequence[str] = ("batch_id", "conn_id")

    def __init__(
        self,
        *,
        batch_id: str | Mapping[str, Any],
        conn_id: str = DEFAULT_CONN_ID,
        poll_interval: float = 60,
        deferrable: bool = True,
        **kwargs: Any,
    ) -> None:
        kwargs.setdefault("poke_interval", poll_interval)
        super().__init__(**kwargs)
        self.batch_id = batch_id
        self.conn_id = conn_id
        self.poll_interval = poll_interval
        self.deferrable = deferrable

    @property
    def resolved_batch_id(self) -> str:
        """The batch id, taken from a submit task's dict when one was given."""
        if isinstance(self.batch_id, Mapping):
            if "batch_id" not in self.batch_id:
                raise AirflowException(f"batch_id dict has no 'batch_id' key: {sorted(self.batch_id)}")
            return str(self.batch_id["batch_id"])
        return str(self.batch_id)

    @cached_property
    def backend(self) -> BatchBackend:
        return batch_backend(self.conn_id)

    @cached_property
    def poll(self) -> BatchPoll:
        return BatchPoll(self.poll_interval, max_backoff=self.poll_interval)

    def execute(self, context: Context) -> Any:
        if not self.deferrable:
            return super().execute(context)
        batch_id = self.resolved_batch_id
        decision = self._look(batch_id, timeout=CHECK_TIMEOUT_SECONDS)
        if decision.action is PollAction.FINISH:
            self.log.info("Batch %s is already %s", batch_id, decision.state.status)
            return decision.state.to_summary()
        if decision.error is not None:
            self.log.warning("Batch %s: first check failed (%s); deferring anyway", batch_id, decision.error)
        else:
            self.log.info("Batch %s is %s; deferring", batch_id, decision.state.status)
        self.defer(
            trigger=BatchTrigger(batch_id=batch_id, conn_id=self.conn_id, poll_interval=self.poll_interval),
            method_name="execute_complete",
            timeout=timedelta(seconds=self.timeout),
        )

    def execute_complete(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """Resume after the trigger fired: return the summary, or fail with the trigger's message.

        Events keep one shape across versions: ``{"status": "terminal", "batch": summary}`` or
        ``{"status": "error", "batch_id", "message"}``; a wait deferred before an upgrade resumes.
        """
        if event is None:
            # Resumed without an event, e.g. cleared before a triggerer ran its trigger: look again.
            self.log.info("Resumed without a trigger event; checking the batch again")
            return self.execute(context)
        if event.get("status") not in ("terminal", "error"):
            raise AirflowException(f"Unexpected trigger event: {event!r}")
        if event["status"] == "error":
            raise AirflowException(event["message"])
        summary = event["batch"]
        counts = summary["request_counts"]
        self.log.info(
            "Batch %s is %s: %d completed, %d failed of %d",
            summary["id"],
            summary["status"],
            counts["completed"],
            counts["failed"],
            counts["total"],
        )
        return summary

    def poke(self, context: Context) -> PokeReturnValue:
        batch_id = self.resolved_batch_id
        decision = self._look(batch_id)
        if decision.action is PollAction.FINISH:
            return PokeReturnValue(is_done=True, xcom_value=decision.state.to_summary())
        if decision.error is not None:
            self.log.warning("Batch %s: transient error (%s); poking again", batch_id, decision.error)
        else:
            self.log.info("Batch %s is %s", batch_id, decision.state.status)
        return PokeReturnValue(is_done=False)

    def _look(self, batch_id: str, timeout: float | None = None) -> PollDecision:
        """One look at the batch, decided as the trigger decides; raises on errors waiting cannot fix."""
        while True:
            try:
                decision = self.poll.after_state(self.backend.retrieve(batch_id, timeout=timeout), 0.0)
            except BackendError as error:
                decision = self.poll.after_error(error, 0.0)
            if decision.action is PollAction.GIVE_UP:
                raise AirflowException(f"Batch {batch_id}: {decision.error}") from None
            if decision.action is not PollAction.REFRESH_CREDENTIALS:
                return decision
            self.backend.refresh_credentials()

    def on_kill(self) -> None:
        """Cancel the batch when the task is killed while poking on a worker (not deferred).

        One quick attempt: the worker is about to be killed.
        """
        batch_id = self.resolved_batch_id
        try:
            state = self.backend.cancel(batch_id, retry=ONCE, timeout=KILL_TIMEOUT_SECONDS)
            self.log.info("Batch %s: cancel requested on kill, now %s", batch_id, state.status)
        except BatchAlreadyEnded:
            self.log.info("Batch %s had already finished; nothing to cancel", batch_id)
        except BackendError as error:
            self.log.warning("Batch %s: cancel on kill failed: %s", batch_id, error)
