"""The invariants under faults, in a real running Airflow: LocalExecutor, SQLite, DuckDB.

One stack for the module; each test works on its own dates, so their rows never mix. Figures
(runs, batches, rows, seconds) are printed for the closing notes (`pytest -s`).
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pytest

from tests.e2e.conftest import ANTHROPIC_DAG_ID, DAG_ID, TODAY

pytestmark = [pytest.mark.slow, pytest.mark.timeout(1800)]


def days_ago(n: int) -> dt.date:
    return TODAY - dt.timedelta(days=n)


INPUT_REJECTIONS = {"null_input", "empty_input", "input_too_long"}


def assert_one_row_per_review(stack, day: dt.date, job: str = DAG_ID) -> int:
    """Every review of the day is one result row or one failure row with its reason, never both."""
    keys = stack.landed_keys(day, table=job)
    assert len(keys) == len(set(keys)), f"{day}: a review landed twice"
    failures = dict(
        stack.warehouse("SELECT key, reason FROM llm_batch_failures WHERE job = ? AND row_date = ?", job, day)
    )
    assert set(keys).isdisjoint(failures), f"{day}: a review is both a result and a failure"
    assert set(failures.values()) <= INPUT_REJECTIONS, f"{day}: unexpected failures {failures}"
    assert set(keys) | set(failures) == stack.all_keys(day), f"{day}: rows missing or extra"
    assert set(keys) >= stack.expected_keys(day) - set(failures)
    return len(keys)


def test_a_scheduled_run_lands_yesterday_on_openai_and_on_anthropic(local_stack):
    """The scheduler runs the latest night by itself (catchup is off), for the job on OpenAI and
    for the same job on Anthropic. Started just before midnight, it may run the next night too by
    the time this test looks: every scheduled run must succeed and land its own day, each answer
    from its own vendor's batches."""
    started = time.monotonic()
    api = local_stack.api

    def scheduled_runs(dag_id: str) -> list[dict]:
        return api.json(api.get(f"/dags/{dag_id}/dagRuns", run_type="scheduled"))["dag_runs"]

    def finished(dag_id: str) -> bool:
        runs = scheduled_runs(dag_id)
        return bool(runs) and all(r["state"] in ("success", "failed") for r in runs)

    local_stack.wait_until(
        lambda: finished(DAG_ID) and finished(ANTHROPIC_DAG_ID), "finished scheduled runs", timeout=360
    )
    for dag_id, vendor, model in [
        (DAG_ID, "openai", "gpt-4o-mini"),
        (ANTHROPIC_DAG_ID, "anthropic", "claude-haiku-4-5"),
    ]:
        runs = scheduled_runs(dag_id)
        assert [r["state"] for r in runs] == ["success"] * len(runs), dag_id
        days = sorted(dt.date.fromisoformat(r["data_interval_start"][:10]) for r in runs)
        assert days[0] in (days_ago(1), TODAY) and len(days) <= 2
        rows = sum(assert_one_row_per_review(local_stack, day, job=dag_id) for day in days)
        provenance = local_stack.warehouse(
            f"SELECT DISTINCT vendor, model, batch_id LIKE 'msgbatch_%' FROM {dag_id}"
        )
        assert provenance == [(vendor, model, vendor == "anthropic")], provenance
        print(
            f"\n{dag_id}: scheduled run(s) {days}: {rows} rows landed in {time.monotonic() - started:.0f} s"
        )


