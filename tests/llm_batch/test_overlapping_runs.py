"""Runs over the same days pay each request once: in-flight rows, answers of other windows, edited keys.

Each run goes build -> submit -> wait -> collect -> load through the library's task functions
(``include.window_run``) against the real local server, on DuckDB and PostgreSQL; what was paid
is read back from the server's batches.
"""

from __future__ import annotations

import dataclasses
import datetime as dt

import pyarrow as pa
import pytest

from include.sample_data.reviews import generate_reviews
from include.server_bill import paid_requests
from include.window_run import WindowRun
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.build import build_run
from llm_batch.collect import BatchFailedError
from llm_batch.job import ShardLimits
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import queries
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import store_source

FIRST = dt.date(2026, 3, 30)
NIGHT = dt.date(2026, 3, 31)
RANGE = RunWindow(FIRST, FIRST + dt.timedelta(days=3))
SOURCE = generate_reviews(FIRST, 3, per_day=(20, 20))


@pytest.fixture
def runs(start_server, tmp_path, open_warehouse):
    """Starts runs of the sentiment job over SOURCE; the server and warehouse are shared by all."""
    server = start_server()
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri())
    with open_warehouse() as warehouse:
        store_source(warehouse, SOURCE)

    def run(window: RunWindow, run_id: str) -> WindowRun:
        return WindowRun(job, window, open_warehouse, OpenAIBatchBackend(client=server.client()), run_id)

    run.server = server
    run.open_warehouse = open_warehouse
    run.job = job
    return run


def answerable(job, window: RunWindow = RANGE) -> int:
    """How many requests the window's rows make when nothing is answered yet."""
    return build_run(job, window, SOURCE).summary.requests


def finish(*runs: WindowRun) -> None:
    for run in runs:
        while run.submitted:
            run.wait_and_collect().submit()
        run.load()


def landed(runs) -> list[tuple[str, dt.date]]:
    with runs.open_warehouse() as warehouse:
        rows = warehouse.read_arrow("SELECT review_id, review_date FROM review_sentiment").to_pylist()
    return [(r["review_id"], r["review_date"]) for r in rows]


def assert_paid_once_and_landed_once(runs) -> None:
    paid = paid_requests(runs.server.client())
    assert len(paid) == len(set(paid)) == answerable(runs.job)
    keys = [key for key, _ in landed(runs)]
    assert len(keys) == len(set(keys)) == answerable(runs.job)


def test_a_range_run_leaves_the_rows_of_a_nightly_run_in_flight_to_it(runs):
    nightly = runs(RunWindow(NIGHT, NIGHT + dt.timedelta(days=1)), "scheduled__2026-04-01").build().submit()
    manual = runs(RANGE, "manual__2026-04-01T00:00:04").build().submit()

    assert manual.summary.requests == answerable(runs.job) - nightly.summary.requests
    finish(nightly, manual)
    assert_paid_once_and_landed_once(runs)


@pytest.mark.parametrize("first", ["nightly", "manual"])
def test_runs_that_built_together_split_the_rows_at_submit(runs, first):
    """Both built before either sent: the one that submits second sends only what is left."""
    built = {
        "nightly": runs(RunWindow(NIGHT, NIGHT + dt.timedelta(days=1)), "scheduled__2026-04-01").build(),
        "manual": runs(RANGE, "manual__2026-04-01T00:00:04").build(),
    }
    assert sum(run.summary.requests for run in built.values()) > answerable(runs.job)
    second = "manual" if first == "nightly" else "nightly"
    built[first].submit()
    built[second].submit()

    finish(*built.values())
    assert_paid_once_and_landed_once(runs)


def test_a_run_built_before_another_landed_the_same_rows_does_not_pay_for_them(runs):
    nightly = runs(RunWindow(NIGHT, NIGHT + dt.timedelta(days=1)), "scheduled__2026-04-01").build()
    manual = runs(RANGE, "manual__2026-04-01T00:00:04").build()
    finish(nightly.submit())  # landed, and its claims released, before the range run submits

    finish(manual.submit())
    assert_paid_once_and_landed_once(runs)


