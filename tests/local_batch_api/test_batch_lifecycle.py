"""Every status path of a batch, driven by the unmodified openai SDK over HTTP (strict validation)."""

from __future__ import annotations

import json

import openai
import pytest

from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, upload

REVIEWS = [
    "I absolutely love this blender, it works great!",
    "Terrible quality. It broke after two days, a waste of money.",
    "The package arrived on Tuesday.",
]


def read_jsonl(client, file_id: str) -> list[dict]:
    return [json.loads(line) for line in client.files.content(file_id).text.splitlines()]


def test_batch_completes_with_output_in_the_contract_shape(client):
    lines = [chat_line(f"review-{i}", text) for i, text in enumerate(REVIEWS)]
    file = upload(client, lines)
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata={"job": "t"}
    )
    assert batch.status == "validating"
    assert batch.expires_at == batch.created_at + 86400

    done = wait_for_batch(client, batch.id)

    assert done.status == "completed"
    assert done.model == "gpt-4o-mini"
    assert done.metadata == {"job": "t"}
    assert done.request_counts.model_dump() == {"total": 3, "completed": 3, "failed": 0}
    assert done.in_progress_at and done.finalizing_at and done.completed_at
    assert done.created_at <= done.in_progress_at <= done.finalizing_at <= done.completed_at
    assert done.failed_at is done.expired_at is done.cancelled_at is None
    assert done.error_file_id is None
    assert done.usage.input_tokens > 0 and done.usage.output_tokens > 0
    assert done.usage.total_tokens == done.usage.input_tokens + done.usage.output_tokens

    output = read_jsonl(client, done.output_file_id)
    assert sorted(o["custom_id"] for o in output) == ["review-0", "review-1", "review-2"]
    for line in output:
        assert set(line) == {"id", "custom_id", "response", "error"}
        assert line["id"].startswith("batch_req_") and line["error"] is None
        assert line["response"]["status_code"] == 200 and line["response"]["request_id"].startswith("req_")
        assert line["response"]["body"]["object"] == "chat.completion"
    out_file = client.files.retrieve(done.output_file_id)
    assert out_file.purpose == "batch_output" and out_file.bytes == len(
        client.files.content(done.output_file_id).content
    )
    assert sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in output) == done.usage.input_tokens


def test_a_batch_whose_every_request_failed_still_completes_without_output_file(client):
    too_long = "word " * 200_000  # over the model's context window
    file = upload(client, [chat_line("a", too_long), chat_line("b", too_long)])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    done = wait_for_batch(client, batch.id)

    assert done.status == "completed"
    assert done.output_file_id is None and done.error_file_id is not None
    assert done.request_counts.model_dump() == {"total": 2, "completed": 0, "failed": 2}
    errors = read_jsonl(client, done.error_file_id)
    assert {e["custom_id"] for e in errors} == {"a", "b"}
    for line in errors:
        assert line["error"] is None
        assert line["response"]["status_code"] == 400
        assert line["response"]["body"]["error"]["code"] == "context_length_exceeded"


def test_cancel_lands_partial_results_and_accounts_for_every_request_once(start_server):
    server = start_server("--request-seconds", "0.02")
    client = server.client()
    file = upload(client, [chat_line(f"r{i}", f"review number {i} is fine") for i in range(200)])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_for_batch(client, batch.id, {"in_progress"})
    while client.batches.retrieve(batch.id).request_counts.completed < 20:
        pass
    cancelling = client.batches.cancel(batch.id)
    assert cancelling.status == "cancelling" and cancelling.cancelling_at is not None

    done = wait_for_batch(client, batch.id)

    assert done.status == "cancelled" and done.cancelled_at is not None
    counts = done.request_counts
    assert counts.total == 200 and 20 <= counts.completed < 200
    assert counts.failed == 0  # ran and failed: the requests never run are total - completed - failed
    output = read_jsonl(client, done.output_file_id)
    unrun = read_jsonl(client, done.error_file_id)
    assert len(output) == counts.completed and len(unrun) == counts.total - counts.completed
    assert sorted(line["custom_id"] for line in output + unrun) == sorted(f"r{i}" for i in range(200))
    for line in unrun:
        assert line["response"] is None and line["error"]["code"] == "batch_cancelled"
    assert client.batches.cancel(batch.id).status == "cancelled"  # cancelling again is allowed
    assert client.batches.retrieve(batch.id).request_counts == counts  # and writes nothing twice


