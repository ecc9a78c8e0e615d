"""The server exits on purpose at each named crash point; the restarted one finishes every batch
whole: no file of zeros, no request lost or written twice, no batch left hanging."""

from __future__ import annotations

import json
import time

import openai
import pytest

from local_batch_api.faults import CRASH_ENV, CRASH_EXIT_CODE, METADATA_KEY
from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, jsonl, upload

TOTAL = 100
IDS = [f"r{i:03d}" for i in range(TOTAL)]
PUBLISH = ["publish.synced", "publish.renamed", "publish.dir_synced", "publish.recorded"]
# @2: the second file of the batch (its error file), after the first was published whole. The
# soak (benchmarks/soak_server_crash_points.py) runs every point many times; these are one each.
COMPLETING = ["chunk.written@2", "chunk.recorded@2", *PUBLISH, "publish.renamed@2"]
EXPIRING = ["unrun.written", "unrun.recorded", *PUBLISH]


def crash_then_restart(start_server, crash_at: str, **faults):
    """Run one batch on a server set to crash at ``crash_at``; restart it once it has crashed."""
    server = start_server("--request-seconds", "0.004", env={CRASH_ENV: crash_at})
    client = server.client()
    file = upload(client, [chat_line(custom_id, f"review {custom_id}: fine") for custom_id in IDS])
    batch = client.batches.create(
        input_file_id=file.id,
        endpoint="/v1/chat/completions",
        completion_window="24h",
        metadata={METADATA_KEY: json.dumps({"seed": 5, "line_failure_share": 0.2, **faults})},
    )
    assert server.process.wait(30) == CRASH_EXIT_CODE
    del server.env[CRASH_ENV]
    server.start()
    return client, wait_for_batch(client, batch.id, timeout=30)


def file_lines(client, file_id: str) -> list[dict]:
    """A published file's records, checked whole against its recorded size."""
    content = client.files.content(file_id).content
    assert len(content) == client.files.retrieve(file_id).bytes
    assert b"\0" not in content and content.endswith(b"\n")
    return [json.loads(line) for line in content.split(b"\n") if line]


@pytest.mark.parametrize("crash_at", COMPLETING)
def test_a_crash_at_any_step_of_completing_leaves_whole_files(start_server, crash_at):
    client, done = crash_then_restart(start_server, crash_at)

    answered = file_lines(client, done.output_file_id)
    failed = file_lines(client, done.error_file_id)
    assert done.status == "completed"
    assert done.request_counts.model_dump() == {
        "total": TOTAL,
        "completed": len(answered),
        "failed": len(failed),
    }
    assert sorted(r["custom_id"] for r in answered + failed) == IDS
    assert all(r["response"]["status_code"] == 200 for r in answered)


@pytest.mark.parametrize("crash_at", EXPIRING)
def test_a_crash_at_any_step_of_expiring_writes_each_request_once(start_server, crash_at):
    client, done = crash_then_restart(start_server, crash_at, expire_after_share=0.4)

    answered = file_lines(client, done.output_file_id)
    failed = file_lines(client, done.error_file_id)
    expired = [r for r in failed if (r["error"] or {}).get("code") == "batch_expired"]
    assert done.status == "expired"
    assert len(expired) == TOTAL - 40 and len(answered) + len(failed) == TOTAL
    assert sorted(r["custom_id"] for r in answered + failed) == IDS
    assert done.request_counts.model_dump() == {
        "total": TOTAL,
        "completed": len(answered),
        "failed": len(failed) - len(expired),  # expired requests did not run: not counted as failed
    }


@pytest.mark.parametrize("crash_at", ["unrun.written", "unrun.recorded"])
def test_a_crash_while_cancelling_writes_each_request_once(start_server, crash_at):
    server = start_server("--request-seconds", "0.004", env={CRASH_ENV: crash_at})
    client = server.client()
    file = upload(client, [chat_line(custom_id, "fine") for custom_id in IDS])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while client.batches.retrieve(batch.id).request_counts.completed < 20:
        time.sleep(0.005)
    client.batches.cancel(batch.id)
    assert server.process.wait(30) == CRASH_EXIT_CODE
    del server.env[CRASH_ENV]
    server.start()

    done = wait_for_batch(client, batch.id, timeout=30)
    answered = file_lines(client, done.output_file_id)
    unrun = file_lines(client, done.error_file_id)
    assert done.status == "cancelled"
    assert {r["error"]["code"] for r in unrun} == {"batch_cancelled"}
    assert sorted(r["custom_id"] for r in answered + unrun) == IDS
    assert done.request_counts.model_dump() == {"total": TOTAL, "completed": len(answered), "failed": 0}


def test_a_delete_cut_short_by_a_crash_is_finished_on_restart(start_server):
    server = start_server(env={CRASH_ENV: "delete.freed"})
    client = server.client()
    doomed = upload(client, [chat_line("a", "to be deleted")])
    kept = upload(client, [chat_line("b", "to be kept")])

    with pytest.raises(openai.APIConnectionError):
        client.files.delete(doomed.id)
    assert server.process.wait(30) == CRASH_EXIT_CODE
    del server.env[CRASH_ENV]
    server.start()

    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(doomed.id)
    assert [f.id for f in client.files.list()] == [kept.id]
    assert client.files.content(kept.id).content == jsonl([chat_line("b", "to be kept")])
    assert sorted(p.name for p in (server.data_dir / "files").iterdir()) == [kept.id]


def test_an_output_shorter_than_recorded_fails_the_batch_rather_than_padding_it(start_server):
    server = start_server("--request-seconds", "0.004")
    client = server.client()
    file = upload(client, [chat_line(custom_id, "fine") for custom_id in IDS])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while client.batches.retrieve(batch.id).request_counts.completed == 0:
        time.sleep(0.01)
    server.kill()
    (server.data_dir / "work" / f"{batch.id}.output.jsonl").write_bytes(b"")  # lost, e.g. to a bad disk
    server.start()

    done = wait_for_batch(client, batch.id, timeout=30)
    assert done.status == "failed" and done.output_file_id is None
    assert done.errors.data[0].code == "server_error"
