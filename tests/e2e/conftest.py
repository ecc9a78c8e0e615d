"""Real running Airflow stacks for the end-to-end tests (scheduler, triggerer, dag-processor,
api-server, and Celery workers for the scale-out shape), driven through the REST API.

Manual runs have no logical date: they give their day as a date range in ``conf``, so no manual
run can take the ``(dag_id, logical_date)`` of a run the scheduler creates, at any time of day.
Every wait checks the stack's processes and fails at once, with the log's tail, when one died;
the stacks stop by themselves when the test process is gone. The e2e tests of a test process share one time budget
(``LLM_BATCH_E2E_BUDGET_SECONDS``, 50 minutes by default): no test runs past it.
"""

from __future__ import annotations

import datetime as dt
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import pytest

from include.airflow_api import AirflowAPI
from include.batch_api_process import free_port
from include.stack import ADMIN, Stack, StackSettings, ensure_postgres_database
from tests.e2e.worker_queues.airflow_local_settings import BUILD_QUEUE, REST_QUEUE

E2E = Path(__file__).resolve().parent
PROJECT = E2E.parents[1]
DAG_ID = "review_sentiment"
ANTHROPIC_DAG_ID = "review_sentiment_on_anthropic"  # the same job on Anthropic (tests/e2e/dags)
TODAY = dt.date.today()
E2E_BUDGET_SECONDS = float(os.environ.get("LLM_BATCH_E2E_BUDGET_SECONDS", 3000))
# pytest-timeout counts a test's teardown too, and the last test of a module stops its stack there.
STACK_STOP_ALLOWANCE_SECONDS = 120.0
_e2e_started: list[float] = []


@pytest.hookimpl(hookwrapper=True, tryfirst=True)
def pytest_runtest_protocol(item, nextitem):
    """Give each e2e test at most what is left of the e2e budget, so a broken stack cannot eat CI."""
    if item.path.is_relative_to(E2E):
        now = time.monotonic()
        started = _e2e_started[0] if _e2e_started else _e2e_started.append(now) or now
        left = E2E_BUDGET_SECONDS - (now - started)
        own = item.get_closest_marker("timeout")
        own_seconds = own.args[0] if own and own.args else float("inf")
        limit = max(min(own_seconds, left), 1) + STACK_STOP_ALLOWANCE_SECONDS
        item.add_marker(pytest.mark.timeout(limit), append=False)
        if left <= 0:
            item.add_marker(pytest.mark.skip(reason="the e2e time budget is spent"))
    yield


def e2e_settings(root: Path, *, python_path: tuple[Path, ...] = (), **overrides) -> StackSettings:
    """The stack's settings for a test; ``python_path`` goes before the project's (a policy, say)."""
    marker = root / "crash-after-create.marker"
    root.mkdir(parents=True, exist_ok=True)
    marker.write_text("disarmed\n")  # tests arm the crash by removing it
    extra_env = {
        "AIRFLOW__CORE__DAGS_FOLDER": str(E2E / "dags"),
        "PYTHONPATH": ":".join(map(str, [*python_path, E2E / "chaos", PROJECT, PROJECT / "plugins"])),
        "LLM_BATCH_CHAOS_CRASH_AFTER_CREATE": str(marker),
        "LLM_BATCH_RETRY_DELAY_SECONDS": "2",
        "AIRFLOW__SCHEDULER__TASK_INSTANCE_HEARTBEAT_TIMEOUT": "30",
    }
    fields = {
        "root": root,
        "api_port": free_port(),
        "batch_api_port": free_port(),
        "batch_api_flags": (
            "--validating-seconds",
            "1",
            "--finalizing-seconds",
            "0.5",
            "--request-seconds",
            "0.01",
        ),
        "poll_interval_seconds": 1.0,
        "extra_env": extra_env,
        "owner_pid": os.getpid(),
    }
    return StackSettings(**{**fields, **overrides})


