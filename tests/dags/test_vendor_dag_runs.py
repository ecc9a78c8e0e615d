"""Whole runs of the sentiment DAG under ``airflow dags test`` on Anthropic's Message Batches and
Azure OpenAI: the DAG is the same, only its connection names the vendor.

Each `airflow dags test` costs half a minute or more, so a test shows what one run can show
together (transient API errors while a batch expires half-way; a try dying right after create
and its retry re-attaching, then the rerun that sends nothing). Marked slow.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from include.local_airflow import PROJECT
from llm_batch.backends import RetryPolicy
from tests.dags.stacks import Stack, assert_succeeded, landed
from tests.llm_batch.vendors import backend_on

pytestmark = pytest.mark.slow

VENDORS = ["anthropic", "azure"]
CRASH_HOOK = PROJECT / "tests" / "e2e" / "chaos"  # its sitecustomize kills the process after a create


def conf(stack: Stack) -> dict | None:
    """The run's model: the job asks for an OpenAI model, which Anthropic does not serve."""
    return {"model": stack.model} if stack.vendor == "anthropic" else None


def assert_every_row_landed_with_its_vendor(stack: Stack) -> None:
    rows = stack.query("SELECT review_id, vendor, model FROM review_sentiment")
    assert {r[0] for r in rows} == stack.expected_rows()
    assert {(r[1], r[2]) for r in rows} == {(stack.vendor, stack.model)}


def rounds(stack: Stack) -> list[tuple[int, str]]:
    return stack.query("SELECT attempt, status FROM llm_batch_ledger ORDER BY attempt")


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_try_dying_after_create_re_attaches_and_a_rerun_sends_nothing(make_stack, tmp_path, vendor):
    stack = make_stack(vendor)
    marker = tmp_path / "crash-after-create.marker"  # absent: armed; written by the crash
    stack.airflow.extra_env.update(
        {
            "LLM_BATCH_CHAOS_CRASH_AFTER_CREATE": str(marker),
            "LLM_BATCH_CHAOS_CRASH_AS": "exception",
            "PYTHONPATH": stack.airflow.env()["PYTHONPATH"] + f":{CRASH_HOOK}",
        }
    )

    result = stack.run(conf(stack))

    assert_succeeded(result)
    _, crashed_batch = marker.read_text().split()
    assert "created before a crash; re-attaching" in result.stdout + result.stderr
    assert stack.batch_ids() == [crashed_batch]  # exactly one batch, paid once
    assert submit_tries(stack) == 2  # the try that died, and the one that re-attached
    assert_every_row_landed_with_its_vendor(stack)
    assert {r[5] for r in landed(stack)} == {crashed_batch}
    assert rounds(stack) == [(1, "completed")]

    assert_succeeded(stack.run(conf(stack)))
    assert stack.batch_ids() == [crashed_batch]
    (report,) = stack.query("SELECT requests, batches FROM llm_batch_runs ORDER BY reported_at DESC LIMIT 1")
    assert report == (0, 0)


def submit_tries(stack: Stack) -> int:
    with sqlite3.connect(stack.airflow.home / "airflow.db") as db:
        (tries,) = db.execute(
            "SELECT try_number FROM task_instance WHERE task_id = 'round_1.submit'"
        ).fetchone()
    return tries


@pytest.mark.parametrize(("vendor", "status"), [("anthropic", 529), ("azure", 500)])
def test_transient_errors_on_three_api_calls_in_ten_while_a_batch_expires_half_way(
    make_stack, vendor, status
):
    stack = make_stack(vendor)
    stack.server.set_faults(
        api_error_share=0.3,
        api_error_status=status,
        retry_after_seconds=0.05,
        seed=11,
        expire_after_share=0.5,
        limit_batches=1,  # the expiry; the API errors go on for every call of the run
    )

    result = stack.run(conf(stack))
    stack.server.set_faults()  # the checks below read the server without faults

    assert_succeeded(result)
    assert_every_row_landed_with_its_vendor(stack)
    assert rounds(stack) == [(1, "expired"), (2, "completed")]
    expired, completed = stack.query("SELECT batch_id FROM llm_batch_ledger ORDER BY attempt")
    answered_by = dict(stack.query("SELECT batch_id, count(*) FROM review_sentiment GROUP BY 1"))
    assert answered_by[expired[0]] > 0 and answered_by[completed[0]] > 0  # the finished half landed
    assert len(stack.batch_ids()) == 2  # not one batch per retried create


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_batch_cancelled_mid_run_still_lands_every_row(make_stack, tmp_path, vendor):
    stack = make_stack(vendor, "--request-seconds", "0.05")
    log = tmp_path / "cancel-run.log"
    process = stack.start_run(log, conf(stack))
    deadline = time.monotonic() + 120
    while not (batch_ids := stack.batch_ids()) and time.monotonic() < deadline and process.poll() is None:
        time.sleep(0.2)
    assert batch_ids, log.read_text()[-4000:]
    time.sleep(0.5)  # some requests answered, most not (about 40 at 0.05 s each)
    backend = backend_on(vendor, stack.server)
    backend.cancel(batch_ids[0], retry=RetryPolicy(tries=3, base=0.1, cap=1.0))
    while not backend.retrieve(batch_ids[0]).status.is_terminal:
        time.sleep(0.1)

    assert process.wait(timeout=300) == 0, log.read_text()[-4000:]
    assert_every_row_landed_with_its_vendor(stack)
    assert rounds(stack)[0] == (1, "cancelled") and rounds(stack)[-1][1] == "completed"
