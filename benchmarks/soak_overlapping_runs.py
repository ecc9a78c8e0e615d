"""Soak: overlapping runs over the same 14 days, at once, on PostgreSQL: is every request paid once?

Four runs, each started twice, all eight at the same time in their own processes: a manual run over
all 14 days, a manual run over the middle 7, a backfill over the first 8 days (one run per day,
oldest first) and a backfill over the last 8 (newest first). Each run goes build -> submit -> wait
-> collect -> load through the library's task functions (``include.window_run``), against the
local Batch API server and one PostgreSQL schema. Some keys are edited on a later day, so older
windows meet newer versions. Prints what the server was paid for and what landed, and exits 1
if a request was paid twice or a row did not land exactly once, in its latest version.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/soak_overlapping_runs.py [--per-day 30] [--keep]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import multiprocessing
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from openai import OpenAI
from psycopg.conninfo import make_conninfo

from dags.review_sentiment import JOB
from include.batch_api_process import FAST_TIMINGS, ServerProcess
from include.local_postgres import LOCAL_POSTGRES_DSN
from include.sample_data.reviews import generate_reviews
from include.server_bill import batch_uploads, created_batches, paid_requests
from include.window_run import WindowRun
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.ledger import BatchLedger
from llm_batch.request_lines import build_requests
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import postgres_warehouse

FIRST = dt.date(2026, 5, 1)
DAYS = 14
EDITED = 6  # keys of day 3 written again, with new text, on day 10


def day(n: int) -> dt.date:
    return FIRST + dt.timedelta(days=n)


def one_day(n: int) -> RunWindow:
    return RunWindow(day(n), day(n + 1))


PLANS: dict[str, list[RunWindow]] = {
    "manual-all-days": [RunWindow(day(0), day(DAYS))],
    "manual-middle": [RunWindow(day(4), day(11))],
    "backfill-early": [one_day(n) for n in range(0, 8)],
    "backfill-late": [one_day(n) for n in reversed(range(6, 14))],
}


def source_rows(per_day: int) -> pa.Table:
    rows = generate_reviews(FIRST, DAYS, per_day=(per_day, per_day))
    third = rows.filter(pc.equal(rows["review_date"], day(3))).slice(0, EDITED).to_pylist()
    later = dt.datetime.combine(day(10), dt.time(9))
    edits = [
        {**row, "review_date": day(10), "created_at": later, "review_text": f"Update: {row['review_text']}"}
        for row in third
        if row["review_text"] and row["review_text"].strip()
    ]
    return pa.concat_tables([rows, pa.Table.from_pylist(edits, schema=rows.schema)])


def run_plan(
    name: str, copy: int, dsn: str, base_url: str, api_key: str, storage_url: str, start: Any
) -> dict[str, Any]:
    """One run of a plan, in its own process: each window through every step, in order.

    Every run waits at ``start`` (a barrier) once imported, so that all begin at the same moment.
    """
    job = dataclasses.replace(JOB, storage_url=storage_url)
    backend = OpenAIBatchBackend(client=OpenAI(base_url=base_url, api_key=api_key, max_retries=2))
    start.wait()
    built = landed = 0
    for window in PLANS[name]:
        run = WindowRun(
            job, window, lambda: postgres_warehouse(dsn), backend, f"{name}-{copy}__{window.label}"
        )
        landed += run.run().results
        built += run.summary.requests
    return {
        "run": f"{name} #{copy}",
        "windows": len(PLANS[name]),
        "requests_built": built,
        "rows_landed": landed,
    }


def expected_latest(job, rows: pa.Table) -> dict[str, dt.date]:
    """Key -> row date of its latest version, for every row the job can answer."""
    return {line.key: line.row_date for line in build_requests(job, rows).lines}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--per-day", type=int, default=30, help="reviews per day")
    parser.add_argument("--keep", action="store_true", help="keep the PostgreSQL schema afterwards")
    args = parser.parse_args()

    root = Path(tempfile.mkdtemp(prefix="soak-overlap-"))
    schema = f"soak_{uuid.uuid4().hex[:10]}"
    dsn = make_conninfo(LOCAL_POSTGRES_DSN, options=f"-c search_path={schema}")
    server = ServerProcess(root / "server", *FAST_TIMINGS, "--request-seconds", "0.005").start()
    storage_url = (root / "files").as_uri()
    job = dataclasses.replace(JOB, storage_url=storage_url)
    rows = source_rows(args.per_day)
    with psycopg.connect(LOCAL_POSTGRES_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            with postgres_warehouse(dsn) as warehouse:
                numbered = rows.append_column("row_no", pa.array(range(rows.num_rows), pa.int64()))
                warehouse.ensure_table("reviews", numbered.schema)
                warehouse.replace_rows("reviews", numbered, match_columns=["row_no"])
                BatchLedger(warehouse)  # the library's tables exist, as after a deployment's first run
            context = multiprocessing.get_context("spawn")
            with context.Manager() as manager, context.Pool(2 * len(PLANS)) as pool:
                start = manager.Barrier(2 * len(PLANS))
                jobs = [
                    (name, copy, dsn, server.base_url, server.api_key, storage_url, start)
                    for name in PLANS
                    for copy in (1, 2)
                ]
                started = time.monotonic()
                runs = pool.starmap(run_plan, jobs)
            seconds = time.monotonic() - started
            with postgres_warehouse(dsn) as warehouse:
                table = warehouse.read_arrow(
                    "SELECT review_id, review_date FROM review_sentiment"
                ).to_pylist()
        finally:
            if not args.keep:
                admin.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    client = server.client()
    paid = paid_requests(client)
    batches, uploads = created_batches(client), batch_uploads(client)
    server.stop()

    expected = expected_latest(job, rows)
    keys = [row["review_id"] for row in table]
    stale = [row["review_id"] for row in table if expected.get(row["review_id"]) != row["review_date"]]
    figures = {
        "runs (processes at once)": len(runs),
        "source rows": rows.num_rows,
        "batches created": batches,
        "input files uploaded": uploads,
        "requests paid": len(paid),
        "distinct request fingerprints": len(set(paid)),
        "requests paid twice or more": len(paid) - len(set(paid)),
        "rows expected (latest version of each answerable key)": len(expected),
        "rows landed": len(keys),
        "rows landed more than once": len(keys) - len(set(keys)),
        "rows missing": len(set(expected) - set(keys)),
        "rows landed in an older version": len(stale),
        "seconds": round(seconds, 1),
    }
    for run in runs:
        print(
            f"  {run['run']:<20} windows {run['windows']:>2}  requests built {run['requests_built']:>4}  "
            f"rows landed {run['rows_landed']:>4}"
        )
    width = max(map(len, figures))
    for name, value in figures.items():
        print(f"{name:<{width}}  {value}")
    ok = (
        figures["requests paid twice or more"] == 0
        and figures["rows landed more than once"] == 0
        and figures["rows missing"] == 0
        and not stale
    )
    print("OK: every request paid once, every row landed once, latest version" if ok else "FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
