"""Anthropic Message Batches through the unmodified anthropic SDK, over HTTP, on the same server."""

from __future__ import annotations

import sqlite3
import time

import anthropic
import httpx
import orjson
import pytest

from local_batch_api.faults import CRASH_ENV, CRASH_EXIT_CODE, METADATA_KEY
from tests.batch_server import anthropic_client, wait_for_message_batch


def request(custom_id: str, text: str = "Review: great value, works well.", **params) -> dict:
    body = {"model": "claude-haiku-4-5", "max_tokens": 64, "messages": [{"role": "user", "content": text}]}
    return {"custom_id": custom_id, "params": {**body, **params}}


def requests(n: int) -> list[dict]:
    return [request(f"r{i:04d}", f"Review {i}: the product is great") for i in range(n)]


def results(client, batch_id: str) -> dict[str, object]:
    return {r.custom_id: r.result for r in client.messages.batches.results(batch_id)}


def kinds(client, batch_id: str) -> dict[str, int]:
    counted: dict[str, int] = {}
    for result in results(client, batch_id).values():
        counted[result.type] = counted.get(result.type, 0) + 1
    return counted


@pytest.fixture
def claude(shared_server):
    return anthropic_client(shared_server)


def test_a_batch_ends_with_one_result_per_request_and_bad_params_errored(claude):
    batch = claude.messages.batches.create(
        requests=[*requests(5), request("no-max-tokens", max_tokens=None), request("bad-role", messages=[{}])]
    )
    assert batch.type == "message_batch" and batch.id.startswith("msgbatch_")
    assert batch.results_url is None and batch.ended_at is None
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(86400, abs=1)

    done = wait_for_message_batch(claude, batch.id)
    assert done.request_counts.model_dump() == {
        "processing": 0,
        "succeeded": 5,
        "errored": 2,
        "canceled": 0,
        "expired": 0,
    }
    assert done.results_url.endswith(f"/v1/messages/batches/{batch.id}/results")
    assert done.ended_at >= done.created_at and done.cancel_initiated_at is None
    got = results(claude, batch.id)
    assert sorted(got) == sorted(["no-max-tokens", "bad-role", *(f"r{i:04d}" for i in range(5))])
    message = got["r0003"].message
    assert message.role == "assistant" and message.model == "claude-haiku-4-5"
    assert message.content[0].type == "text" and message.content[0].text
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert message.usage.service_tier == "batch"
    errored = got["no-max-tokens"]
    assert errored.type == "errored" and errored.error.error.type == "invalid_request_error"
    assert "max_tokens" in errored.error.error.message


def test_results_are_jsonl_with_one_line_per_request(shared_server, claude):
    batch = wait_for_message_batch(claude, claude.messages.batches.create(requests=requests(3)).id)
    response = httpx.get(
        batch.results_url, headers={"x-api-key": shared_server.api_key, "anthropic-version": "2023-06-01"}
    )
    lines = [orjson.loads(line) for line in response.content.splitlines()]
    assert [line["result"]["type"] for line in lines] == ["succeeded"] * 3


def test_list_is_newest_first_and_pages_both_ways(start_server):
    server = start_server()
    claude = anthropic_client(server)
    created = [claude.messages.batches.create(requests=requests(1)).id for _ in range(5)]
    newest_first = created[::-1]

    page = claude.messages.batches.list(limit=2)
    assert [b.id for b in page.data] == newest_first[:2] and page.has_more
    assert (page.first_id, page.last_id) == (newest_first[0], newest_first[1])
    assert [b.id for b in claude.messages.batches.list(limit=2)] == newest_first  # the SDK follows after_id
    older = claude.messages.batches.list(after_id=newest_first[1], limit=2)
    assert [b.id for b in older.data] == newest_first[2:4] and older.has_more
    newer = claude.messages.batches.list(before_id=newest_first[3], limit=2)
    assert [b.id for b in newer.data] == newest_first[1:3] and newer.has_more
    last = claude.messages.batches.list(before_id=newest_first[1], limit=2)
    assert [b.id for b in last.data] == newest_first[:1] and not last.has_more
    # The OpenAI surface neither lists nor finds them.
    assert server.client().batches.list().data == []
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve("msgbatch_" + "0" * 24)


