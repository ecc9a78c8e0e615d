"""The peers' operators, unmodified, against the local server under ``airflow dags test``.

``OpenAITriggerBatchOperator`` (apache-airflow-providers-openai, deferrable and sync) and
``LLMBatchOperator`` (apache-airflow-providers-common-ai) are real clients nobody here wrote:
where one disagrees with the server, their code and the contract decide which side is wrong.
All scenarios come from one run of ``dags/peer_batches.py`` (see ``conftest.py``).
"""

from __future__ import annotations

import json

import pytest

from tests.peers.dags.peer_batches import REQUESTS

pytestmark = [pytest.mark.slow]

CUSTOM_IDS = sorted(f"review-{i}" for i in range(REQUESTS))
NO_COUNTS = {"succeeded": 0, "errored": 0, "invalid_output": 0, "expired": 0, "cancelled": 0, "missing": 0}


def file_lines(server, file_id: str | None) -> list[dict]:
    if file_id is None:
        return []
    return [json.loads(line) for line in server.client().files.content(file_id).text.splitlines()]


def statuses(rows: list[dict]) -> dict[str, int]:
    counted: dict[str, int] = {}
    for row in rows:
        counted[row["status"]] = counted.get(row["status"], 0) + 1
    return counted


def test_a_clean_batch_gives_both_peers_every_answer(peer_run):
    for operator in ("openai_deferrable", "openai_sync"):
        assert peer_run.task_state("clean", operator) == "success"
        (batch,) = peer_run.batches("clean", operator)
        assert peer_run.returned(f"clean.{operator}") == batch.id and batch.status == "completed"
        answers = file_lines(peer_run.server("clean", operator), batch.output_file_id)
        assert sorted(a["custom_id"] for a in answers) == CUSTOM_IDS
        assert {a["response"]["status_code"] for a in answers} == {200}

    assert peer_run.task_state("clean", "llm_batch") == "success"
    manifest = peer_run.returned("clean.llm_batch")
    assert manifest["counts"] == NO_COUNTS | {"succeeded": REQUESTS}
    assert manifest["terminal_reason"] == "succeeded"
    rows = peer_run.result_rows("clean")
    assert len(rows) == REQUESTS and statuses(rows) == {"success": REQUESTS}
    assert {row["output"]["label"] for row in rows} <= {"positive", "neutral", "negative"}


def test_expiry_at_half_is_counted_as_half_expired_by_the_peer(peer_run):
    """The peer takes expired as total - completed - failed, and each from its batch_expired line."""
    assert peer_run.task_state("expiry", "llm_batch") == "success"
    (batch,) = peer_run.batches("expiry", "llm_batch")
    assert batch.status == "expired"
    half = REQUESTS // 2
    assert batch.request_counts.model_dump() == {"total": REQUESTS, "completed": half, "failed": 0}

    manifest = peer_run.returned("expiry.llm_batch")
    assert manifest["counts"] == NO_COUNTS | {"succeeded": half, "expired": REQUESTS - half}
    assert manifest["terminal_reason"] == "expired"
    # Per row, not only relabelled from the batch's counts: an unexplained row would be "missing".
    assert statuses(peer_run.result_rows("expiry")) == {"success": half, "expired": REQUESTS - half}


def test_a_cancelled_batch_accounts_for_every_request_in_the_files_and_in_the_peer(peer_run):
    """Cancelled part-way (out of band, as a person would): answered requests are in the output
    file, the rest have a ``batch_cancelled`` line each. ``LLMBatchOperator`` lands one row per
    request (``success`` or ``cancelled``, none ``missing``), then fails the task, as it is
    written to do when a cancel lost requests; ``OpenAITriggerBatchOperator`` fails it too."""
    for operator in ("openai_deferrable", "llm_batch"):
        server = peer_run.server("cancel", operator)
        (batch,) = peer_run.batches("cancel", operator)
        assert batch.status == "cancelled", operator
        counts = batch.request_counts
        answered = file_lines(server, batch.output_file_id)
        unrun = file_lines(server, batch.error_file_id)
        assert counts.total == REQUESTS and counts.failed == 0
        assert len(answered) == counts.completed > 0 and len(unrun) == REQUESTS - counts.completed > 0
        assert sorted(line["custom_id"] for line in answered + unrun) == sorted(
            line["custom_id"] for line in file_lines(server, batch.input_file_id)
        )
        assert {line["error"]["code"] for line in unrun} == {"batch_cancelled"}
        assert peer_run.task_state("cancel", operator) == "failed"

    (batch,) = peer_run.batches("cancel", "llm_batch")
    rows = statuses(peer_run.result_rows("cancel"))
    assert rows == {
        "success": batch.request_counts.completed,
        "cancelled": REQUESTS - batch.request_counts.completed,
    }
    assert "LLMBatchCancelledError" in peer_run.output
    assert "OpenAIBatchCancelled" in peer_run.output


def test_a_lost_create_answer_makes_each_peer_pay_for_two_batches(peer_run):
    """The server applies the first create and answers 500 (``lose_create_answers=1``).

    Observed: the openai SDK's automatic retries (2 by default, which both peers keep) send the
    create again, so each operator makes two batches, both run and billed, and goes on with the
    second: ``OpenAITriggerBatchOperator`` (either mode, through ``OpenAIHook.create_batch``) and
    ``LLMBatchOperator`` (its adapter's ``batches.create``; its orphan lookup by metadata only
    runs on a later try, after an intent with no batch id). Our pipeline makes one batch in the
    same case: tests/llm_batch/test_submission.py::test_a_create_whose_answer_was_lost_is_found_not_duplicated.
    """
    operators = ("openai_deferrable", "openai_sync", "llm_batch")
    made = {operator: peer_run.batches("lost_create", operator) for operator in operators}
    assert {operator: len(batches) for operator, batches in made.items()} == dict.fromkeys(operators, 2)
    for operator, (lost, kept) in made.items():
        assert peer_run.task_state("lost_create", operator) == "success"
        assert lost.status == kept.status == "completed"  # the one whose answer was lost ran too
    assert peer_run.returned("lost_create.openai_deferrable") == made["openai_deferrable"][1].id
    assert peer_run.returned("lost_create.openai_sync") == made["openai_sync"][1].id
    assert peer_run.returned("lost_create.llm_batch")["batch_id"] == made["llm_batch"][1].id
