"""What runs report they spent adds up to what the server billed: a batch is paid by the run that made it.

Runs go through the library's task functions (``include.window_run``) against the real local
server, on DuckDB and PostgreSQL; the bill is read back from the server's batches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pytest

from include.sample_data.reviews import generate_reviews
from include.server_bill import billed_usd, created_batches
from include.window_run import WindowRun
from llm_batch import steps
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.budget import CostCeilingExceeded
from llm_batch.report import describe
from llm_batch.run_window import RunWindow
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import store_source

DAY = dt.date(2026, 3, 31)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
SOURCE = generate_reviews(DAY, 1, per_day=(30, 30))


@pytest.fixture
def runs(start_server, tmp_path, open_warehouse):
    server = start_server()
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri())
    with open_warehouse() as warehouse:
        store_source(warehouse, SOURCE)

    def run(run_id: str, job=job) -> WindowRun:
        return WindowRun(job, WINDOW, open_warehouse, OpenAIBatchBackend(client=server.client()), run_id)

    run.server, run.open_warehouse = server, open_warehouse
    return run


def recorded_runs(runs) -> list[dict]:
    with runs.open_warehouse() as warehouse:
        return warehouse.read_arrow("SELECT * FROM llm_batch_runs ORDER BY run_id").to_pylist()


def test_a_batch_shared_by_two_runs_is_counted_once_by_the_run_that_made_it(runs):
    scheduled = runs("scheduled__2026-04-01T00:00:00").build()
    manual = runs("manual__2026-04-01T06:00:00").build()
    scheduled.submit()
    manual.submit()  # the same shard, so the same submission: re-attached, not created again
    assert created_batches(runs.server.client()) == 1
    assert [s.reused for s in scheduled.submitted + manual.submitted] == [False, True]
    for run in (scheduled, manual):
        run.wait_and_collect()
        run.load()
    made, reused = scheduled.report(), manual.report()

    assert (made.batches, made.reused_batches, reused.batches, reused.reused_batches) == (1, 0, 0, 1)
    assert made.cost_usd > 0 and reused.cost_usd == 0 and reused.input_tokens == 0
    assert reused.results == made.results  # its rows landed all the same
    assert "1 made and paid for by another run" in describe(reused)
    rows = recorded_runs(runs)
    assert sum(row["cost_usd"] for row in rows) == pytest.approx(billed_usd(runs.server.client()))


def test_a_dry_run_records_its_estimate_flagged_and_sends_nothing(runs):
    dry = runs("manual__dry")
    built = steps.build(
        dry.job, WINDOW, steps.RunOptions(dry_run=True), run_id=dry.run_id, connections=dry.connections
    )
    report = steps.report(dry.job, built.summary, [], run_id=dry.run_id, connections=dry.connections)

    assert created_batches(runs.server.client()) == 0
    (row,) = recorded_runs(runs)
    assert row["dry_run"] is True and row["batches"] == 0 and row["cost_usd"] == 0
    assert row["requests"] == report.requests == 28  # two sample rows have no text
    # The estimate takes the job's declared answer budget (max_completion_tokens), not a guess.
    budget = dry.job.request_params["max_completion_tokens"]
    assert row["estimated_cost_usd"] >= 28 * budget * 0.60 / 1e6 * 0.5
    assert "dry run: nothing sent; estimate $" in describe(report)


def test_a_model_with_no_known_price_runs_and_is_reported_unpriced(runs):
    run = runs("manual__unpriced", job=dataclasses.replace(runs("x").job, model="house-model-7"))
    run.run()
    report = run.report()

    assert report.results == 28 and report.batches == 1
    assert report.cost_usd is None and report.sync_cost_usd is None and report.estimated_cost_usd is None
    (row,) = recorded_runs(runs)
    assert row["cost_usd"] is None and row["model"] == "house-model-7"
    assert "cost unpriced at batch prices" in describe(report)


def test_a_run_whose_estimate_is_over_its_cost_ceiling_sends_nothing_and_says_why(runs):
    capped = dataclasses.replace(runs("x").job, max_cost_usd=0.0001)
    refused = runs("scheduled__capped", job=capped)

    with pytest.raises(
        CostCeilingExceeded, match=r"Nothing was submitted: the estimate of \$0\.\d{4}"
    ) as exc:
        refused.build()

    assert "max_cost_usd $0.00" in str(exc.value) and "28 requests" in str(exc.value)
    assert created_batches(runs.server.client()) == 0
    (row,) = recorded_runs(runs)  # the refused run is in the runs table, with its estimate
    assert row["over_ceiling"] == str(exc.value).removeprefix("Nothing was submitted: ")
    assert row["requests"] == 28 and row["batches"] == 0 and row["estimated_cost_usd"] > 0.0001
    # A run's own ceiling replaces the job's: this one may spend a dollar, and lands every row.
    allowed = runs("manual__allowed", job=capped)
    allowed.build(steps.RunOptions(max_cost_usd=1.0))
    assert allowed.summary.over_ceiling == "" and len(allowed.specs) == 1


def test_a_dry_run_over_the_ceiling_says_a_real_run_would_be_refused(runs):
    dry = runs("manual__dry")
    dry.build(steps.RunOptions(dry_run=True, max_cost_usd=0.0))
    report = steps.report(dry.job, dry.summary, [], run_id=dry.run_id, connections=dry.connections)

    assert created_batches(runs.server.client()) == 0
    assert "a real run would be refused: the estimate of $" in describe(report)


def test_an_unpriced_model_cannot_be_held_to_a_ceiling_and_is_refused(runs):
    unpriced = dataclasses.replace(runs("x").job, model="house-model-7", max_cost_usd=5.0)
    with pytest.raises(CostCeilingExceeded, match="house-model-7 cannot be held to max_cost_usd"):
        runs("manual__unpriced", job=unpriced).build()
    assert created_batches(runs.server.client()) == 0