def test_cancel_ends_with_the_unprocessed_requests_canceled(start_server):
    claude = anthropic_client(start_server("--request-seconds", "0.02"))
    batch = claude.messages.batches.create(requests=requests(100))
    time.sleep(0.3)
    running = claude.messages.batches.retrieve(batch.id)
    assert running.processing_status == "in_progress"
    assert running.request_counts.processing == 100 and running.request_counts.succeeded == 0
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.batches.delete(batch.id)
    assert refused.value.body["error"]["type"] == "invalid_request_error"

    canceling = claude.messages.batches.cancel(batch.id)
    assert canceling.processing_status in ("canceling", "ended") and canceling.cancel_initiated_at is not None
    done = wait_for_message_batch(claude, batch.id)
    counts = done.request_counts
    assert counts.processing == 0 and counts.canceled > 0 and counts.succeeded > 0
    assert counts.succeeded + counts.canceled == 100
    assert kinds(claude, batch.id) == {"succeeded": counts.succeeded, "canceled": counts.canceled}
    assert len(list(claude.messages.batches.results(batch.id))) == 100  # one line per request
    assert claude.messages.batches.cancel(batch.id).processing_status == "ended"

    assert claude.messages.batches.delete(batch.id).type == "message_batch_deleted"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.retrieve(batch.id)


def test_expiry_fault_per_batch_keeps_the_finished_half(claude):
    batch = claude.messages.batches.create(
        requests=requests(10), extra_body={METADATA_KEY: {"expire_after_share": 0.5}}
    )
    done = wait_for_message_batch(claude, batch.id)
    assert done.request_counts.succeeded == 5 and done.request_counts.expired == 5
    assert kinds(claude, batch.id) == {"succeeded": 5, "expired": 5}


def test_the_completion_window_shrinks_with_the_server(start_server):
    claude = anthropic_client(start_server("--window-seconds", "1", "--request-seconds", "0.05"))
    batch = claude.messages.batches.create(requests=requests(60))
    assert (batch.expires_at - batch.created_at).total_seconds() == pytest.approx(1, abs=0.01)
    done = wait_for_message_batch(claude, batch.id)
    counts = done.request_counts
    assert counts.expired > 0 and counts.succeeded > 0 and counts.succeeded + counts.expired == 60


def test_server_faults_fail_lines_and_expire_the_next_batch(start_server):
    server = start_server("--fault", "line_failure_share=1.0", "--fault", "line_failure_status=500")
    claude = anthropic_client(server)
    failed = wait_for_message_batch(claude, claude.messages.batches.create(requests=requests(4)).id)
    assert failed.request_counts.errored == 4
    assert {r.error.error.type for r in results(claude, failed.id).values()} == {"api_error"}

    server.set_faults(expire_after_share=0.5, limit_batches=1)
    cut = wait_for_message_batch(claude, claude.messages.batches.create(requests=requests(10)).id)
    assert (cut.request_counts.succeeded, cut.request_counts.expired) == (5, 5)
    clean = wait_for_message_batch(claude, claude.messages.batches.create(requests=requests(10)).id)
    assert clean.request_counts.succeeded == 10


@pytest.mark.parametrize(
    ("status", "error", "error_type"),
    [
        (429, anthropic.RateLimitError, "rate_limit_error"),
        (529, anthropic.OverloadedError, "overloaded_error"),
        (500, anthropic.InternalServerError, "api_error"),
    ],
)
def test_transient_faults_answer_in_anthropic_shapes_and_the_sdk_recovers(
    start_server, status, error, error_type
):
    flags = {"api_error_share": 0.5, "api_error_status": status, "retry_after_seconds": 0.01, "seed": 5}
    server = start_server(*(arg for key, value in flags.items() for arg in ("--fault", f"{key}={value}")))
    claude = anthropic_client(server)
    outcomes = []
    for _ in range(20):
        try:
            claude.messages.batches.list()
            outcomes.append("ok")
        except anthropic.APIStatusError as exc:
            assert isinstance(exc, error) and exc.status_code == status
            assert exc.body == {
                "type": "error",
                "error": {"type": error_type, "message": exc.body["error"]["message"]},
            }
            assert exc.response.headers["retry-after-ms"] == "10"
            outcomes.append("error")
    assert 3 <= outcomes.count("error") <= 17
    server.set_faults(**{**flags, "api_error_share": 0.3})
    patient = anthropic_client(server, max_retries=8)
    batch = patient.messages.batches.create(requests=requests(3))
    assert wait_for_message_batch(patient, batch.id).request_counts.succeeded == 3


@pytest.mark.parametrize(
    "bad",
    [
        [request("has space")],
        [request("x" * 65)],
        [request("")],
        [request("same"), request("same")],
        [{"custom_id": "no-params"}],
        [],
    ],
    ids=["space", "too-long", "empty", "duplicate", "no-params", "no-requests"],
)
def test_create_refuses_the_whole_batch(claude, bad):
    before = claude.messages.batches.list(limit=1000).data
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.batches.create(requests=bad)
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert claude.messages.batches.list(limit=1000).data == before


