"""The named statements of the pipeline and the ledger, on DuckDB and PostgreSQL.

Table names that need quoting (capitals, spaces, a schema) go through a whole run: build, submit
to the local server, collect, load, the already-answered lookup, the report and a rerun.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import re
from contextlib import nullcontext

import pyarrow as pa
import pytest

from include.sample_data.reviews import generate_reviews
from llm_batch.backends.openai_backend import OpenAIBatchBackend, batch_state
from llm_batch.build import build_run
from llm_batch.collect import collect_shard
from llm_batch.ledger import BatchLedger, LedgerEntry
from llm_batch.load import load_run
from llm_batch.report import report_run
from llm_batch.run_window import RunWindow
from llm_batch.settled import settled_requests
from llm_batch.storage import ObjectStoragePath, read_table, write_table
from llm_batch.submission import submit_shard
from llm_batch.warehouse import Warehouse, duckdb_warehouse, quote_table
from llm_batch.warehouse.queries import create_inflight, live_inflight, record_inflight, record_run
from llm_batch.warehouse.tables import (
    FAILURE_TABLE_KEY,
    FAILURE_TABLE_SCHEMA,
    RUNS_SCHEMA,
    RUNS_TABLE,
    results_schema,
)
from tests.batch_server import wait_for_batch
from tests.llm_batch.jobs import sentiment_job

DAY = dt.date(2026, 11, 22)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))


def current_schema(warehouse: Warehouse) -> str:
    return warehouse.read_arrow("SELECT current_schema() AS s").column("s")[0].as_py()


def count(warehouse: Warehouse, table: str) -> int:
    return warehouse.read_arrow(f"SELECT count(*) AS n FROM {quote_table(table)}").column("n")[0].as_py()


def failure_rows(job_name: str, *rows: tuple[str, str, str]) -> pa.Table:
    """Failures recorded by an earlier run: (key, request fingerprint, stage)."""
    return pa.Table.from_pylist(
        [
            {"key": key, "row_date": DAY, "request_fingerprint": fingerprint, "stage": stage,
             "reason": "server_error", "attempt": 1, "job": job_name, "recorded_at": dt.datetime(2026, 11, 23)}
            for key, fingerprint, stage in rows
        ],
        FAILURE_TABLE_SCHEMA,
    )  # fmt: skip


def run_one_shard(job, rows: pa.Table, warehouse: Warehouse, client):
    """Build, submit and collect the window's one shard: (built run, outcome, collect again)."""
    built = build_run(job, WINDOW, rows, warehouse=lambda: nullcontext(warehouse))
    (spec,) = built.shards
    backend = OpenAIBatchBackend(client=client)
    submitted = submit_shard(backend, BatchLedger(warehouse), job, spec)
    done = batch_state(wait_for_batch(client, submitted.batch_id)).to_summary()

    def collect():
        return collect_shard(backend, job, spec, done, submission_key=submitted.submission_key)

    return built, collect(), collect


@pytest.mark.parametrize("qualified", [False, True], ids=["bare", "schema-qualified"])
def test_table_names_that_need_quoting_work_through_a_whole_run(
    warehouse: Warehouse, client, tmp_path, qualified: bool
) -> None:
    prefix = f"{current_schema(warehouse)}_extra." if qualified else ""
    job = sentiment_job(
        storage_url=(tmp_path / "files").as_uri(),
        target_table=f"{prefix}Review Sentiment",
        failures_table=f"{prefix}Batch Failures",
    )
    rows = generate_reviews(DAY, 1, per_day=(25, 25))
    built, outcome, _ = run_one_shard(job, rows, warehouse, client)
    (spec,) = built.shards
    assert outcome.results == spec.requests > 0

    # An earlier run left failures: one for a key now answered, one that failed for good.
    answered_key = rows.column("review_id")[0].as_py()
    warehouse.ensure_table(job.failures_table, FAILURE_TABLE_SCHEMA, primary_key=FAILURE_TABLE_KEY)
    warehouse.replace_rows(
        job.failures_table,
        failure_rows(job.name, (answered_key, "old", "batch"), ("gone", "fp-gone", "request")),
        match_columns=FAILURE_TABLE_KEY,
    )

    args = (job, WINDOW, warehouse, [outcome], built.summary.rejections_path)
    loaded = load_run(*args, logical_date=DAY)
    assert loaded.results == count(warehouse, job.target_table) == spec.requests
    failures_after_first_load = count(warehouse, job.failures_table)
    keys = warehouse.read_arrow(f'SELECT "key" FROM {quote_table(job.failures_table)}').column("key")
    assert answered_key not in keys.to_pylist() and "gone" in keys.to_pylist()

    settled = settled_requests(job, WINDOW, warehouse)
    assert len(settled) == spec.requests + 1 and ("gone", "fp-gone") in settled
    assert build_run(job, WINDOW, rows, warehouse=lambda: nullcontext(warehouse)).summary.requests == 0

    assert load_run(*args, logical_date=DAY).replaced == spec.requests  # a rerun changes nothing
    assert count(warehouse, job.target_table) == spec.requests
    assert count(warehouse, job.failures_table) == failures_after_first_load

    report = report_run(job, built.summary, [outcome], run_id="run-1", warehouse=warehouse)
    stored = warehouse.read_arrow(f"SELECT * FROM {RUNS_TABLE}").to_pylist()
    assert [(r["job"], r["run_id"], r["results"]) for r in stored] == [(job.name, "run-1", report.results)]


