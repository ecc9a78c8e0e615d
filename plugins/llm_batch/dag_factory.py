"""The standard tasks around a declared job: one function turns a ``BatchJob`` into a DAG.

    extract -> build -> round_1 [submit -> wait -> collect] -> next_round -> round_2 ... -> load -> report

``submit``, ``wait`` and ``collect`` are mapped over the round's shards. ``submit`` never blocks:
a shard with no room under its model's enqueued-token limit is queued, and its ``wait`` sends it
once there is room. ``wait`` defers, so neither that nor a batch that takes hours holds a worker.
Each round re-submits only what the round before could not finish (expired, cancelled, rate limited, server errors); a round with nothing
to do is skipped. Tasks that touch a DuckDB warehouse share one pool slot.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowSkipException

from llm_batch.job import BatchJob
from llm_batch.sensors import ShardWaitSensor
from llm_batch.task_errors import permanent_errors_fail_at_once

log = logging.getLogger(__name__)

RUN_PARAMS_DOC = """
Manual runs take these parameters (the nightly schedule uses the defaults):

- `start_date`, `end_date`: an inclusive date range instead of the data interval.
- `row_limit`: answer at most this many rows (the first by key), e.g. for a trial run.
- `model`: another model for this run; rows answered by the job's model count as unanswered.
- `batch_conn_id`: another batch connection for this run: an OpenAI, Azure OpenAI or Anthropic one
  (the connection picks the vendor); give a `model` that vendor serves.
