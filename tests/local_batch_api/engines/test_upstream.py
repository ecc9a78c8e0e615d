"""The upstream engine forwards each line to a second server's synchronous endpoints."""

from __future__ import annotations

import json

from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, upload

LINES = [chat_line(f"r{i}", f"I love this product, number {i}") for i in range(40)]


def run(client):
    file = upload(client, LINES)
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    return wait_for_batch(client, batch.id)


def read(client, file_id):
    return [json.loads(x) for x in client.files.content(file_id).text.splitlines()] if file_id else []


def forwarder(start_server, upstream, *flags, key="upstream-key", name="forwarder"):
    return start_server(
        "--engine",
        "upstream",
        "--upstream-base-url",
        upstream.base_url,
        "--upstream-concurrency",
        "4",
        *flags,
        name=name,
        env={"LOCAL_BATCH_API_UPSTREAM_KEY": key},
    )


def test_forwarded_answers_are_the_upstream_answers(start_server):
    upstream = start_server(name="upstream", api_key="upstream-key")
    client = forwarder(start_server, upstream).client()
    done = run(client)
    assert done.status == "completed" and done.request_counts.completed == 40
    output = {o["custom_id"]: o["response"]["body"] for o in read(client, done.output_file_id)}
    direct = upstream.client().chat.completions.create(**LINES[7]["body"])
    assert output["r7"] == direct.model_dump(mode="json", exclude_unset=True)
    assert done.usage.input_tokens == sum(b["usage"]["prompt_tokens"] for b in output.values())


def test_upstream_failures_are_retried_then_recorded_per_line(start_server):
    upstream = start_server(name="upstream", api_key="upstream-key")
    upstream.set_faults(api_error_share=0.3, api_error_status=500, retry_after_seconds=0.0, seed=11)

    without_retries = run(forwarder(start_server, upstream, "--upstream-max-retries", "0").client())
    assert without_retries.status == "completed"
    assert 4 <= without_retries.request_counts.failed <= 20

    with_retries = run(
        forwarder(start_server, upstream, "--upstream-max-retries", "6", name="patient").client()
    )
    assert with_retries.request_counts.completed == 40 and with_retries.error_file_id is None


def test_rejected_credentials_become_error_lines(start_server):
    upstream = start_server(name="upstream", api_key="upstream-key")
    client = forwarder(start_server, upstream, key="wrong-key").client()
    done = run(client)
    assert done.status == "completed" and done.output_file_id is None
    errors = read(client, done.error_file_id)
    assert len(errors) == 40 and {e["response"]["status_code"] for e in errors} == {401}


def test_unreachable_upstream_is_recorded_not_crashed(start_server):
    from tests.batch_server import free_port

    dead = f"http://127.0.0.1:{free_port()}/v1"
    client = start_server(
        "--engine", "upstream", "--upstream-base-url", dead, "--upstream-max-retries", "1", name="lonely"
    ).client()
    done = run(client)
    assert done.status == "completed" and done.request_counts.failed == 40
    assert {e["response"]["status_code"] for e in read(client, done.error_file_id)} == {502}
