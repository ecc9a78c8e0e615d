"""The demo's summary: every source row of the day is accounted for once, in one line that adds up."""

from __future__ import annotations

import datetime as dt
import re

import duckdb

from include.demo import summarize
from include.local_airflow import LocalAirflow
from include.sample_data.reviews import generate_reviews
from include.window_run import WindowRun
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import duckdb_warehouse
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import store_source

DAY = dt.date(2026, 3, 31)


def test_the_summary_accounts_for_every_source_row_once(start_server, tmp_path, capsys):
    stack = LocalAirflow(tmp_path, "unused", "unused")
    source = generate_reviews(DAY, 1, per_day=(80, 80))
    with duckdb.connect(str(stack.source_db)) as db:
        db.register("generated", source)
        db.execute("CREATE TABLE reviews AS SELECT * FROM generated")
    with duckdb_warehouse(stack.warehouse_db) as warehouse:
        store_source(warehouse, source)  # the job reads its source through the warehouse here
    server = start_server()
    run = WindowRun(
        sentiment_job(storage_url=(tmp_path / "files").as_uri()),
        RunWindow(DAY, DAY + dt.timedelta(days=1)),
        lambda: duckdb_warehouse(stack.warehouse_db),
        OpenAIBatchBackend(client=server.client()),
        "scheduled__2026-04-01T00:00:00+00:00",
    )
    run.run()
    run.report()

    summarize(stack, DAY, new_batches=1, seconds=1.0)

    out = capsys.readouterr().out
    match = re.search(r"source rows (\d+) = (\d+) landed \+ (\d+) failed \+ (\d+) duplicates", out)
    assert match, out
    total, landed, failed, duplicates = map(int, match.groups())
    assert total == source.num_rows and landed + failed + duplicates == total
    assert landed > 0 and failed > 0 and duplicates > 0, out
    assert "not accounted for" not in out
    assert f"Run report: review_sentiment {DAY}" in out and f"= {landed} answered + 0 failed" in out
