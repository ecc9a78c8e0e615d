"""The standard tasks around a declared job: one function turns a ``BatchJob`` into a DAG.

    extract -> build -> round_1 [submit -> wait -> collect] -> next_round -> round_2 ... -> load -> report

``submit``, ``wait`` and ``collect`` are mapped over the round's shards. ``wait`` is a deferrable
sensor, so a batch that takes hours holds no worker. Each round re-submits only what the round
before could not finish (expired, cancelled, rate limited, server errors); a round with nothing
to do is skipped. Tasks that touch a DuckDB warehouse share one pool slot.
"""

from __future__ import annotations

import datetime as dt
import os
from typing import Any

from airflow.sdk import DAG, Asset, CronDataIntervalTimetable, Param, TaskGroup, task
from airflow.sdk.exceptions import AirflowFailException, AirflowSkipException

from llm_batch.job import BatchJob
from llm_batch.sensors import BatchSensor

RUN_PARAMS_DOC = """
Manual runs take these parameters (the nightly schedule uses the defaults):

- `start_date`, `end_date`: an inclusive date range instead of the data interval.
- `row_limit`: answer at most this many rows (the first by key), e.g. for a trial run.
- `model`: another model for this run; rows answered by the job's model count as unanswered.
- `dry_run`: build, check and price the requests, submit nothing.
- `force`: answer rows again even if already answered with the same request.
"""


def run_params(job: BatchJob) -> dict[str, Param]:
    return {
        "start_date": Param(
            None, type=["null", "string"], format="date", description="first date (inclusive)"
        ),
        "end_date": Param(None, type=["null", "string"], format="date", description="last date (inclusive)"),
        "row_limit": Param(None, type=["null", "integer"], minimum=1, description="at most this many rows"),
        "model": Param(None, type=["null", "string"], description=f"default: {job.model}"),
        "dry_run": Param(False, type="boolean", description="build and price, submit nothing"),
        "force": Param(False, type="boolean", description="answer already answered rows again"),
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
        default_args={"retries": retries, "retry_delay": dt.timedelta(seconds=retry_delay_seconds)},
        doc_md=f"Batch job `{job.name}`: `{job.endpoint}` with `{job.model}` into `{job.target_table}`.\n"
        + RUN_PARAMS_DOC,
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
                waited = BatchSensor.partial(
                    task_id="wait",
                    conn_id=job.openai_conn_id,
                    poll_interval=poll_interval,
                    deferrable=True,
                    retries=retries,
                ).expand(batch_id=submitted)
                collected = _collect_task(job, pool).expand(pair=submitted.zip(waited.output))
                if attempt < job.max_attempts:
                    shards = _next_round_task()(collected)
            rounds.append(collected)
        every_round = rounds[0].concat(*rounds[1:]) if len(rounds) > 1 else rounds[0]
        loaded = _load_task(job, pool)(built["summary"], every_round)
        _report_task(job, pool)(built["summary"], every_round, loaded)
    return dag


def _job_for(job: BatchJob, context: dict[str, Any]) -> BatchJob:
    return job.with_overrides(model=(context.get("params") or {}).get("model"))


def _window(context: dict[str, Any]):
    """The run's window; bad dates fail the task at once, since no retry can fix them."""
    from llm_batch.pipeline import InvalidRunWindow, RunWindow

    try:
        return RunWindow.for_run(
            context.get("data_interval_start"), context.get("data_interval_end"), context.get("params")
        )
    except InvalidRunWindow as exc:
        raise AirflowFailException(str(exc)) from None


def _build_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="build", **pool)
    def build(**context: Any) -> list[dict[str, Any]]:
        """Extract the interval's rows, drop those already settled, build and shard the requests."""
        from llm_batch import pipeline
        from llm_batch.warehouse import warehouse_for_conn_id

        run_job, window, params = _job_for(job, context), _window(context), context["params"]
        with warehouse_for_conn_id(run_job.source_conn_id, read_only=True) as source:
            rows = pipeline.extract_rows(run_job, window, source, row_limit=params.get("row_limit"))
        settled: set[tuple[str, str]] = set()
        with warehouse_for_conn_id(run_job.warehouse_conn_id) as warehouse:
            rows = pipeline.drop_superseded(run_job, rows, warehouse)
            if not params.get("force"):
                settled = pipeline.settled_requests(
                    run_job, window, warehouse, rows=rows, run_id=context["run_id"]
                )
        built = pipeline.build_run(
            run_job,
            window,
            rows,
            settled,
            dry_run=bool(params.get("dry_run")),
            identity_salt=context["run_id"] if params.get("force") else "",
        )
        context["ti"].xcom_push(key="summary", value=built["summary"])
        return built["shards"]

    return build()


