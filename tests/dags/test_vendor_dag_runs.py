"""Whole runs of the sentiment DAG under ``airflow dags test`` on Anthropic's Message Batches and
Azure OpenAI: the DAG is the same, only its connection names the vendor.

Each ``airflow dags test`` costs a minute or so, so a run shows what it can show together: a try
dying right after create and its retry re-attaching, then the rerun that sends nothing; and under
transient API errors, a batch expiring half-way then the next round's cancelled mid-run. Marked slow.
"""

from __future__ import annotations

import sqlite3
import time

import pytest

from include.local_airflow import PROJECT
from llm_batch.backends import BatchStatus, RetryPolicy
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
def test_through_transient_errors_an_expired_then_a_cancelled_batch_every_row_lands(
    make_stack, tmp_path, vendor, status
):
    """Three API calls in ten fail (429/529/5xx) for the whole run; round 1's batch expires
    half-way, round 2's is cancelled mid-run, round 3 finishes what is left."""
    stack = make_stack(vendor, "--request-seconds", "0.1")
    stack.server.set_faults(
        api_error_share=0.3,
        api_error_status=status,
        retry_after_seconds=0.05,
        seed=11,
        expire_after_share=0.5,
        limit_batches=1,  # the expiry; the API errors go on for every call of the run
    )
    log = tmp_path / "run.log"
    process = stack.start_run(log, conf(stack))
    backend, retry = backend_on(vendor, stack.server), RetryPolicy(tries=8, base=0.05, cap=0.5)
    deadline = time.monotonic() + 240
    while len(batch_ids := through_errors(stack.batch_ids)) < 2:  # newest first
        assert time.monotonic() < deadline and process.poll() is None, log.read_text()[-4000:]
        time.sleep(0.2)
    while backend.retrieve(batch_ids[0], retry=retry).status is not BatchStatus.IN_PROGRESS:
        time.sleep(0.05)
    time.sleep(0.3)  # a few of round 2's requests answered, most not (about 20 at 0.1 s each)
    backend.cancel(batch_ids[0], retry=retry)
    while not backend.retrieve(batch_ids[0], retry=retry).status.is_terminal:
        time.sleep(0.1)

    assert process.wait(timeout=300) == 0, log.read_text()[-4000:]
    stack.server.set_faults()  # the checks below read the server without faults
    assert_every_row_landed_with_its_vendor(stack)
    assert rounds(stack) == [(1, "expired"), (2, "cancelled"), (3, "completed")]
    answered_by = dict(stack.query("SELECT batch_id, count(*) FROM review_sentiment GROUP BY 1"))
    expired, cancelled, completed = (
        b for (b,) in stack.query("SELECT batch_id FROM llm_batch_ledger ORDER BY attempt")
    )
    assert answered_by[expired] > 0 and answered_by[completed] > 0  # the expired half landed, not paid again
    assert set(answered_by) <= {expired, cancelled, completed}
    assert sorted(stack.batch_ids()) == sorted([expired, cancelled, completed])  # not one per retried create


def through_errors(call, tries: int = 20):
    """The test's own look at the server, retried through the transient errors it injects."""
    for _ in range(tries - 1):
        try:
            return call()
        except Exception:  # any of the SDKs' transient errors
            time.sleep(0.05)
    return call()
