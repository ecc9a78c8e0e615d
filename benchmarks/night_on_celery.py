"""A whole nightly run of ``--rows`` source rows on the scale-out shape, as deployed.

Starts the stack of ``make up-celery`` on fresh PostgreSQL databases (metadata and warehouse),
with two Celery workers, run files on the stack's S3 server (moto) and the local Batch API server;
writes ``--rows`` reviews of one day into the warehouse's ``reviews`` table (DuckDB makes them,
COPY lands them); declares the account's enqueued-token limit for the model on the batch
connection (``--enqueued-token-limit``; a night this size is not run on a tier-1 account);
triggers the ``review_sentiment`` run for that day through the REST API and waits for it. Prints:

- the run's wall time, and worker-seconds (the sum of its task instances' durations);
- the triggerer's CPU seconds during the run (every deferred wait is polled there);
- the largest task's peak RSS, sampled every 0.5 s from the task processes
  (``airflow worker -- <task instance id>``), with the task it was;
- batches created, rows landed and failures recorded.

Not part of ``make test``: at a million rows it takes most of an hour on a 2-core machine.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/night_on_celery.py [--rows 1000000] [--keep]
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import threading
import time
from pathlib import Path

import duckdb
import psutil
import psycopg

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from include.airflow_api import AirflowAPI  # noqa: E402
from include.batch_api_process import free_port  # noqa: E402
from include.sample_data.bulk_reviews import write_bulk_reviews  # noqa: E402
from include.stack import ADMIN, Stack, StackSettings, ensure_postgres_database  # noqa: E402
from llm_batch.warehouse import postgres_warehouse  # noqa: E402

DAG_ID = "review_sentiment"
MODEL = "gpt-4o-mini"
ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"


class TaskMemory:
    """The peak RSS of every task process seen, by task instance id, sampled in a thread."""

    def __init__(self, interval: float = 0.5) -> None:
        self.peaks: dict[str, int] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, args=(interval,), daemon=True)

    def __enter__(self) -> TaskMemory:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()

    def _sample(self, interval: float) -> None:
        while not self._stop.wait(interval):
            for process in psutil.process_iter(["cmdline", "memory_info"]):
                title = " ".join(process.info["cmdline"] or ())
                if title.startswith("airflow worker -- ") and process.info["memory_info"]:
                    ti = _hex(title.removeprefix("airflow worker -- "))
                    self.peaks[ti] = max(self.peaks.get(ti, 0), process.info["memory_info"].rss)


def _hex(text: str) -> str:
    """A task instance id as hex digits alone: the process title and the REST API may dress it differently."""
    return "".join(c for c in text.lower() if c in "0123456789abcdef")


def tree_cpu_seconds(pid: int | None) -> float:
    """CPU seconds of a supervised process and everything under it that is still alive."""
    if pid is None:
        return 0.0
    root = psutil.Process(pid)
    total = 0.0
    for process in [root, *root.children(recursive=True)]:
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def seed_source(dsn: str, rows: int, day: dt.date, tmp: Path) -> None:
    source = tmp / "source.duckdb"
    write_bulk_reviews(source, rows, day)
    with duckdb.connect(str(source), read_only=True) as db:
        table = db.sql("SELECT * FROM reviews").to_arrow_table()
    with postgres_warehouse(dsn) as warehouse:
        warehouse.ensure_table("reviews", table.schema)
        warehouse.execute("CREATE INDEX IF NOT EXISTS reviews_by_date ON reviews (review_date)")
        warehouse.replace_rows("reviews", table, match_columns=["review_id", "created_at"])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--enqueued-token-limit", type=int, default=1_000_000_000)
    parser.add_argument("--timeout", type=float, default=3 * 3600)
    parser.add_argument("--keep", action="store_true", help="leave the stack and its databases up")
    args = parser.parse_args()

    suffix = free_port()
    metadata = f"postgresql://postgres@127.0.0.1:5432/night_airflow_{suffix}"
    warehouse = f"postgresql://postgres@127.0.0.1:5432/night_warehouse_{suffix}"
    day = dt.date.today() - dt.timedelta(days=1)
    root = Path(tempfile.mkdtemp(prefix="night-on-celery-"))
    print(f"night_on_celery: {args.rows:,} rows of {day}, 2 Celery workers, PostgreSQL, S3 run files")
    print(f"  stack under {root}; load average at start {psutil.getloadavg()[0]:.2f}", flush=True)
    for dsn in (metadata, warehouse):
        ensure_postgres_database(dsn)
    started = time.perf_counter()
    seed_source(warehouse, args.rows, day, root)
    print(f"  source written in {time.perf_counter() - started:.0f} s", flush=True)

    settings = StackSettings(
        root=root / "stack",
        executor="CeleryExecutor",
        postgres_dsn=metadata,
        warehouse_dsn=warehouse,
        redis_url="redis://127.0.0.1:6379/9",
        workers=2,
        api_port=free_port(),
        batch_api_port=free_port(),
        object_store_port=free_port(),
        batch_api_flags=("--validating-seconds", "1", "--finalizing-seconds", "1"),
        poll_interval_seconds=5.0,
    )
    stack = Stack(settings)
    limits = json.dumps({"enqueued_token_limits": {MODEL: args.enqueued_token_limit}})
    connection = {**stack.airflow.batch_connection(), "extra": limits}
    settings.extra_env["AIRFLOW_CONN_OPENAI_DEFAULT"] = json.dumps(connection)
    try:
        stack.up(with_sample_data=False)
        api = AirflowAPI(stack.api_url, *ADMIN, on_poll=stack.check)
        api.unpause(DAG_ID)
        triggerer_cpu = tree_cpu_seconds(stack.supervised_pid("triggerer"))
        run_id = f"night-{args.rows}"
        with TaskMemory() as memory:
            started = time.perf_counter()
            api.trigger(
                DAG_ID, None, {"start_date": day.isoformat(), "end_date": day.isoformat()}, run_id=run_id
            )
            run = api.wait_for_run(DAG_ID, run_id, timeout=args.timeout)
            wall = time.perf_counter() - started
        triggerer_cpu = tree_cpu_seconds(stack.supervised_pid("triggerer")) - triggerer_cpu
        tasks = api.task_instances(DAG_ID, run_id)
        worker_seconds = sum(t.get("duration") or 0 for t in tasks)
        by_id = {_hex(str(t.get("id", ""))): t for t in tasks}
        largest_ti, largest = max(memory.peaks.items(), key=lambda item: item[1], default=("-", 0))
        largest_task = by_id.get(largest_ti, {})
        with psycopg.connect(warehouse) as conn:
            landed = conn.execute("SELECT count(*) FROM review_sentiment").fetchone()[0]
            failures = conn.execute("SELECT count(*) FROM llm_batch_failures").fetchone()[0]
            batches = conn.execute("SELECT count(DISTINCT batch_id) FROM llm_batch_ledger").fetchone()[0]
        name = largest_task.get("task_id", f"task instance {largest_ti}")
        index = largest_task.get("map_index", -1)
        print(
            f"  run {run['state']} in {wall:,.0f} s; {len(tasks)} task instances, {worker_seconds:,.0f} worker-seconds"
        )
        print(f"  triggerer CPU during the run: {triggerer_cpu:,.1f} s")
        print(
            f"  largest task: {name}{'' if index in (-1, None) else f'[{index}]'} at {largest / 2**20:,.0f} MB peak RSS "
            f"({len(memory.peaks)} task processes sampled)"
        )
        print(f"  {batches} batches; {landed:,} rows landed, {failures:,} failures recorded")
        print(f"  load average at the end {psutil.getloadavg()[0]:.2f}")
    finally:
        if not args.keep:
            stack.down()
            with psycopg.connect(ADMIN_DSN, autocommit=True) as conn:
                for dsn in (metadata, warehouse):
                    conn.execute(f'DROP DATABASE IF EXISTS "{dsn.rsplit("/", 1)[1]}" WITH (FORCE)')


if __name__ == "__main__":
    main()
