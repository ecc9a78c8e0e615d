"""Whole runs of one declared job on each vendor, through the library's steps, against the local
server: the same guarantees whichever connection carries the job."""

from __future__ import annotations

import datetime as dt

import pytest

from include.sample_data.reviews import generate_reviews
from include.window_run import WindowRun
from llm_batch.backends import RetryPolicy
from llm_batch.run_window import RunWindow
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import WarehouseAt, store_source
from tests.llm_batch.vendors import MODELS, backend_on, batch_ids_on

DAY = dt.date(2026, 3, 31)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
SOURCE = generate_reviews(DAY, 1, per_day=(30, 30))
ANSWERABLE = 28  # two sample rows have no text


@pytest.fixture
def runs(start_server, tmp_path):
    """``runs(vendor, run_id)``: a run of the sentiment job on that vendor's backend."""
    warehouse = WarehouseAt("duckdb", str(tmp_path / "warehouse.duckdb"))
    with warehouse() as opened:
        store_source(opened, SOURCE)
    state = {"server": None, "flags": ()}

    def server():
        if state["server"] is None:
            state["server"] = start_server(*state["flags"])
        return state["server"]

    def run(vendor: str, run_id: str, model: str | None = None) -> WindowRun:
        job = sentiment_job(storage_url=(tmp_path / "files").as_uri(), model=model or MODELS[vendor])
        return WindowRun(job, WINDOW, warehouse, backend_on(vendor, server()), run_id)

    run.server, run.warehouse, run.state = server, warehouse, state
    return run


def landed(runs, sql: str = "SELECT * FROM review_sentiment ORDER BY review_id") -> list[dict]:
    with runs.warehouse() as warehouse:
        return warehouse.read_arrow(sql).to_pylist()


def provenance(runs) -> set[tuple[str, str]]:
    """The (vendor, model) pairs the landed rows record."""
    return {(r["vendor"], r["model"]) for r in landed(runs)}


@pytest.mark.parametrize("vendor", ["azure", "anthropic"])
def test_a_clean_run_lands_every_row_and_a_rerun_sends_nothing(runs, vendor):
    first = runs(vendor, "scheduled__1")
    loaded = first.run()

    assert (loaded.results, loaded.failures) == (ANSWERABLE, 2)
    (batch_id,) = batch_ids_on(vendor, runs.server())
    rows = landed(runs)
    assert len(rows) == ANSWERABLE and {r["batch_id"] for r in rows} == {batch_id}
    assert provenance(runs) == {(vendor, MODELS[vendor])}
    blank = landed(runs, "SELECT stage, vendor FROM llm_batch_failures")  # rejected before sending
    assert blank == [{"stage": "build", "vendor": None}] * 2
    assert all(r["label"] in ("positive", "neutral", "negative") and 0 <= r["confidence"] <= 1 for r in rows)
    assert all(r["input_tokens"] > 0 and r["output_tokens"] > 0 for r in rows)
    report = first.report()
    assert (
        report.results == ANSWERABLE
        and report.cost_usd > 0
        and report.sync_cost_usd == pytest.approx(2 * report.cost_usd, rel=0.01)
    )

    rerun = runs(vendor, "manual__again")
    rerun.build()
    assert rerun.specs == [] and rerun.summary.already_settled == ANSWERABLE
    assert batch_ids_on(vendor, runs.server()) == [batch_id]


def test_rows_answered_by_one_vendors_model_are_asked_again_of_another(runs):
    runs("anthropic", "scheduled__claude").run()
    assert provenance(runs) == {("anthropic", MODELS["anthropic"])}
    switched = runs("openai", "manual__gpt")
    switched.build()

    assert switched.summary.requests == ANSWERABLE and switched.summary.already_settled == 0
    switched.submit().wait_and_collect()
    switched.load()
    assert provenance(runs) == {("openai", MODELS["openai"])}
    same = runs("openai", "manual__gpt_again")
    same.build()
    assert same.specs == [] and same.summary.already_settled == ANSWERABLE  # same vendor and model
    again = runs("anthropic", "manual__claude_again")
    again.build()
    assert again.summary.requests == ANSWERABLE  # the stored answers are now gpt's


@pytest.mark.parametrize("vendor", ["azure", "anthropic"])
def test_a_batch_expiring_half_way_lands_its_half_and_sends_the_rest_next_round(runs, vendor):
    run = runs(vendor, "scheduled__expiring").build()
    runs.server().set_faults(expire_after_share=0.5, limit_batches=1)
    run.submit().wait_and_collect()

    (first,) = run.collected
    assert first.status == "expired"
    assert first.results + first.retries == ANSWERABLE and 0 < first.results < ANSWERABLE
    assert first.retry_reasons == {"batch_expired": first.retries}
    while run.specs:
        run.submit().wait_and_collect()
    loaded = run.load()
    assert loaded.results == ANSWERABLE
    assert len(batch_ids_on(vendor, runs.server())) == 2


@pytest.mark.parametrize(("vendor", "status"), [("azure", 500), ("anthropic", 529), ("anthropic", 429)])
def test_a_run_completes_through_transient_errors_on_three_api_calls_in_ten(runs, vendor, status):
    runs.state["flags"] = (
        "--fault",
        "api_error_share=0.3",
        "--fault",
        f"api_error_status={status}",
        "--fault",
        "retry_after_seconds=0.01",
        "--fault",
        "seed=7",
    )
    run = runs(vendor, "scheduled__flaky")
    loaded = run.run()
    runs.server().set_faults()  # the checks below read the server without faults

    assert loaded.results == ANSWERABLE
    assert len({r["review_id"] for r in landed(runs)}) == ANSWERABLE
    assert len(batch_ids_on(vendor, runs.server())) == 1  # not one batch per retried create


@pytest.mark.parametrize("vendor", ["azure", "anthropic"])
def test_a_batch_cancelled_mid_run_still_lands_every_row(runs, vendor):
    runs.state["flags"] = ("--request-seconds", "0.05")
    run = runs(vendor, "scheduled__cancelled").build().submit()
    (submitted,) = run.submitted
    run.backend.cancel(submitted.batch_id, retry=RetryPolicy(tries=3, base=0.1, cap=1.0))
    run.wait_and_collect()

    (first,) = run.collected
    assert first.status == "cancelled" and first.retries > 0
    assert set(first.retry_reasons) <= {"batch_cancelled", "not_executed"}
    while run.specs:
        run.submit().wait_and_collect()
    assert run.load().results == ANSWERABLE