class RunningStack:
    """A started stack with the handles the tests need."""

    def __init__(self, stack: Stack) -> None:
        self.stack = stack
        self.api = AirflowAPI(stack.api_url, *ADMIN, on_poll=stack.check)
        self.marker = Path(stack.settings.extra_env["LLM_BATCH_CHAOS_CRASH_AFTER_CREATE"])

    @property
    def batch_client(self):
        from openai import OpenAI

        return OpenAI(
            base_url=self.stack.batch_api_url, api_key=self.stack.secrets["openai_api_key"], max_retries=5
        )

    def set_faults(self, **faults) -> None:
        import httpx

        response = httpx.put(
            self.stack.batch_api_url.removesuffix("/v1") + "/_local/faults",
            json=faults,
            headers={"authorization": f"Bearer {self.stack.secrets['openai_api_key']}"},
        )
        response.raise_for_status()

    def batches(self) -> list:
        return list(self.batch_client.batches.list(limit=100))

    def warehouse(self, sql: str, *params) -> list[tuple]:
        dsn = self.stack.settings.warehouse_dsn
        if dsn:
            import psycopg

            with psycopg.connect(dsn) as conn:
                return conn.execute(sql.replace("?", "%s"), params).fetchall()
        with duckdb.connect(str(self.stack.airflow.warehouse_db), read_only=True) as db:
            return db.execute(sql, list(params)).fetchall()

    def source(self, sql: str, *params) -> list[tuple]:
        if self.stack.settings.warehouse_dsn:
            return self.warehouse(sql, *params)
        with duckdb.connect(str(self.stack.airflow.source_db), read_only=True) as db:
            return db.execute(sql, list(params)).fetchall()

    def expected_keys(self, day: dt.date) -> set[str]:
        rows = self.source(
            "SELECT DISTINCT review_id FROM reviews WHERE review_date = ? AND trim(coalesce(review_text, '')) <> ''",
            day,
        )
        return {r[0] for r in rows}

    def all_keys(self, day: dt.date) -> set[str]:
        return {
            r[0] for r in self.source("SELECT DISTINCT review_id FROM reviews WHERE review_date = ?", day)
        }

    def landed_keys(self, day: dt.date, table: str = DAG_ID) -> list[str]:
        return [r[0] for r in self.warehouse(f"SELECT review_id FROM {table} WHERE review_date = ?", day)]

    def trigger_day(self, day: dt.date, run_id: str, conf: dict | None = None) -> dict:
        """Start a manual run for one day: no logical date, the day as a date range."""
        dates = {"start_date": day.isoformat(), "end_date": day.isoformat()}
        return self.api.trigger(DAG_ID, None, {**dates, **(conf or {})}, run_id=run_id)

    def run_day(self, day: dt.date, run_id: str, conf: dict | None = None, timeout: float = 600) -> dict:
        """Run one day manually and wait for the run to end."""
        self.trigger_day(day, run_id, conf)
        return self.api.wait_for_run(DAG_ID, run_id, timeout=timeout)

    def wait_until(self, condition: Callable[[], object], what: str, timeout: float = 180) -> None:
        deadline = time.monotonic() + timeout
        while not condition():
            self.stack.check()
            if time.monotonic() > deadline:
                raise TimeoutError(f"no {what} after {timeout:.0f} s")
            time.sleep(0.5)


def running(stack: Stack, dag_ids: tuple[str, ...] = (DAG_ID,)) -> Iterator[RunningStack]:
    """Start the stack, unpause the DAGs, and stop every process afterwards whatever happened."""
    try:
        stack.up()
        started = RunningStack(stack)
        for dag_id in dag_ids:
            started.api.unpause(dag_id)
        yield started
    finally:
        stack.down()
        for event in stack.restarts():  # tolerated, but worth seeing in the test output
            print(f"\n{stack.root.name}: {event['name']} restarted after exit code {event['exit_code']}")


@pytest.fixture(scope="module")
def local_stack(tmp_path_factory) -> Iterator[RunningStack]:
    # The same job's nights run on OpenAI and on Anthropic side by side.
    stack = Stack(e2e_settings(tmp_path_factory.mktemp("local-stack")))
    yield from running(stack, dag_ids=(DAG_ID, ANTHROPIC_DAG_ID))


@pytest.fixture(scope="module")
def celery_stack(tmp_path_factory) -> Iterator[RunningStack]:
    """Two workers that share nothing but S3 and the databases: each has its own AIRFLOW_HOME and
    temp directory, and run files live on the stack's S3 server. Both take the default queue; a
    cluster policy sends a split run's build to worker-1 and its other tasks to worker-2."""
    yield from running_on_celery(
        tmp_path_factory.mktemp("celery-stack"),
        redis_db=7,
        object_store_port=free_port(),
        worker_queues=(f"default,{BUILD_QUEUE}", f"default,{REST_QUEUE}"),
        python_path=(E2E / "worker_queues",),
    )


def running_on_celery(root: Path, redis_db: int, **overrides) -> Iterator[RunningStack]:
    """A Celery stack with two workers on fresh PostgreSQL databases, dropped afterwards."""
    suffix = free_port()
    metadata = f"postgresql://postgres@127.0.0.1:5432/e2e_airflow_{suffix}"
    warehouse = f"postgresql://postgres@127.0.0.1:5432/e2e_warehouse_{suffix}"
    for dsn in (metadata, warehouse):
        ensure_postgres_database(dsn)
    settings = e2e_settings(
        root,
        executor="CeleryExecutor",
        postgres_dsn=metadata,
        warehouse_dsn=warehouse,
        redis_url=f"redis://127.0.0.1:6379/{redis_db}",
        workers=2,
        **overrides,
    )
    try:
        yield from running(Stack(settings))
    finally:
        _drop_databases(metadata, warehouse)


def _drop_databases(*dsns: str) -> None:
    import psycopg

    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as conn:
        for dsn in dsns:
            conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')