def _submit_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="submit", **pool)
    def submit(spec: dict[str, Any], **context: Any) -> dict[str, Any]:
        """Create this shard's batch, or re-attach to the one an earlier try already created."""
        from llm_batch.backends import batch_backend
        from llm_batch.ledger import BatchLedger
        from llm_batch.submission import ShardSpec, submit_shard
        from llm_batch.warehouse import warehouse_for_conn_id

        if context["params"].get("dry_run"):
            raise AirflowSkipException("dry run: nothing is submitted")
        run_job = _job_for(job, context)
        with warehouse_for_conn_id(run_job.warehouse_conn_id) as warehouse:
            submitted = submit_shard(
                batch_backend(run_job.openai_conn_id),
                BatchLedger(warehouse),
                run_job,
                ShardSpec.from_dict(spec),
                run_id=context["run_id"],
            )
        if submitted["batch_id"] is None:
            raise AirflowSkipException(
                "every request of this shard is answered, or in flight in another run that lands it"
            )
        return submitted

    return submit


def _collect_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="collect", **pool)
    def collect(pair: tuple[dict[str, Any], dict[str, Any]], **context: Any) -> dict[str, Any]:
        """Parse the finished batch into results, failures and the next round's requests."""
        from llm_batch.backends import batch_backend
        from llm_batch.collect import BatchFailedError, collect_shard
        from llm_batch.ledger import BatchLedger, utcnow
        from llm_batch.submission import ShardSpec
        from llm_batch.warehouse import warehouse_for_conn_id

        submitted, summary = pair
        run_job = _job_for(job, context)
        key = submitted["submission_key"]
        with warehouse_for_conn_id(run_job.warehouse_conn_id) as warehouse:
            ledger = BatchLedger(warehouse)
            try:
                outcome = collect_shard(
                    batch_backend(run_job.openai_conn_id),
                    run_job,
                    ShardSpec.from_dict(submitted["spec"]),
                    summary,
                    submission_key=key,
                )
            except BatchFailedError as exc:
                ledger.update(key, status="failed", error=str(exc)[:4000], finished_at=utcnow())
                raise AirflowFailException(str(exc)) from None  # the same bytes would fail again
            ledger.record_collected(key, summary, outcome)
        return outcome

    return collect


def _next_round_task():
    @task(task_id="next_round")
    def next_round(collected: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """The shards of requests worth another try; an empty list skips the next round."""
        # One slice, not iteration: iterating a mapped XCom reads one past the end, which
        # Airflow logs as an error in every successful run.
        return [c["retry_spec"] for c in collected[:] if c and c.get("retry_spec")]

    return next_round


def _load_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="load", trigger_rule="none_failed", outlets=[Asset(name=job.target_table)], **pool)
    def load(summary: dict[str, Any], collected: list[dict[str, Any]], **context: Any) -> dict[str, Any]:
        """Land results and failures; the run's rows are replaced in one transaction."""
        from llm_batch import pipeline
        from llm_batch.warehouse import warehouse_for_conn_id

        if summary["dry_run"]:
            raise AirflowSkipException("dry run: nothing to load")
        run_job, window = _job_for(job, context), _window(context)
        # A run without a logical date (a date range from the UI or REST) is dated by its window.
        interval_start = context.get("data_interval_start")
        with warehouse_for_conn_id(run_job.warehouse_conn_id) as warehouse:
            return pipeline.load_run(
                run_job,
                window,
                warehouse,
                [c for c in collected if c],
                summary["rejections_path"],
                logical_date=interval_start.date() if interval_start else window.start,
            )

    return load


def _report_task(job: BatchJob, pool: dict[str, Any]):
    @task(task_id="report", trigger_rule="none_failed", **pool)
    def report(summary: dict[str, Any], collected: list[dict[str, Any]], loaded: Any, **context: Any) -> dict:
        """Counts, failures by reason, tokens and cost; fails the run over the failure threshold."""
        from llm_batch import pipeline
        from llm_batch.warehouse import warehouse_for_conn_id

        run_job = _job_for(job, context)
        with warehouse_for_conn_id(run_job.warehouse_conn_id) as warehouse:
            try:
                return pipeline.report_run(
                    run_job,
                    summary,
                    [c for c in collected if c],
                    run_id=context["run_id"],
                    warehouse=None if summary["dry_run"] else warehouse,
                )
            except pipeline.FailureThresholdExceeded as exc:
                raise AirflowFailException(str(exc)) from None  # a retry would count the same failures

    return report