def test_a_run_collected_before_rows_recorded_their_vendor_loads_after_the_upgrade(
    warehouse: Warehouse, client, tmp_path
) -> None:
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri())
    built, outcome, collect_again = run_one_shard(
        job, generate_reviews(DAY, 1, per_day=(25, 25)), warehouse, client
    )
    # The files and tables as the version before ``vendor`` wrote them.
    for path in (outcome.results_path, outcome.failures_path, built.summary.rejections_path):
        table = read_table(ObjectStoragePath(path))
        write_table(ObjectStoragePath(path), table.drop_columns(["vendor"]))
    renamed = {"key": job.key_column, "row_date": job.date_column}
    old_target = pa.schema(
        [f.with_name(renamed.get(f.name, f.name)) for f in results_schema(job) if f.name != "vendor"]
    ).append(pa.field("logical_date", pa.date32()))
    warehouse.ensure_table(job.target_table, old_target, primary_key=(job.key_column,))
    old_failures = FAILURE_TABLE_SCHEMA.remove(FAILURE_TABLE_SCHEMA.get_field_index("vendor"))
    warehouse.ensure_table(job.failures_table, old_failures, primary_key=FAILURE_TABLE_KEY)

    def vendors(table: str) -> list:
        return warehouse.read_arrow(f"SELECT DISTINCT vendor FROM {quote_table(table)}").column(0).to_pylist()

    args = (job, WINDOW, warehouse)
    assert load_run(*args, [outcome], built.summary.rejections_path, logical_date=DAY).results > 0
    assert vendors(job.target_table) == [None]  # who answered them was not recorded then
    assert (
        "vendor"
        in warehouse.read_arrow(f"SELECT * FROM {quote_table(job.failures_table)} LIMIT 0").column_names
    )
    load_run(*args, [collect_again()], built.summary.rejections_path, logical_date=DAY)
    assert vendors(job.target_table) == ["openai"]


def test_table_exists_resolves_names_as_queries_do(warehouse: Warehouse) -> None:
    extra = f"{current_schema(warehouse)}_extra"
    warehouse.ensure_table(f"{extra}.Mixed Case", pa.schema([("k", pa.int64())]))
    warehouse.execute('CREATE VIEW "a view" AS SELECT 1 AS k')
    assert warehouse.table_exists(f"{extra}.Mixed Case")
    assert warehouse.table_exists("a view")
    assert not warehouse.table_exists("Mixed Case")  # in another schema than the current one
    assert not warehouse.table_exists("no_such_schema.Mixed Case")
    # DuckDB resolves names without regard to case; PostgreSQL takes a quoted name as written.
    assert warehouse.table_exists(f"{extra}.mixed case") == (warehouse.dialect == "duckdb")


def entry(key: str, minute: int, **changes) -> LedgerEntry:
    fields = {f.name: None for f in dataclasses.fields(LedgerEntry)}
    fields.update(
        submission_key=key, job="review_sentiment", interval_label="2026-11-22", shard=0, attempt=1,
        generation=1, content_digest="d", job_fingerprint="f", model="gpt-4o-mini",
        endpoint="/v1/chat/completions", requests=3, status="intent",
        intent_at=dt.datetime(2026, 11, 22, 0, minute),
    )  # fmt: skip
    return LedgerEntry(**{**fields, **changes})


def test_the_ledger_statements_behave_alike(warehouse: Warehouse) -> None:
    ledger = BatchLedger(warehouse)
    ledger.record_intent(entry("b", minute=2))
    ledger.record_intent(entry("a", minute=5, interval_label="2026-11-23"))
    ledger.record_intent(entry("b", minute=9, status="lost"))  # a racing attempt: the first row stays
    ledger.update("b", batch_id="batch_1", status="completed", cost_usd=0.25)

    assert ledger.get("b") == entry("b", minute=2, batch_id="batch_1", status="completed", cost_usd=0.25)
    assert ledger.get("missing") is None
    assert [e.submission_key for e in ledger.entries("review_sentiment")] == ["b", "a"]  # by intent time
    assert [e.submission_key for e in ledger.entries("review_sentiment", "2026-11-23")] == ["a"]
    assert BatchLedger(warehouse).entries("other_job") == []  # opening it again keeps the rows
    with pytest.raises(ValueError, match="unknown ledger columns"):
        ledger.update("b", **{"status = 'x' --": "y"})


