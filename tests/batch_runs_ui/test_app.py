"""The Batch runs page's JSON against real warehouses written through the library's own write paths."""

from __future__ import annotations

import dataclasses
import datetime as dt
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import duckdb
import psycopg
import pytest
from fastapi.testclient import TestClient
from psycopg.conninfo import make_conninfo

from batch_runs_ui.app import create_app
from batch_runs_ui.live import provider_progress
from batch_runs_ui.reading import PATIENCE_SECONDS
from include.sample_data.run_history import PastRun, WrittenRun, write_in_flight, write_run
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.warehouse import Warehouse, duckdb_warehouse, postgres_warehouse
from tests.conftest import chat_line, upload
from tests.llm_batch.jobs import embeddings_job, sentiment_job
from tests.postgres import TEST_DSN

NOW = dt.datetime(2026, 5, 20, 12, 0)
SENTIMENT, EMBEDDINGS = sentiment_job(), embeddings_job()


class Warehouses:
    """One warehouse: a writer for the seeding, and read-only openers for the page."""

    def __init__(self, kind: str, where: str) -> None:
        self.kind, self.where = kind, where

    def writer(self) -> Warehouse:
        return duckdb_warehouse(self.where) if self.kind == "duckdb" else postgres_warehouse(self.where)

    def reader(self) -> Warehouse:
        if self.kind == "duckdb":
            return duckdb_warehouse(self.where, read_only=True, lock_wait_seconds=PATIENCE_SECONDS)
        return postgres_warehouse(self.where)


@pytest.fixture(params=["duckdb", "postgres"])
def warehouses(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Warehouses]:
    if request.param == "duckdb":
        yield Warehouses("duckdb", str(tmp_path / "warehouse.duckdb"))
        return
    schema = f"page_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(TEST_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield Warehouses("postgres", make_conninfo(TEST_DSN, options=f"-c search_path={schema}"))
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def past_run(days_ago: int, **changes) -> PastRun:
    day = (NOW - dt.timedelta(days=days_ago)).date()
    fields = {
        "day": day,
        "run_id": f"scheduled__{day.isoformat()}T00:00:00+00:00",
        "reported_at": dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 30)),
        "shard_results": (30, 20),
        "failure_reasons": {"server_error": 3, "invalid_json": 2},
        "rejected": {"blank_text": 1},
    }
    return PastRun(**{**fields, **changes})


def seed(warehouses: Warehouses, files: Path, runs: list[tuple]) -> list[WrittenRun]:
    with warehouses.writer() as warehouse:
        return [write_run(warehouse, files, job, run) for job, run in runs]


def page(warehouses: Warehouses, **options) -> TestClient:
    return TestClient(create_app(warehouses.reader, clock=lambda: NOW, **options))


def test_overview_sums_each_jobs_runs_per_day_and_prices_them(warehouses, tmp_path):
    written = seed(
        warehouses,
        tmp_path / "files",
        [
            (SENTIMENT, past_run(3)),
            (SENTIMENT, past_run(2, shard_results=(40,), failure_reasons={"server_error": 1})),
            (EMBEDDINGS, past_run(2, failure_reasons={}, rejected={})),
            (SENTIMENT, past_run(200)),  # outside the 90 days asked for
        ],
    )
    data = page(warehouses).get("/api/overview", params={"days": 90}).json()

    assert data["run_count"] == 3
    by_job = {job["job"]: job for job in data["jobs"]}
    assert sorted(by_job) == ["review_embeddings", "review_sentiment"]
    sentiment_reports = [w.report for w in written[:2]]
    totals = by_job["review_sentiment"]["totals"]
    assert totals["runs"] == 2
    for figure in ("rows_in", "results", "failures", "rejected", "input_tokens", "output_tokens"):
        assert totals[figure] == sum(getattr(r, figure) for r in sentiment_reports)
    assert totals["cost_usd"] == pytest.approx(sum(r.cost_usd for r in sentiment_reports))
    assert totals["sync_cost_usd"] == pytest.approx(sum(r.sync_cost_usd for r in sentiment_reports))
    assert totals["saved_usd"] == pytest.approx(totals["sync_cost_usd"] - totals["cost_usd"])
    assert totals["saved_usd"] > 0
    assert totals["reasons"] == dict(sum((Counter(r.failure_reasons) for r in sentiment_reports), Counter()))
    days = by_job["review_sentiment"]["days"]
    assert [d["day"] for d in days] == sorted(d["day"] for d in days) and len(days) == 2
    assert [d["results"] for d in days] == [r.results for r in sentiment_reports]
    assert data["runs"][0]["run_id"] in {w.report.run_id for w in written[1:3]}  # newest first


