"""Whole runs of the sentiment DAG through ``airflow dags test`` against the local server.

Each test gets its own server, warehouse and metadata database (copied from one migrated
template), so runs cannot see each other. Marked slow: every run starts Airflow.
"""

from __future__ import annotations

import datetime as dt
import json
import sqlite3
import subprocess
import time

import pytest

from tests.batch_server import wait_for_batch
from tests.dags.stacks import DAY, Stack, assert_succeeded, landed

pytestmark = pytest.mark.slow


def assert_no_error_logged(result: subprocess.CompletedProcess) -> None:
    """A successful run logs no error: users read every error line as a failure."""
    output = (result.stdout or "") + (result.stderr or "")
    errors = [line for line in output.splitlines() if "[error" in line or " ERROR " in line]
    assert errors == []


def assert_run_figures_shown_where_airflow_shows_them(stack: Stack, landed_rows: int) -> None:
    """The run's note holds its report, and the target table's asset event its headline figures."""
    with sqlite3.connect(stack.airflow.home / "airflow.db") as db:
        (note,) = db.execute(
            "SELECT n.content FROM dag_run_note n JOIN dag_run r ON r.id = n.dag_run_id "
            "WHERE r.dag_id = 'review_sentiment'"
        ).fetchone()
        (extra,) = db.execute("SELECT extra FROM asset_event ORDER BY id DESC LIMIT 1").fetchone()
        report_keys = db.execute("SELECT DISTINCT key FROM xcom WHERE task_id = 'report'").fetchall()
    assert report_keys == [("return_value",)]  # one record, not also one XCom per field
    assert note.startswith("**Run report: review_sentiment 2026-11-24"), note
    assert f"= {landed_rows} answered + 0 failed" in note and "not accounted for" not in note
    figures = json.loads(extra)
    assert figures["landed"] == figures["results"] == landed_rows and figures["batches"] == 1
    assert 0 < figures["cost_usd"] < figures["sync_cost_usd"] and figures["saved_usd"] > 0


def test_clean_run_lands_every_row_and_a_rerun_pays_nothing(stack):
    first = stack.run()
    assert_succeeded(first)
    assert_no_error_logged(first)
    rows = landed(stack)
    assert {r[0] for r in rows} == stack.expected_rows()
    assert {r[1] for r in rows} <= {"positive", "neutral", "negative"}
    failures = dict(stack.query("SELECT reason, count(*) FROM llm_batch_failures GROUP BY 1"))
    assert set(failures) <= {"null_input", "empty_input"} and sum(failures.values()) > 0
    (ledger,) = stack.query("SELECT status, attempt, cost_usd, sync_cost_usd FROM llm_batch_ledger")
    assert ledger[0] == "completed" and ledger[1] == 1 and 0 < ledger[2] < ledger[3]
    (batch,) = stack.batches()
    assert batch.status == "completed"
    assert_run_figures_shown_where_airflow_shows_them(stack, landed_rows=len(rows))

    assert_succeeded(stack.run())

    assert landed(stack) == rows
    assert len(stack.batches()) == 1
    (report,) = stack.query(
        "SELECT requests, results, batches FROM llm_batch_runs ORDER BY reported_at DESC LIMIT 1"
    )
    assert report == (0, 0, 0)


def test_the_api_key_appears_in_no_log_xcom_file_or_ledger(stack):
    assert_succeeded(stack.run())
    key = stack.server.api_key.encode()
    leaks = [
        path
        for path in stack.airflow.root.rglob("*")
        if path.is_file() and path.name != "server-api-key" and key in path.read_bytes()
    ]
    assert leaks == []  # logs, XCom (in airflow.db), run files, warehouse and ledger


def test_per_line_server_errors_are_retried_in_a_follow_up_round(stack):
    stack.server.set_faults(line_failure_share=0.3, line_failure_status=500, limit_batches=1, seed=3)
    assert_succeeded(stack.run())
    assert {r[0] for r in landed(stack)} == stack.expected_rows()
    rounds = stack.query("SELECT attempt, requests, status FROM llm_batch_ledger ORDER BY attempt")
    assert [r[0] for r in rounds] == [1, 2] and rounds[1][1] < rounds[0][1] / 2


def test_an_expired_batch_lands_its_finished_part_and_the_rest_follows(stack):
    stack.server.set_faults(expire_after_share=0.5, limit_batches=1)
    assert_succeeded(stack.run())
    assert {r[0] for r in landed(stack)} == stack.expected_rows()
    rounds = stack.query("SELECT attempt, status FROM llm_batch_ledger ORDER BY attempt")
    assert rounds == [(1, "expired"), (2, "completed")]
    batches = {r[5] for r in landed(stack)}
    assert len(batches) == 2  # the expired batch's finished part was landed, not paid for again


def test_a_batch_refused_for_the_token_limit_goes_again_in_the_same_round(stack):
    stack.server.set_faults(token_limit_exceeded=True, limit_batches=1)
    assert_succeeded(stack.run())
    assert {r[0] for r in landed(stack)} == stack.expected_rows()
    # One submission, made a second time once the refused batch freed its place: no round used.
    assert stack.query("SELECT attempt, generation, status FROM llm_batch_ledger") == [(1, 2, "completed")]
    assert [b.status for b in stack.batches()] == ["completed", "failed"]


