"""The wait step of a run: a deferrable sensor that hands the wait to the triggerer.

``ShardWaitSensor`` is the step a DAG uses: a ``BatchSensor`` that first sends a shard the submit
step queued for room under the token limit, and sends again a batch refused for it.

The worker only makes one quick check (so a batch that is already done costs no deferral) and
then frees its slot; ``BatchTrigger`` does the polling. Both act on the same decision
(``polling.BatchPoll``) after each look at the batch.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta
from functools import cached_property
from typing import TYPE_CHECKING, Any

from airflow.providers.standard.triggers.temporal import TimeDeltaTrigger
from airflow.sdk import BaseSensorOperator, PokeReturnValue
from airflow.sdk.exceptions import AirflowException, AirflowSkipException

from llm_batch.backends import BackendError, BatchAlreadyEnded, BatchBackend, batch_backend
from llm_batch.backends.openai_backend import DEFAULT_CONN_ID
from llm_batch.backends.retry import ONCE, backoff_seconds
from llm_batch.polling import BatchPoll, PollAction, PollDecision
from llm_batch.task_errors import permanent_errors_fail_at_once
from llm_batch.triggers import BatchTrigger

if TYPE_CHECKING:
    from airflow.sdk import Context

    from llm_batch.job import BatchJob

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
        return self._wait_for(context, self.resolved_batch_id, "execute_complete")

    def _wait_for(self, context: Context, batch_id: str, method_name: str) -> Any:
        """Look once; a batch already ended goes straight to ``method_name``, else defer to the trigger."""
        decision = self._look(batch_id, timeout=CHECK_TIMEOUT_SECONDS)
        if decision.action is PollAction.FINISH:
            self.log.info("Batch %s is already %s", batch_id, decision.state.status)
            return getattr(self, method_name)(
                context, {"status": "terminal", "batch": decision.state.to_summary()}
            )
        if decision.error is not None:
            self.log.warning("Batch %s: first check failed (%s); deferring anyway", batch_id, decision.error)
        else:
            self.log.info("Batch %s is %s; deferring", batch_id, decision.state.status)
        self.defer(
            trigger=BatchTrigger(batch_id=batch_id, conn_id=self.conn_id, poll_interval=self.poll_interval),
            method_name=method_name,
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


class ShardWaitSensor(BatchSensor):
    """
    The wait step of a shard: wait for its batch, first submitting it if it was queued.

    A shard the submit step queued (its model's enqueued-token limit had no room) is submitted
    here once there is room, asking again every ``poll_interval`` seconds, deferred. A batch the
    service refused with ``token_limit_exceeded`` (a limit declared higher than the service's)
    goes back to the queue with backoff, in the same round. Returns the batch summary, with the
    submission under ``"submission"`` for the collect step. Deferrable only.

    :param job: The batch job; a manual run's parameters (model, connection) apply to it.
    :param submission: The submit step's record (``Submission.to_xcom()``); usually mapped.
    :param max_backoff: Longest pause, in seconds, after repeated refusals.
    """

    template_fields: Sequence[str] = ("submission", "conn_id")

    def __init__(
        self, *, job: BatchJob, submission: Mapping[str, Any], max_backoff: float = 600.0, **kwargs: Any
    ) -> None:
        super().__init__(batch_id="", deferrable=True, **kwargs)
        self.job = job
        self.submission = submission
        self.max_backoff = max_backoff

    # Every resume re-reads what it needs from the submit step's record and the ledger, never from
    # deferral kwargs: a retried task starts afresh, and ``airflow dags test`` drops them. A shard
    # the submit step sent is waited for without touching the warehouse, as most are.

    def execute(self, context: Context) -> dict[str, Any]:
        from llm_batch.handoffs import Submission

        submitted = Submission.from_xcom(self.submission)
        if submitted.queued:
            return self.send(context)
        self.batch_id = submitted.batch_id
        return self._wait_for(context, submitted.batch_id, "ended")

    def send(self, context: Context, event: Any = None) -> dict[str, Any]:
        """Send a queued shard, or a refused batch's again, if its model has room; then wait for it."""
        from llm_batch import steps
        from llm_batch.capacity import AwaitingCapacity
        from llm_batch.handoffs import Submission

        waiting = Submission.from_xcom(self.submission)
        job = self._run_job(context)
        with permanent_errors_fail_at_once():
            try:
                if waiting.queued:
                    made = steps.submit(job, waiting.spec, run_id=context["run_id"])
                else:  # re-attaches to the batch the submit step made, unless it was refused
                    made = steps.resubmit(job, waiting, run_id=context["run_id"])
            except AwaitingCapacity as no_room:
                self.log.info("%s; asking again in %.0f s", no_room, self.poll_interval)
                self._pause(self.poll_interval)
        if made.batch_id is None:
            raise AirflowSkipException(
                "every request of this shard is answered, or in flight in another run that lands it"
            )
        self.batch_id = made.batch_id  # what a kill while on the worker cancels
        return self._wait_for(context, made.batch_id, "ended")

    def ended(self, context: Context, event: dict[str, Any] | None = None) -> dict[str, Any]:
        """The batch ended: hand it on with its submission, or send it again if it was refused."""
        from llm_batch import steps
        from llm_batch.backends import BatchState
        from llm_batch.handoffs import Submission

        if event is None:  # resumed without an event: look again
            return self.send(context)
        summary = self.execute_complete(context, event)
        state = BatchState.from_summary(summary)
        job = self._run_job(context)
        made = submitted = Submission.from_xcom(self.submission)
        if state.id != submitted.batch_id:  # this step made the batch: the ledger knows its submission
            made = steps.submission_of_batch(job, state.id, submitted.spec, run_id=context["run_id"])
        if not state.refused_for_capacity:
            return {**summary, "submission": made.to_xcom()}
        refusals = steps.refused_for_capacity(job, made)
        delay = backoff_seconds(refusals, self.poll_interval, self.max_backoff)
        self.log.warning(
            "Batch %s was refused: %s's enqueued-token limit is full (declared higher than the "
            "service's, or used by work the ledger does not see). Sending it again in %.0f s, in this round",
            state.id,
            state.model or job.model,
            delay,
        )
        self._pause(delay)
        raise AssertionError("unreachable: defer raises")  # pragma: no cover

    def _pause(self, seconds: float) -> None:
        self.defer(trigger=TimeDeltaTrigger(timedelta(seconds=seconds)), method_name="send")

    def on_kill(self) -> None:
        if self.batch_id:  # killed before this try had a batch: nothing of its own to cancel
            super().on_kill()

    def _run_job(self, context: Context) -> BatchJob:
        from llm_batch.steps import RunOptions

        return RunOptions.from_params(context.get("params")).job_for(self.job)