def test_a_run_of_an_unpriced_model_is_counted_apart_never_as_zero(warehouses, tmp_path):
    house_model = dataclasses.replace(SENTIMENT, model="house-model-7")
    written = seed(warehouses, tmp_path / "files", [(SENTIMENT, past_run(3)), (house_model, past_run(2))])
    data = page(warehouses).get("/api/overview", params={"days": 90}).json()

    (job,) = data["jobs"]
    priced = written[0].report
    assert job["totals"]["runs"] == 2 and job["totals"]["unpriced_runs"] == 1
    assert job["totals"]["cost_usd"] == pytest.approx(priced.cost_usd)
    unpriced = next(run for run in data["runs"] if run["model"] == "house-model-7")
    assert unpriced["cost_usd"] is None and unpriced["saved_usd"] is None


def test_the_runs_list_is_cut_to_the_limit_but_the_count_is_whole(warehouses, tmp_path):
    seed(warehouses, tmp_path / "files", [(SENTIMENT, past_run(n)) for n in range(1, 5)])
    data = page(warehouses).get("/api/overview", params={"limit": 2}).json()
    assert data["run_count"] == 4 and len(data["runs"]) == 2
    assert data["jobs"][0]["totals"]["runs"] == 4


def test_one_run_shows_its_batches_sample_rows_and_failures_by_reason(warehouses, tmp_path):
    run = past_run(1, failure_reasons={"server_error": 5, "invalid_json": 2}, rejected={"blank_text": 2})
    other = past_run(1, run_id="manual__other", shard_results=(10,), failure_reasons={"server_error": 4})
    written, _ = seed(warehouses, tmp_path / "files", [(SENTIMENT, run), (SENTIMENT, other)])

    data = (
        page(warehouses)
        .get("/api/run", params={"job": SENTIMENT.name, "run_id": run.run_id, "sample": 5})
        .json()
    )

    assert (data["shards"], data["batch_count"], data["rounds"]) == (2, 2, 1)
    assert {b["batch_id"] for b in data["batches"]} == set(written.batch_ids)
    assert sum(b["input_tokens"] for b in data["batches"]) == written.report.input_tokens
    assert data["reports"][0]["results"] == written.report.results
    assert len(data["results_sample"]) == 5
    assert {row["batch_id"] for row in data["results_sample"]} <= set(written.batch_ids)
    assert {row["table"] for row in data["results_sample"]} == {SENTIMENT.target_table}
    groups = {(g["stage"], g["reason"]): g for g in data["failures"]}
    # The other run's batch failed for server_error too; only this run's rows count.
    assert {k: g["count"] for k, g in groups.items()} == {
        ("request", "server_error"): 5,
        ("request", "invalid_json"): 2,
        ("build", "blank_text"): 2,
    }
    assert len(groups[("request", "server_error")]["examples"]) == 3
    assert all(
        e["detail"].startswith("server_error") for e in groups[("request", "server_error")]["examples"]
    )
    assert (
        data["dag_run_path"]
        == f"dags/review_sentiment/runs/{run.run_id.replace(':', '%3A').replace('+', '%2B')}"
    )


def test_embedding_vectors_are_summarised_in_the_sample(warehouses, tmp_path):
    run = past_run(1, failure_reasons={}, rejected={})
    seed(warehouses, tmp_path / "files", [(EMBEDDINGS, run)])
    data = page(warehouses).get("/api/run", params={"job": EMBEDDINGS.name, "run_id": run.run_id}).json()
    vectors = [v for row in data["results_sample"] for v in row.values() if str(v).endswith("values]")]
    assert vectors and len(vectors) == len(data["results_sample"])


def test_an_unknown_run_is_not_found(warehouses, tmp_path):
    seed(warehouses, tmp_path / "files", [(SENTIMENT, past_run(1))])
    response = page(warehouses).get("/api/run", params={"job": SENTIMENT.name, "run_id": "nope"})
    assert response.status_code == 404 and "nope" in response.json()["detail"]


def test_in_flight_lists_unfinished_batches_with_their_age_against_the_window(warehouses, tmp_path):
    seed(warehouses, tmp_path / "files", [(SENTIMENT, past_run(1))])  # finished: not in flight
    with warehouses.writer() as warehouse:
        young = write_in_flight(
            warehouse, SENTIMENT, run_id="manual__a", day=NOW.date(), shard=0, requests=70,
            submitted_at=NOW - dt.timedelta(hours=6),
        )  # fmt: skip
        write_in_flight(
            warehouse, SENTIMENT, run_id="manual__dead", day=NOW.date(), shard=1, requests=5,
            submitted_at=NOW - dt.timedelta(hours=40),
        )  # fmt: skip  # abandoned long ago

    batches = page(warehouses).get("/api/inflight").json()["batches"]

    assert [b["batch_id"] for b in batches] == [young]
    (batch,) = batches
    assert batch["age_seconds"] == 6 * 3600 and batch["window_share"] == 0.25
    assert (batch["completed"], batch["failed"], batch["total"], batch["live"]) == (0, 0, 70, False)
    assert batch["task_path"] == "dags/review_sentiment/runs/manual__a/tasks/round_1.wait/mapped"