def test_a_run_row_must_have_the_columns_of_the_runs_table(warehouse: Warehouse) -> None:
    row = dict.fromkeys(RUNS_SCHEMA.names, None) | {"job": "j", "window": "w", "run_id": "r", "cost_usd": 0}
    record_run(warehouse, row)
    record_run(warehouse, row | {"cost_usd": 0.5})  # the same run reported again replaces its row
    assert warehouse.read_arrow(f"SELECT cost_usd FROM {RUNS_TABLE}").to_pylist() == [{"cost_usd": 0.5}]
    with pytest.raises(ValueError, match=r"unknown: \['surprise'\], missing: \['reported_at'\]"):
        record_run(warehouse, {k: v for k, v in row.items() if k != "reported_at"} | {"surprise": 1})


def in_flight(submission_key: str, keys: list[str]) -> pa.Table:
    """Claims of one submission, the request fingerprint being the key's."""
    return pa.table(
        {
            "job": ["review_sentiment"] * len(keys), "key": keys, "request_fingerprint": keys,
            "row_date": pa.array([DAY] * len(keys), pa.date32()), "submission_key": [submission_key] * len(keys),
            "run_id": ["r"] * len(keys), "claimed_at": pa.array([dt.datetime(2026, 11, 22)] * len(keys), pa.timestamp("us")),
        }
    )  # fmt: skip


def held(warehouse: Warehouse, keys: list[str]) -> list[str]:
    since = dt.datetime(2026, 11, 1)
    claims = live_inflight(
        warehouse,
        "review_sentiment",
        submitting_since=since,
        running_since=since,
        landing_since=since,
        keys=keys,
    )
    return sorted(claims.column("key").to_pylist())


def test_claims_in_flight_are_found_for_keys_of_any_text(warehouse: Warehouse) -> None:
    # DuckDB bounds the lookup by the keys' least and greatest: the bounds must hold every key as
    # the database orders text (capitals, accents, digits, combining marks, other scripts).
    texts = ["Zebra", "apple", "Äpfel", "zoo", "10", "9", "a b", "émile", "日本", "e\u0301", "", "~"]
    BatchLedger(warehouse).record_intent(entry("s", minute=1))
    create_inflight(warehouse)
    record_inflight(warehouse, in_flight("s", texts))

    for asked in (texts, texts[::3], ["Zebra", "zoo"], ["10"], ["Äpfel", "apple", "e\u0301"], ["", "~", "x"]):
        assert held(warehouse, asked) == sorted(set(asked) & set(texts)), asked


def test_a_claim_reads_the_claims_of_its_own_key_range_on_duckdb(tmp_path, monkeypatch) -> None:
    """A shard's claim checks 50k keys against every claim in flight (5M in a 5M-row night): DuckDB
    hashes the keys, and skips the row groups outside their range."""
    per_shard = 130_000  # DuckDB's row groups hold 122,880 rows
    scans: list[str] = []
    with duckdb_warehouse(tmp_path / "warehouse.duckdb") as warehouse:
        BatchLedger(warehouse).record_intent(entry("s", minute=1))
        create_inflight(warehouse)
        for shard in range(4):
            keys = [f"rv-{n:09d}" for n in range(shard * per_shard, (shard + 1) * per_shard)]
            record_inflight(warehouse, in_flight("s", keys))

        read_arrow = warehouse.read_arrow

        def explaining_read_arrow(sql, params=None):
            if "llm_batch_inflight" in sql:
                plan = read_arrow("EXPLAIN ANALYZE " + sql, params).column("explain_value")[0].as_py()
                scans.extend(
                    re.findall(r"Table: \S+llm_batch_inflight.*?Row Groups Scanned: (\d+ / \d+)", plan, re.S)
                )
            return read_arrow(sql, params)

        monkeypatch.setattr(warehouse, "read_arrow", explaining_read_arrow)
        asked = [f"rv-{n:09d}" for n in range(2 * per_shard + 10, 2 * per_shard + 50_010)]
        assert held(warehouse, asked) == asked

    ((scanned, total),) = [tuple(map(int, scan.split(" / "))) for scan in scans]
    assert total >= 4
    assert scanned <= 2  # the rows of its range span one or two row groups