def test_a_backfill_of_3_dates_lands_each_review_once_and_a_reprocess_pays_nothing(local_stack):
    first, last = days_ago(7), days_ago(5)
    dates = (last - first).days + 1
    started = time.monotonic()
    runs = backfill(local_stack, first, last, reprocess="none")
    seconds = time.monotonic() - started
    assert [r["state"] for r in runs] == ["success"] * dates
    assert sorted(r["data_interval_start"][:10] for r in runs) == [
        (first + dt.timedelta(days=i)).isoformat() for i in range(dates)
    ]
    assert max_overlap(runs) >= 2, "the backfill ran its dates one at a time"
    rows = sum(assert_one_row_per_review(local_stack, first + dt.timedelta(days=i)) for i in range(dates))
    snapshot = table_snapshot(local_stack, first, last)
    batches = len(local_stack.batches())

    rerun = backfill(local_stack, first, last, reprocess="completed")
    assert [r["state"] for r in rerun] == ["success"] * dates
    assert table_snapshot(local_stack, first, last) == snapshot
    assert len(local_stack.batches()) == batches
    print(
        f"\nbackfill: {dates} runs, {rows} rows, {batches} batches in {seconds:.0f} s; reprocess: 0 new batches"
    )


def backfill(stack, first: dt.date, last: dt.date, *, reprocess: str = "none") -> list[dict]:
    """Backfill the runs for days ``first`` to ``last`` (data intervals), four at a time."""
    body = {
        "dag_id": DAG_ID,
        "from_date": f"{first}T00:00:00Z",
        "to_date": f"{last}T00:00:00Z",
        "max_active_runs": 4,
        "reprocess_behavior": reprocess,
    }
    for _ in range(5):
        stack.stack.check()
        response = stack.api.post("/backfills", body)
        # A creation that failed late may still have made the backfill: look before asking again.
        created = response.json() if response.status_code < 400 else active_backfill(stack, body)
        if created is None:  # a refusal, not the database being busy: fail with its answer
            raise AssertionError(f"POST /backfills: {response.status_code} {response.text}")
        try:
            return wait_for_backfill(stack, created["id"], expected=(last - first).days + 1)
        except BackfillVanished:  # SQLite rolled the creation back after all: create it again
            time.sleep(3)
    raise AssertionError(f"no backfill of {first}..{last} could be created")


class BackfillVanished(Exception):
    pass


def active_backfill(stack, body: dict) -> dict | None:
    listed = stack.api.get("/backfills", dag_id=DAG_ID)
    if listed.status_code >= 400:
        return None
    mine = [
        b
        for b in listed.json()["backfills"]
        if not b["completed_at"]
        and b["from_date"][:10] == body["from_date"][:10]
        and b["to_date"][:10] == body["to_date"][:10]
    ]
    return mine[-1] if mine else None


def wait_for_backfill(stack, backfill_id: int, expected: int, timeout: float = 1200) -> list[dict]:
    """Wait until the backfill is complete; its runs are the backfill runs of its date range."""
    deadline = time.monotonic() + timeout
    while True:
        stack.stack.check()
        response = stack.api.get(f"/backfills/{backfill_id}")
        if response.status_code == 404:
            raise BackfillVanished(backfill_id)
        backfill = stack.api.json(response)
        if backfill["completed_at"]:
            break
        if time.monotonic() > deadline:
            raise TimeoutError(f"backfill {backfill_id} did not complete in {timeout:.0f} s")
        time.sleep(3)
    runs = stack.api.json(stack.api.get(f"/dags/{DAG_ID}/dagRuns", run_type="backfill", limit=100))[
        "dag_runs"
    ]
    mine = [r for r in runs if backfill["from_date"] <= r["logical_date"] <= backfill["to_date"]]
    assert len(mine) == expected, [r["dag_run_id"] for r in mine]
    return sorted(mine, key=lambda r: r["data_interval_start"])


def max_overlap(runs: list[dict]) -> int:
    spans = [(r["start_date"], r["end_date"]) for r in runs if r["start_date"] and r["end_date"]]
    return max(sum(1 for s, e in spans if s <= start < e) for start, _ in spans)


def table_snapshot(stack, first: dt.date, last: dt.date) -> list[tuple]:
    return stack.warehouse(
        "SELECT * FROM review_sentiment WHERE review_date BETWEEN ? AND ? ORDER BY review_id", first, last
    )