def test_a_run_needing_three_times_the_token_limit_goes_in_waves_within_one_round(stack, start_server):
    # The day before, unlimited, tells what a day's requests need (recorded at admission).
    assert_succeeded(stack.run(logical_date=DAY.isoformat()))
    ((need,),) = stack.query("SELECT sum(estimated_tokens) FROM llm_batch_ledger")
    limit = need // 3 + 1
    limited = start_server(
        "--validating-seconds", "0.5", "--enqueued-token-limit", str(limit), name="limited"
    )
    stack.airflow.openai_base_url, stack.airflow.openai_api_key = limited.base_url, limited.api_key
    connection = {
        **stack.airflow.batch_connection(),
        "extra": {"enqueued_token_limits": {"gpt-4o-mini": limit}},
    }
    stack.airflow.extra_env["AIRFLOW_CONN_OPENAI_DEFAULT"] = json.dumps(connection)

    result = stack.run()

    assert_succeeded(result)
    assert_no_error_logged(result)
    assert {r[0] for r in landed(stack)} == stack.expected_rows()
    batches = list(limited.client().batches.list(limit=100))
    assert len(batches) >= 3 and {b.status for b in batches} == {"completed"}  # none refused
    waves = stack.query(
        "SELECT attempt, generation, estimated_tokens FROM llm_batch_ledger WHERE interval_label = ?",
        DAY.isoformat(),
    )
    assert {(attempt, generation) for attempt, generation, _ in waves} == {(1, 1)}
    assert max(tokens for _, _, tokens in waves) <= limit


def test_a_batch_that_fails_validation_fails_the_run_and_loads_nothing(stack):
    stack.server.set_faults(fail_validation=True)
    result = stack.run()
    assert result.returncode != 0
    assert "failed; nothing of it is loaded" in (result.stdout + result.stderr)
    assert stack.query(
        "SELECT count(*) FROM information_schema.tables WHERE table_name = 'review_sentiment'"
    ) == [(0,)]
    assert len(stack.batches()) == 1  # collect fails without retries: the same bytes would fail again


def test_transient_errors_while_polling_do_not_fail_the_run(stack):
    stack.server.set_faults(api_error_share=0.25, api_error_status=500, retry_after_seconds=0.05, seed=9)
    assert_succeeded(stack.run())
    stack.server.set_faults()
    assert {r[0] for r in landed(stack)} == stack.expected_rows()
    assert len(stack.batches()) == 1


def test_dry_run_prices_the_requests_and_submits_nothing(stack):
    result = stack.run({"dry_run": True})
    assert_succeeded(result)
    assert stack.batches() == []
    assert "estimated_cost_usd" in result.stdout + result.stderr


def test_manual_run_with_a_date_range_row_limit_and_model(stack):
    conf = {
        "start_date": (DAY - dt.timedelta(days=1)).isoformat(),
        "end_date": DAY.isoformat(),
        "row_limit": 25,
    }
    assert_succeeded(stack.run({**conf, "model": "gpt-4.1-mini"}))
    rows = stack.query("SELECT review_id, model FROM review_sentiment")
    assert 0 < len(rows) <= 25 and {r[1] for r in rows} == {"gpt-4.1-mini"}
    # The nightly run for DAY answers the rest with the job's model; the manual answers stay.
    assert_succeeded(stack.run())
    models = dict(
        stack.query("SELECT model, count(*) FROM review_sentiment WHERE review_date = ? GROUP BY 1", DAY)
    )
    assert set(models) <= {"gpt-4.1-mini", "gpt-4o-mini"}


def test_a_batch_cancelled_mid_run_is_finished_by_the_next_round(stack, start_server, tmp_path):
    slow = start_server("--validating-seconds", "0.5", "--request-seconds", "0.05", name="slow-api")
    stack.airflow.openai_base_url = slow.base_url
    stack.airflow.openai_api_key = slow.api_key
    process = stack.start_run(tmp_path / "cancel-run.log")
    client = slow.client()
    deadline = time.monotonic() + 120
    while not (batches := list(client.batches.list(limit=10))) and time.monotonic() < deadline:
        time.sleep(0.2)
    (batch,) = batches
    while client.batches.retrieve(batch.id).request_counts.completed < 5:
        time.sleep(0.05)
    client.batches.cancel(batch.id)
    assert wait_for_batch(client, batch.id).status == "cancelled"
    slow.set_faults()  # nothing else to inject: speed the follow-up round up
    assert process.wait(timeout=300) == 0, (tmp_path / "cancel-run.log").read_text()[-4000:]
    assert {r[0] for r in landed(stack)} == stack.expected_rows()
    rounds = stack.query("SELECT attempt, status FROM llm_batch_ledger ORDER BY attempt")
    assert rounds[0] == (1, "cancelled") and rounds[-1][1] == "completed"


def test_failures_over_the_threshold_fail_the_run_after_landing_what_succeeded(stack):
    stack.server.set_faults(line_failure_share=0.3, line_failure_status=400, seed=2)
    result = stack.run()
    assert result.returncode != 0
    assert "over the threshold of 5.0%" in result.stdout + result.stderr
    failed = dict(
        stack.query("SELECT reason, count(*) FROM llm_batch_failures WHERE stage = 'request' GROUP BY 1")
    )
    assert sum(failed.values()) > 0
    answered = {r[0] for r in landed(stack)}
    assert answered and answered | {r[0] for r in stack.query("SELECT key FROM llm_batch_failures")} >= (
        stack.expected_rows()
    )