def test_a_shard_reads_the_claims_in_flight_once_to_claim(runs, monkeypatch):
    """Once for both checks (held by another run, superseded by a newer version): with millions
    of rows in flight, each read scans the in-flight table."""
    job = dataclasses.replace(runs.job, shard_limits=ShardLimits(max_requests=15))
    server = runs.server
    manual = WindowRun(job, RANGE, runs.open_warehouse, OpenAIBatchBackend(client=server.client()), "manual")
    manual.build()
    reads = []
    read = queries.live_inflight
    monkeypatch.setattr(
        queries, "live_inflight", lambda *args, **kwargs: reads.append(1) or read(*args, **kwargs)
    )
    shards = len(manual.specs)
    manual.submit()

    assert shards > 1
    assert len(reads) == shards


def test_rows_of_a_failed_batch_are_not_held_by_it(runs):
    runs.server.set_faults(fail_validation=True, limit_batches=1)
    nightly = runs(RunWindow(NIGHT, NIGHT + dt.timedelta(days=1)), "scheduled__2026-04-01").build().submit()
    with pytest.raises(BatchFailedError):
        nightly.wait_and_collect()

    manual = runs(RANGE, "manual__2026-04-01T00:00:04").build()
    assert manual.summary.requests == answerable(runs.job)
    finish(manual.submit())
    keys = [key for key, _ in landed(runs)]
    assert len(keys) == len(set(keys)) == answerable(runs.job)


# The same key on two days -------------------------------------------------------------------------

DAY_1, DAY_2 = dt.date(2026, 8, 1), dt.date(2026, 8, 2)


def edited_source() -> pa.Table:
    """``dup-1`` written on DAY_1 and edited on DAY_2; one other review each day."""
    template = SOURCE.slice(0, 1).to_pylist()[0]

    def review(key: str, day: dt.date, text: str) -> dict:
        created = dt.datetime.combine(day, dt.time(12))
        return {**template, "review_id": key, "review_date": day, "created_at": created, "review_text": text}

    return pa.Table.from_pylist(
        [
            review("dup-1", DAY_1, "Broke after a day, very disappointed."),
            review("one-1", DAY_1, "Works as described."),
            review("dup-1", DAY_2, "Seller replaced it and the new one works great."),
            review("two-1", DAY_2, "Arrived late but fine."),
        ],
        schema=SOURCE.schema,
    )


def test_an_edited_key_is_paid_once_per_version_and_the_latest_version_stays(runs):
    with runs.open_warehouse() as warehouse:
        warehouse.execute("DELETE FROM reviews")
        store_source(warehouse, edited_source())

    for attempt, day in enumerate((DAY_1, DAY_2, DAY_1, DAY_2)):
        runs(RunWindow(day, day + dt.timedelta(days=1)), f"scheduled__{day}__{attempt}").run()
    both_days = runs(RunWindow(DAY_1, DAY_2 + dt.timedelta(days=1)), "manual__both-days").build()

    paid = paid_requests(runs.server.client())
    assert len(paid) == len(set(paid)) == 4  # dup-1 twice (two texts), one-1, two-1
    assert sorted(landed(runs)) == [("dup-1", DAY_2), ("one-1", DAY_1), ("two-1", DAY_2)]
    assert both_days.summary.requests == 0


@pytest.mark.parametrize("newer", ["landed", "in flight"])
def test_an_older_version_is_not_paid_for_once_a_newer_one_was_sent_after_the_build(runs, newer):
    with runs.open_warehouse() as warehouse:
        warehouse.execute("DELETE FROM reviews")
        store_source(warehouse, edited_source())
    older = runs(RunWindow(DAY_1, DAY_1 + dt.timedelta(days=1)), "scheduled__2026-08-02").build()
    newer_run = runs(RunWindow(DAY_2, DAY_2 + dt.timedelta(days=1)), "scheduled__2026-08-03").build().submit()
    if newer == "landed":
        finish(newer_run)

    finish(older.submit())
    if newer == "in flight":
        finish(newer_run)
    paid = paid_requests(runs.server.client())
    assert sorted(key for key, _ in paid) == ["dup-1", "one-1", "two-1"]  # dup-1 in its newer text only
    assert sorted(landed(runs)) == [("dup-1", DAY_2), ("one-1", DAY_1), ("two-1", DAY_2)]