def test_killing_the_triggerer_while_waits_are_deferred_does_not_lose_runs(local_stack):
    local_stack.set_faults(stall_finalizing_seconds=8)
    days = [days_ago(14), days_ago(13)]
    run_ids = [f"triggerer-kill-{day}" for day in days]
    for day, run_id in zip(days, run_ids, strict=True):
        local_stack.trigger_day(day, run_id)
    local_stack.wait_until(lambda: any(deferred_waits(local_stack, r) for r in run_ids), "a deferred wait")
    local_stack.stack.kill_process("triggerer")
    time.sleep(5)
    local_stack.set_faults()
    local_stack.stack.start_airflow_component("triggerer")
    runs = [local_stack.api.wait_for_run(DAG_ID, run_id) for run_id in run_ids]
    assert [r["state"] for r in runs] == ["success", "success"]
    for day in days:
        assert_one_row_per_review(local_stack, day)


def deferred_waits(stack, run_id: str) -> list[dict]:
    return [
        ti
        for ti in stack.api.task_instances(DAG_ID, run_id)
        if ti["task_id"].endswith(".wait") and ti["state"] == "deferred"
    ]


def running_triggers(stack, run_id: str) -> list[dict]:
    return [ti for ti in deferred_waits(stack, run_id) if ti.get("triggerer_job")]


def test_a_worker_dying_between_create_and_record_re_attaches(local_stack):
    day = days_ago(16)
    local_stack.marker.unlink()  # arm: the next process to create a batch dies before recording it
    run = local_stack.run_day(day, f"crash-after-create-{day}")
    assert run["state"] == "success"
    crashed_key, crashed_batch = local_stack.marker.read_text().split()
    mine = [b for b in local_stack.batches() if (b.metadata or {}).get("interval") == day.isoformat()]
    keys = [b.metadata["llm_batch_key"] for b in mine]
    assert len(keys) == len(set(keys)), "a shard was paid for twice"
    assert crashed_batch in {b.id for b in mine}
    submits = [
        ti
        for ti in local_stack.api.task_instances(DAG_ID, f"crash-after-create-{day}")
        if ti["task_id"] == "round_1.submit"
    ]
    assert max(ti["try_number"] for ti in submits) >= 2  # the killed try was retried
    assert_one_row_per_review(local_stack, day)
    print(f"\nworker crash: shard key {crashed_key[:12]} re-attached to {crashed_batch}; {len(mine)} batches")


def test_clearing_a_deferred_wait_cancels_its_batch(local_stack):
    day = days_ago(18)
    run_id = f"clear-wait-{day}"
    local_stack.set_faults(stall_finalizing_seconds=60)
    local_stack.trigger_day(day, run_id)
    # Clear only once a triggerer runs the triggers: on_kill is the triggerer's to call.
    local_stack.wait_until(lambda: running_triggers(local_stack, run_id), "trigger running in the triggerer")
    cleared = local_stack.api.post(
        f"/dags/{DAG_ID}/clearTaskInstances",
        {"dry_run": False, "dag_run_id": run_id, "task_ids": ["round_1.wait"], "only_failed": False},
    )
    # Every wait of the round is cleared, also those that deferred after the check above.
    waited = {ti["map_index"] for ti in local_stack.api.json(cleared)["task_instances"]}
    mine = lambda: [b for b in local_stack.batches() if (b.metadata or {}).get("interval") == day.isoformat()]  # noqa: E731
    local_stack.wait_until(
        lambda: any(b.status in ("cancelling", "cancelled") for b in mine()), "cancelled batch", 120
    )
    local_stack.set_faults()
    run = local_stack.api.wait_for_run(DAG_ID, run_id)
    cancelled = [b for b in mine() if b.status == "cancelled"]
    assert cancelled and len(cancelled) <= len(waited) + 1
    assert run["state"] == "success"  # the re-run wait sees the cancellation; what finished lands
    assert_one_row_per_review(local_stack, day)
    print(
        f"\ncleared wait: {len(cancelled)} batch(es) cancelled on the server; the run still landed every row"
    )


