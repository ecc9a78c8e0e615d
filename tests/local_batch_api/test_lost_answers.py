"""Calls that take effect while their answer is lost: the SDK's own retries alone pay twice.

The real service can apply a create (or an upload, or a cancel) and lose its answer (500,
timeout, reset). ``lose_create_answers`` and its siblings make the local server do exactly that,
so the pipeline's guard against a second batch is tested against what it guards against
(``tests/llm_batch/test_submission.py``).
"""

from __future__ import annotations

import pytest
from openai import InternalServerError

from tests.conftest import chat_line, upload

LINES = [chat_line(f"r{i}", f"review {i} was fine") for i in range(5)]


def test_a_create_whose_answer_is_lost_is_created_twice_by_the_sdks_retries(start_server):
    server = start_server()
    file = upload(server.client(), LINES)
    server.set_faults(lose_create_answers=1)

    sdk = server.client(max_retries=2)  # the SDK's default behaviour: POSTs are re-sent on 5xx
    sdk.batches.create(input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h")

    assert len(list(server.client().batches.list())) == 2  # paid twice


def test_without_retries_the_lost_answer_is_a_500_yet_the_batch_exists(start_server):
    server = start_server()
    file = upload(server.client(), LINES)
    server.set_faults(lose_create_answers=1)

    with pytest.raises(InternalServerError):
        server.client().batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )

    (made,) = server.client().batches.list()
    assert made.input_file_id == file.id


def test_lost_upload_and_cancel_answers_take_effect_all_the_same(start_server):
    server = start_server("--request-seconds", "0.5")
    server.set_faults(lose_upload_answers=1, lose_cancel_answers=1)
    client = server.client(max_retries=2)

    file = upload(client, LINES)  # applied, answer lost, sent again: two files
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    client.batches.cancel(batch.id)  # applied, answer lost, sent again: cancelling twice is allowed

    assert len([f for f in client.files.list() if f.purpose == "batch"]) == 2
    assert client.batches.retrieve(batch.id).status in ("cancelling", "cancelled")
