"""SIGKILL mid-batch, restart: no file or batch is lost and the batch finishes whole."""

from __future__ import annotations

import json

from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, upload

TOTAL = 400


def test_killed_server_resumes_every_batch_without_loss_or_duplicates(start_server):
    server = start_server("--request-seconds", "0.005")
    client = server.client()
    kept = upload(client, [chat_line("k", "a file that must survive")])
    file = upload(client, [chat_line(f"r{i:04d}", f"review {i}: great value") for i in range(TOTAL)])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    waiting = client.batches.create(
        input_file_id=kept.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while not 50 < client.batches.retrieve(batch.id).request_counts.completed < TOTAL - 100:
        pass

    server.kill()
    server.start()

    assert client.files.retrieve(kept.id).bytes == kept.bytes
    assert client.files.content(file.id).content.count(b"\n") == TOTAL
    done = wait_for_batch(client, batch.id, timeout=120)
    assert done.status == "completed"
    assert done.request_counts.model_dump() == {"total": TOTAL, "completed": TOTAL, "failed": 0}
    output = [json.loads(line) for line in client.files.content(done.output_file_id).text.splitlines()]
    assert sorted(o["custom_id"] for o in output) == [f"r{i:04d}" for i in range(TOTAL)]
    assert sum(o["response"]["body"]["usage"]["prompt_tokens"] for o in output) == done.usage.input_tokens
    assert wait_for_batch(client, waiting.id).status == "completed"