- `dry_run`: build, check and price the requests, submit nothing.
- `max_cost_usd`: the most this run may spend; over it, the run sends nothing and fails.
- `force`: answer rows again even if already answered with the same request.
"""


def run_params(job: BatchJob) -> dict[str, Param]:
    """The trigger form: each field says what it does; the nightly schedule leaves them all empty."""
    from llm_batch.pricing import known_models

    return {
        "start_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="First date",
            description="Process source rows from this date (inclusive) instead of the run's data "
            "interval. Give the last date too. Leave both empty for the nightly interval.",
        ),
        "end_date": Param(
            None,
            type=["null", "string"],
            format="date",
            title="Last date",
            description=f"Process source rows up to this date (inclusive); not before the first date, "
            f"at most {job.max_window_days} days after it.",
        ),
        "row_limit": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            title="Row limit",
            description="Answer at most this many rows (the first by key), e.g. for a trial run.",
        ),
        "model": Param(
            None,
            type=["null", "string"],
            examples=[job.model, *(m for m in known_models() if m != job.model)],
            title="Model",
            description=f"Another model for this run (default {job.model}). Any name the service "
            "knows works; a model with no known price is reported as unpriced. Rows answered by "
            "another model count as unanswered.",
        ),
        "batch_conn_id": Param(
            None,
            type=["null", "string"],
            examples=[job.openai_conn_id],
            title="Batch connection",
            description=f"Another batch connection for this run (default {job.openai_conn_id}). Its "
            "type picks the vendor: openai (OpenAI, Azure's v1 surface), openai with an api_version "
            "extra (Azure OpenAI), or anthropic (Message Batches); give a model that vendor serves.",
        ),
        "dry_run": Param(
            False,
            type="boolean",
            title="Dry run",
            description="Build, check and price the requests; submit nothing. The estimate is "
            "recorded in the runs table.",
        ),
        "max_cost_usd": Param(
            None,
            type=["null", "number"],
            minimum=0,
            title="Cost ceiling (USD)",
            description="The most this run may spend at batch prices. If the estimate is higher, "
            "nothing is sent, the run fails and its report says the estimate. Empty: "
            + ("no ceiling." if job.max_cost_usd is None else f"the job's ${job.max_cost_usd:,.2f}."),
        ),
        "force": Param(
            False,
            type="boolean",
            title="Answer again",
            description="Pay for fresh answers even for rows already answered with the same request.",
        ),
    }


def build_batch_dag(
    job: BatchJob,
    *,
    dag_id: str | None = None,
    schedule: Any = None,
    start_date: dt.datetime | None = None,
    catchup: bool = False,
    max_active_runs: int = 4,
    tags: tuple[str, ...] = ("llm-batch",),
    retries: int = 2,
    retry_delay_seconds: float | None = None,
) -> DAG:
    """A DAG running ``job`` for each data interval (by default nightly, for the day before)."""
    if retry_delay_seconds is None:
        retry_delay_seconds = float(os.environ.get("LLM_BATCH_RETRY_DELAY_SECONDS", 30))
    dag = DAG(
        dag_id=dag_id or job.name,
        schedule=schedule or CronDataIntervalTimetable("0 0 * * *", timezone="UTC"),
        start_date=start_date or dt.datetime(2026, 1, 1, tzinfo=dt.UTC),
        catchup=catchup,
        max_active_runs=max_active_runs,
        params=run_params(job),
        tags=list(tags),
        description=f"{job.endpoint} batch with {job.model}: {job.source_conn_id} rows into "
        f"{job.target_table}, at half the synchronous price",
        default_args={"retries": retries, "retry_delay": dt.timedelta(seconds=retry_delay_seconds)},
        doc_md=f"Batch job `{job.name}`: `{job.endpoint}` with `{job.model}` into `{job.target_table}`.\n"
        + RUN_PARAMS_DOC,
        # Found as the DAG file's global: a file that imports another DAG file (to reuse its job)
        # must not register that file's DAG as its own, under the same dag_id.
        auto_register=False,
    )
    pool = {"pool": job.warehouse_pool} if job.warehouse_pool else {}
    # Deployments (and the demo) may poll faster or slower than the job declares.
    poll_interval = float(os.environ.get("LLM_BATCH_POLL_INTERVAL_SECONDS", job.poll_interval_seconds))
    with dag:
        built = _build_task(job, pool)
        shards = built  # the list of shard specs; the run summary travels under the key "summary"
        rounds = []
        for attempt in range(1, job.max_attempts + 1):
            with TaskGroup(f"round_{attempt}"):
                submitted = _submit_task(job, pool).expand(spec=shards)
                waited = ShardWaitSensor.partial(
                    task_id="wait",
                    job=job,
                    conn_id=f"{{{{ params.batch_conn_id or '{job.openai_conn_id}' }}}}",
                    poll_interval=poll_interval,
                    retries=retries,
                ).expand(submission=submitted)
                collected = _collect_task(job, pool).expand(pair=submitted.zip(waited.output))
                if attempt < job.max_attempts:
                    shards = _next_round_task()(collected)
            rounds.append(collected)
        every_round = rounds[0].concat(*rounds[1:]) if len(rounds) > 1 else rounds[0]
        loaded = _load_task(job, pool)(built["summary"], every_round)
        _report_task(job, pool)(built["summary"], every_round, loaded)
    return dag


def _options(context: dict[str, Any]):
    from llm_batch.steps import RunOptions

    return RunOptions.from_params(context.get("params"))


def _window(job: BatchJob, context: dict[str, Any]):
    """The run's window: its dates, or the data interval (bad dates raise ``InvalidRunWindow``)."""
    from llm_batch.run_window import RunWindow

    return RunWindow.for_run(
        context.get("data_interval_start"),
        context.get("data_interval_end"),
        context.get("params"),
        max_days=job.max_window_days,
    )


def _outcomes(collected: Any) -> list:
    """The collect tasks' records of every round; a skipped round left ``None``."""
    from llm_batch.handoffs import ShardOutcome

    # By index, not iteration: iterating a mapped XCom reads one past the end, which Airflow logs
    # as an error in every successful run (and a concatenation of rounds takes no slices).
    return [ShardOutcome.from_xcom(c) for c in (collected[i] for i in range(len(collected))) if c]


# Tasks returning a record say multiple_outputs=False: a ``-> dict`` annotation would otherwise
# also push each of its keys as an XCom of its own, about 25 rows per task nobody reads.


def _build_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="build", **pool)
    def build(**context: Any) -> list[dict[str, Any]]:
        """Extract the interval's rows, drop those already settled, build and shard the requests."""
        from llm_batch import steps

        options = _options(context)
        with permanent_errors_fail_at_once():
            built = steps.build(
                options.job_for(job), _window(job, context), options, run_id=context["run_id"]
            )
        context["ti"].xcom_push(key="summary", value=built.summary.to_xcom())
        return [spec.to_xcom() for spec in built.shards]

    return build()