def test_in_flight_progress_is_asked_of_the_provider(tmp_path, client):
    """A real batch on the local server: the page shows its counts, which the ledger learns only at the end."""
    file = upload(client, [chat_line(f"r{i}", "great product") for i in range(4)])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    deadline = time.monotonic() + 30
    while (state := client.batches.retrieve(batch.id)).status != "completed":
        assert time.monotonic() < deadline, state.status
        time.sleep(0.1)
    warehouses = Warehouses("duckdb", str(tmp_path / "warehouse.duckdb"))
    with warehouses.writer() as warehouse:
        write_in_flight(
            warehouse, SENTIMENT, run_id="manual__live", day=NOW.date(), shard=0, requests=4,
            submitted_at=NOW - dt.timedelta(minutes=5), batch_id=batch.id,
        )  # fmt: skip
    progress = provider_progress(lambda: OpenAIBatchBackend(client=client.with_options()))

    (shown,) = page(warehouses, batch_progress=progress).get("/api/inflight").json()["batches"]

    assert shown["live"] is True
    assert (shown["status"], shown["completed"], shown["failed"], shown["total"]) == ("completed", 4, 0, 4)


def test_a_warehouse_not_yet_written_shows_empty_lists(tmp_path):
    warehouses = Warehouses("duckdb", str(tmp_path / "never-written.duckdb"))
    client = page(warehouses)
    assert client.get("/api/overview").json()["jobs"] == []
    assert client.get("/api/inflight").json()["batches"] == []
    assert not (tmp_path / "never-written.duckdb").exists()  # a reader creates nothing


HOLD_FILE = """
import sys, time, duckdb
con = duckdb.connect(sys.argv[1])
print("held", flush=True)
time.sleep(float(sys.argv[2]))
con.close()
"""


def test_while_a_writer_holds_the_duckdb_file_the_page_says_busy_at_once(tmp_path):
    warehouses = Warehouses("duckdb", str(tmp_path / "warehouse.duckdb"))
    seed(warehouses, tmp_path / "files", [(SENTIMENT, past_run(1))])
    writer = subprocess.Popen(
        [sys.executable, "-c", HOLD_FILE, warehouses.where, "5"], stdout=subprocess.PIPE, text=True
    )
    try:
        assert writer.stdout.readline().strip() == "held"
        started = time.monotonic()
        response = page(warehouses).get("/api/overview")
        waited = time.monotonic() - started
    finally:
        writer.kill()
        writer.wait()
    assert response.status_code == 503 and response.headers["retry-after"] == "2"
    assert "writing" in response.json()["detail"]
    assert waited < 2.0, f"the reader waited {waited:.1f} s on the writer"


def test_the_page_lets_go_of_the_duckdb_file_after_each_read(tmp_path):
    """Right after a request another process can open the file for writing: no connection is kept."""
    warehouses = Warehouses("duckdb", str(tmp_path / "warehouse.duckdb"))
    seed(warehouses, tmp_path / "files", [(SENTIMENT, past_run(1))])
    client = page(warehouses)
    assert client.get("/api/overview").status_code == 200
    assert (
        client.get("/api/run", params={"job": SENTIMENT.name, "run_id": past_run(1).run_id}).status_code
        == 200
    )
    writer = subprocess.run(
        [sys.executable, "-c", HOLD_FILE, warehouses.where, "0"], capture_output=True, text=True, timeout=60
    )
    assert writer.returncode == 0, writer.stderr[-2000:]
    with duckdb.connect(warehouses.where, read_only=True) as con:
        assert con.execute("SELECT count(*) FROM llm_batch_runs").fetchone() == (1,)


def test_the_page_and_its_charting_library_are_served(tmp_path):
    client = page(Warehouses("duckdb", str(tmp_path / "none.duckdb")))
    html = client.get("/").text
    assert 'src="static/vendor/uPlot.iife.min.js"' in html and 'src="static/page.js"' in html
    vendored = client.get("/static/vendor/uPlot.iife.min.js")
    assert vendored.status_code == 200 and vendored.text.startswith("/*! uPlot v1.6.32 | MIT License")
    assert client.get("/static/page.js").status_code == 200