def test_create_refuses_more_than_100000_requests(shared_server):
    body = {"requests": [{"custom_id": f"r{i}", "params": {}} for i in range(100_001)]}
    response = httpx.post(
        f"http://127.0.0.1:{shared_server.port}/v1/messages/batches",
        content=orjson.dumps(body),
        headers={"x-api-key": shared_server.api_key, "anthropic-version": "2023-06-01"},
        timeout=60,
    )
    assert response.status_code == 400 and "100000" in response.json()["error"]["message"]


def test_create_refuses_a_batch_over_the_size_limit(start_server):
    claude = anthropic_client(start_server("--max-message-batch-bytes", "4000"))
    claude.messages.batches.create(requests=requests(5))
    with pytest.raises(anthropic.BadRequestError, match="4000 bytes"):
        claude.messages.batches.create(requests=requests(40))


def test_the_key_is_required(shared_server):
    with pytest.raises(anthropic.AuthenticationError) as refused:
        anthropic_client(shared_server, api_key="wrong").messages.batches.list()
    assert refused.value.body == {
        "type": "error",
        "error": {"type": "authentication_error", "message": "invalid x-api-key"},
    }
    root = f"http://127.0.0.1:{shared_server.port}/v1/messages/batches"
    with_header = httpx.get(
        root, headers={"x-api-key": shared_server.api_key, "anthropic-version": "2023-06-01"}
    )
    assert with_header.status_code == 200
    no_version = httpx.get(root, headers={"x-api-key": shared_server.api_key})
    assert no_version.status_code == 400 and no_version.json()["error"]["type"] == "invalid_request_error"


def test_unknown_and_unfinished_batches(shared_server, claude):
    with pytest.raises(anthropic.NotFoundError) as missing:
        claude.messages.batches.retrieve("msgbatch_0123456789abcdef")
    assert missing.value.body["error"]["type"] == "not_found_error"
    openai_batch = "batch_0123456789abcdef"
    with pytest.raises(anthropic.NotFoundError):
        claude.messages.batches.cancel(openai_batch)
    slow = claude.messages.batches.create(
        requests=requests(2), extra_body={METADATA_KEY: {"stall_finalizing_seconds": 5}}
    )
    response = httpx.get(
        f"http://127.0.0.1:{shared_server.port}/v1/messages/batches/{slow.id}/results",
        headers={"x-api-key": shared_server.api_key, "anthropic-version": "2023-06-01"},
    )
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    claude.messages.batches.cancel(slow.id)


def test_a_killed_server_resumes_message_batches_without_loss(start_server):
    server = start_server("--request-seconds", "0.005")
    claude = anthropic_client(server)
    batch = claude.messages.batches.create(requests=requests(400))
    deadline = time.monotonic() + 30
    while not 50 < _progress(server, batch.id) < 300:
        assert time.monotonic() < deadline
        time.sleep(0.02)

    server.kill()
    server.start()

    done = wait_for_message_batch(claude, batch.id, timeout=120)
    assert done.request_counts.succeeded == 400
    got = list(claude.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in got) == [f"r{i:04d}" for i in range(400)]
    assert {r.result.type for r in got} == {"succeeded"}


def _progress(server, batch_id: str) -> int:
    """Requests answered so far, from the store (the API says 'processing' until the end)."""
    with sqlite3.connect(server.data_dir / "state.sqlite3") as db:
        row = db.execute("SELECT next_line FROM batches WHERE id = ?", (batch_id,)).fetchone()
    return row[0] if row else 0


@pytest.mark.parametrize(
    ("crash_at", "faults"),
    [
        ("chunk.written@2", {}),
        ("chunk.recorded@2", {}),
        ("unrun.written", {"expire_after_share": 0.4}),
        ("unrun.recorded", {"expire_after_share": 0.4}),
    ],
)
def test_a_crash_at_any_step_answers_each_request_once(start_server, crash_at, faults):
    """Message Batches publish no files: the chunk and expiry steps are their crash points."""
    server = start_server("--request-seconds", "0.004", env={CRASH_ENV: crash_at})
    claude = anthropic_client(server)
    faults = {"seed": 5, "line_failure_share": 0.2, **faults}
    batch = claude.messages.batches.create(requests=requests(100), extra_body={METADATA_KEY: faults})
    assert server.process.wait(30) == CRASH_EXIT_CODE
    del server.env[CRASH_ENV]
    server.start()

    done = wait_for_message_batch(claude, batch.id, timeout=30)
    got = list(claude.messages.batches.results(batch.id))
    assert sorted(r.custom_id for r in got) == [f"r{i:04d}" for i in range(100)]
    counted = {kind: sum(r.result.type == kind for r in got) for kind in ("succeeded", "errored", "expired")}
    assert counted == done.request_counts.model_dump(include=set(counted))
    assert counted["expired"] == (60 if faults.get("expire_after_share") else 0)
    assert 5 <= counted["errored"] <= 40
