"""Requests and answers holding raw Unicode line breaks stay one JSONL line each, in and out."""

from __future__ import annotations

import orjson

from tests.batch_server import wait_for_batch
from tests.conftest import echo_line, upload

BREAKS = ["\u2028", "\u2029", "\x85", "\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\r"]


def test_a_request_with_a_line_break_inside_a_string_is_one_request(client):
    prompts = {f"r{i}": f"first{brk}second{brk}" for i, brk in enumerate(BREAKS)}
    lines = [echo_line(custom_id, prompt) for custom_id, prompt in prompts.items()]
    file = upload(client, lines)
    batch = client.batches.create(input_file_id=file.id, endpoint="/v1/completions", completion_window="24h")
    done = wait_for_batch(client, batch.id)

    assert done.status == "completed" and done.request_counts.completed == done.request_counts.total == len(
        BREAKS
    )
    raw = client.files.content(done.output_file_id).content
    assert "\u2028".encode() in raw  # left unescaped, as JSON allows
    records = [orjson.loads(line) for line in raw.split(b"\n") if line]
    texts = {r["custom_id"]: r["response"]["body"]["choices"][0]["text"] for r in records}
    assert sorted(texts) == sorted(prompts) and all(texts[k].startswith(prompts[k]) for k in prompts)