def test_transient_429_and_500_on_polls_do_not_fail_runs(local_stack):
    """Two runs at once: three API calls in ten answered 429 while they upload and create, then
    500 while their waits poll."""
    days = [days_ago(20), days_ago(21)]
    run_ids = [f"transient-{day}" for day in days]
    local_stack.set_faults(api_error_share=0.3, api_error_status=429, retry_after_seconds=0.2, seed=4)
    for day, run_id in zip(days, run_ids, strict=True):
        local_stack.trigger_day(day, run_id)
    local_stack.wait_until(lambda: any(deferred_waits(local_stack, r) for r in run_ids), "a deferred wait")
    local_stack.set_faults(api_error_share=0.3, api_error_status=500, retry_after_seconds=0.2, seed=5)
    runs = [local_stack.api.wait_for_run(DAG_ID, run_id) for run_id in run_ids]
    local_stack.set_faults()
    assert [r["state"] for r in runs] == ["success", "success"]
    for day in days:
        assert_one_row_per_review(local_stack, day)


def test_an_expired_batch_lands_its_finished_part_and_the_rest_is_resubmitted(local_stack):
    day = days_ago(23)
    local_stack.set_faults(expire_after_share=0.5, limit_batches=1)
    run = local_stack.run_day(day, f"expiry-{day}")
    local_stack.set_faults()
    assert run["state"] == "success"
    ledger = local_stack.warehouse(
        "SELECT shard, attempt, status, completed FROM llm_batch_ledger WHERE interval_label = ? ORDER BY 1, 2",
        day.isoformat(),
    )
    expired = [row for row in ledger if row[2] == "expired"]
    assert len(expired) == 1 and expired[0][3] > 0
    shard = expired[0][0]
    assert (shard, 2, "completed") in [(r[0], r[1], r[2]) for r in ledger]
    batch_ids = {
        r[0]
        for r in local_stack.warehouse("SELECT batch_id FROM review_sentiment WHERE review_date = ?", day)
    }
    assert len(batch_ids) == len({r[0] for r in ledger}) + 1  # the expired batch's finished rows landed too
    assert_one_row_per_review(local_stack, day)


def test_the_api_key_is_in_no_log_xcom_file_or_ledger_row(local_stack):
    key = local_stack.stack.secrets["openai_api_key"].encode()
    allowed = {"secrets.json"}
    leaks = [
        str(path)
        for path in local_stack.stack.root.rglob("*")
        if path.is_file() and path.name not in allowed and key in path.read_bytes()
    ]
    assert leaks == []
    ledger = local_stack.warehouse("SELECT * FROM llm_batch_ledger")
    assert ledger and key.decode() not in json.dumps(ledger, default=str)
    runs = local_stack.api.json(local_stack.api.get(f"/dags/{DAG_ID}/dagRuns", limit=100))["dag_runs"]
    for run in runs[:5]:
        xcoms = local_stack.api.get(f"/dags/{DAG_ID}/dagRuns/{run['dag_run_id']}/taskInstances/~/xcomEntries")
        assert key.decode() not in xcoms.text


def test_a_crashed_scheduler_is_restarted_and_the_run_still_finishes(local_stack):
    day = days_ago(25)
    run_id = f"scheduler-crash-{day}"
    local_stack.trigger_day(day, run_id)
    local_stack.wait_until(
        lambda: any(
            ti["state"] for ti in local_stack.api.task_instances(DAG_ID, run_id) if ti["task_id"] == "build"
        ),
        "a started build",
    )
    killed = local_stack.stack.crash_process("scheduler")
    local_stack.wait_until(
        lambda: local_stack.stack.supervised_pid("scheduler") not in (None, killed),
        "a restarted scheduler",
        60,
    )
    run = local_stack.api.wait_for_run(DAG_ID, run_id)
    assert run["state"] == "success"
    assert_one_row_per_review(local_stack, day)
    restarts = [e for e in local_stack.stack.restarts() if e["name"] == "scheduler"]
    assert -9 in [e["exit_code"] for e in restarts]
    assert "[supervise] scheduler exited with signal 9" in local_stack.stack.log_tail("scheduler", 100_000)
    print(f"\nscheduler killed (pid {killed}) and restarted; the run landed {day}")