def _submit_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="submit", multiple_outputs=False, **pool)
    def submit(spec: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Create this shard's batch, re-attach to an earlier try's, or queue it for the wait step."""
        from llm_batch import steps
        from llm_batch.capacity import AwaitingCapacity
        from llm_batch.handoffs import ShardSpec, Submission

        options = _options(context)
        if options.dry_run:
            raise AirflowSkipException("dry run: nothing is submitted")
        shard = ShardSpec.from_xcom(spec)
        with permanent_errors_fail_at_once():
            try:
                submission = steps.submit(options.job_for(job), shard, run_id=context["run_id"])
            except AwaitingCapacity as waiting:  # the wait step submits it when there is room
                log.info("%s; the wait step submits it when there is room", waiting)
                return Submission.queued_for(shard).to_xcom()
        if submission.batch_id is None:
            raise AirflowSkipException(
                "every request of this shard is answered, or in flight in another run that lands it"
            )
        return submission.to_xcom()

    return submit


def _collect_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="collect", multiple_outputs=False, **pool)
    def collect(pair: tuple[dict[str, Any], dict[str, Any]], **context: Any) -> dict[str, Any]:
        """Parse the finished batch into results, failures and the next round's requests."""
        from llm_batch import steps
        from llm_batch.handoffs import Submission

        submitted, batch_summary = pair
        with permanent_errors_fail_at_once():  # e.g. a failed batch: the same bytes would fail again
            # The wait step hands on the submission it made for a queued shard.
            batch_summary = dict(batch_summary)
            submission = Submission.from_xcom(batch_summary.pop("submission", None) or submitted)
            return steps.collect(_options(context).job_for(job), submission, batch_summary).to_xcom()

    return collect


def _next_round_task():
    @task(task_id="next_round")
    def next_round(collected: Any) -> list[dict[str, Any]]:
        """The shards of requests worth another try; an empty list skips the next round."""
        from llm_batch import steps

        with permanent_errors_fail_at_once():
            return [spec.to_xcom() for spec in steps.next_round(_outcomes(collected))]

    return next_round


def _load_task(job: BatchJob, pool: dict[str, Any]):
    @task(
        task_id="load",
        trigger_rule="none_failed",
        multiple_outputs=False,
        outlets=[Asset(name=job.target_table)],
        **pool,
    )
    def load(summary: dict[str, Any], collected: Any, **context: Any) -> dict[str, Any]:
        """Land results and failures; the run's rows are replaced in one transaction."""
        from llm_batch import report, steps
        from llm_batch.handoffs import BuildSummary

        with permanent_errors_fail_at_once():
            built = BuildSummary.from_xcom(summary)
            if built.dry_run:
                raise AirflowSkipException("dry run: nothing to load")
            interval_start = context.get("data_interval_start")
            run_job, outcomes = _options(context).job_for(job), _outcomes(collected)
            loaded = steps.load(
                run_job,
                _window(job, context),
                built,
                outcomes,
                logical_date=interval_start.date() if interval_start else None,
            )
        # Shown with the asset event in Airflow's UI, and readable by the DAGs it schedules.
        figures = report.headline(report.summarize(run_job, built, outcomes, run_id=context["run_id"]))
        context["outlet_events"][Asset(name=job.target_table)].extra = {**figures, "landed": loaded.results}
        return loaded.to_xcom()

    return load


def _report_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="report", trigger_rule="none_failed", multiple_outputs=False, **pool)
    def report(summary: dict[str, Any], collected: Any, loaded: Any, **context: Any) -> dict[str, Any]:
        """Counts, failures by reason, tokens and cost; fails the run over the failure threshold."""
        from llm_batch import steps
        from llm_batch.handoffs import BuildSummary

        with permanent_errors_fail_at_once():  # over the threshold, a retry would count the same failures
            built = BuildSummary.from_xcom(summary)
            outcomes = _outcomes(collected)
            return steps.report(
                _options(context).job_for(job), built, outcomes, run_id=context["run_id"]
            ).to_xcom()

    return report