def test_a_batch_cancelled_while_validating_ends_with_no_requests_and_no_files(start_server):
    client = start_server("--validating-seconds", "5").client()
    file = upload(client, [chat_line(f"r{i}", "fine") for i in range(10)])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    client.batches.cancel(batch.id)

    done = wait_for_batch(client, batch.id, timeout=10)

    assert done.status == "cancelled" and done.in_progress_at is None
    assert done.request_counts.model_dump() == {"total": 0, "completed": 0, "failed": 0}
    assert done.output_file_id is None and done.error_file_id is None


def test_cancel_of_a_finished_batch_is_a_conflict(client):
    file = upload(client, [chat_line("x", "fine")])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    wait_for_batch(client, batch.id)
    with pytest.raises(openai.ConflictError) as caught:
        client.batches.cancel(batch.id)
    assert caught.value.body["message"] == "Cannot cancel a batch with status 'completed'."
    assert caught.value.body["type"] == "invalid_request_error"


def test_expiry_keeps_finished_results_and_marks_the_rest_expired(start_server):
    server = start_server("--window-seconds", "1.0", "--request-seconds", "0.02")
    client = server.client()
    file = upload(client, [chat_line(f"r{i}", f"review {i}") for i in range(150)])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    assert batch.expires_at - batch.created_at in (0, 1, 2)

    done = wait_for_batch(client, batch.id)

    assert done.status == "expired" and done.expired_at is not None
    finished = read_jsonl(client, done.output_file_id)
    expired = read_jsonl(client, done.error_file_id)
    assert 0 < len(finished) < 150
    assert len(finished) + len(expired) == 150
    assert {o["custom_id"] for o in finished}.isdisjoint(e["custom_id"] for e in expired)
    assert all(
        e["response"] is None
        and e["error"]
        == {
            "code": "batch_expired",
            "message": "This request could not be executed before the completion window expired.",
        }
        for e in expired
    )
    assert done.request_counts.completed == len(finished)


def test_list_batches_is_newest_first_and_paginates_with_after(start_server):
    client = start_server().client()
    file = upload(client, [chat_line("x", "ok")])
    created = [
        client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        ).id
        for _ in range(5)
    ]
    page = client.batches.list(limit=2)
    assert [b.id for b in page.data] == created[::-1][:2]
    assert page.has_more is True
    assert [b.id for b in client.batches.list(limit=2)] == created[::-1]  # the SDK follows `after`
    raw = client.batches.with_raw_response.list(limit=100).http_response.json()
    assert raw["first_id"] == created[-1] and raw["last_id"] == created[0] and raw["has_more"] is False


@pytest.mark.parametrize(
    ("params", "param", "code"),
    [
        ({"endpoint": "/v1/images/generations"}, "endpoint", "invalid_value"),
        ({"completion_window": "48h"}, "completion_window", "invalid_value"),
        ({"metadata": {"k": 1}}, "metadata", "invalid_type"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_type"),
        ({"metadata": {"k": "v" * 513}}, "metadata", "invalid_type"),
    ],
)
def test_create_rejects_bad_parameters_synchronously(client, params, param, code):
    file = upload(client, [chat_line("x", "ok")])
    args = {
        "input_file_id": file.id,
        "endpoint": "/v1/chat/completions",
        "completion_window": "24h",
        **params,
    }
    with pytest.raises(openai.BadRequestError) as caught:
        client.batches.create(**args)
    assert caught.value.body["param"] == param and caught.value.body["code"] == code


def test_unknown_batch_is_404(client):
    with pytest.raises(openai.NotFoundError) as caught:
        client.batches.retrieve("batch_doesnotexist")
    assert caught.value.body["message"] == "No such Batch object: batch_doesnotexist"
    with pytest.raises(openai.NotFoundError):
        client.batches.cancel("batch_doesnotexist")
