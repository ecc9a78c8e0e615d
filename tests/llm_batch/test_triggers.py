"""BatchTrigger against real local Batch API servers over HTTP."""

from __future__ import annotations

import asyncio
import importlib
import itertools
import json
import logging
import re
import time

import pytest
from airflow.providers.openai.hooks.openai import OpenAIHook
from openai.types import Batch

from llm_batch.backends import BackendError, CredentialsRejected
from llm_batch.backends.azure_backend import DEFAULT_API_VERSION as AZURE_API_VERSION
from llm_batch.backends.openai_backend import TRIGGER_POOL_CONNECTIONS, OpenAIBatchBackend
from llm_batch.backends.shared_clients import close_shared_async_clients, shared_async_clients
from llm_batch.backends.status_reader import StatusReader, sdk_model
from llm_batch.triggers import BatchTrigger
from local_batch_api.faults import METADATA_KEY
from tests.batch_server import anthropic_client, wait_for_batch
from tests.conftest import chat_line, upload

TRIGGER_LOGGER = "llm_batch.triggers"


@pytest.fixture
def use_server(monkeypatch):
    """Point the ``openai_default`` connection at a server (optionally with another key)."""

    def use(server, api_key: str | None = None):
        connection = {"conn_type": "openai", "password": api_key or server.api_key, "host": server.base_url}
        monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps(connection))
        return server.client()

    return use


@pytest.fixture(autouse=True)
async def _close_clients():
    yield
    await close_shared_async_clients()


def create_batch(client, lines: int = 3, bad_line: bool = False, **faults):
    body = [chat_line(f"r{i:03d}", f"review {i} was good") for i in range(lines)]
    file = upload(client, [b"not json", *body] if bad_line else body)
    metadata = {METADATA_KEY: json.dumps(faults)} if faults else None
    return client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
    )


async def first_event(trigger: BatchTrigger, timeout: float = 30.0) -> dict:
    events = trigger.run()
    try:
        async with asyncio.timeout(timeout):
            return (await anext(events)).payload
    finally:
        await events.aclose()


def status_readers() -> list[StatusReader]:
    return [c for c in shared_async_clients().values() if isinstance(c, StatusReader)]


def fast_trigger(batch_id: str, **kwargs) -> BatchTrigger:
    return BatchTrigger(batch_id=batch_id, **{"poll_interval": 0.02, "max_backoff": 0.2, **kwargs})


async def test_completed_batch_gives_counts_usage_and_file_ids(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, lines=3)

    event = await first_event(fast_trigger(batch.id))

    assert event["status"] == "terminal"
    summary = event["batch"]
    assert summary["id"] == batch.id and summary["status"] == "completed"
    assert summary["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert summary["output_file_id"].startswith("file-") and summary["error_file_id"] is None
    assert summary["input_file_id"] == batch.input_file_id
    assert summary["endpoint"] == "/v1/chat/completions" and summary["model"]
    assert summary["usage"]["input_tokens"] > 0 and summary["usage"]["total_tokens"] > 0
    assert summary["completed_at"] >= summary["created_at"] and summary["failed_at"] is None
    assert summary["errors"] == []
    assert shared_server.api_key not in json.dumps(event)  # JSON-safe, and no key in the payload


async def test_failed_batch_lists_its_errors(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, lines=2, bad_line=True)

    summary = (await first_event(fast_trigger(batch.id)))["batch"]

    assert summary["status"] == "failed" and summary["failed_at"]
    assert summary["output_file_id"] is None
    assert {"code": "invalid_json_line", "line": 1}.items() <= summary["errors"][0].items()
    assert summary["errors"][0]["message"]
    assert summary["usage"] == {
        "input_tokens": 0,
        "output_tokens": 0,
        "total_tokens": 0,
        "cached_tokens": 0,
        "reasoning_tokens": 0,
    }


async def test_expired_batch_is_terminal_with_partial_counts(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, lines=10, expire_after_share=0.4)

    summary = (await first_event(fast_trigger(batch.id)))["batch"]

    assert summary["status"] == "expired" and summary["expired_at"]
    assert summary["request_counts"]["completed"] == 4
    assert summary["output_file_id"] and summary["error_file_id"]


async def test_batch_cancelled_while_waiting_is_terminal(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, lines=2, stall_finalizing_seconds=30)
    waiting = asyncio.create_task(first_event(fast_trigger(batch.id)))
    await asyncio.to_thread(wait_for_batch, client, batch.id, {"finalizing"})  # test side only

    client.batches.cancel(batch.id)

    summary = (await waiting)["batch"]
    assert summary["status"] == "cancelled" and summary["cancelled_at"] and summary["cancelling_at"]


@pytest.mark.parametrize("status", [500, 429])
async def test_transient_errors_back_off_and_still_end_terminal(start_server, use_server, caplog, status):
    server = start_server()
    client = use_server(server)
    batch = create_batch(client, lines=3, stall_finalizing_seconds=0.5)
    server.set_faults(api_error_share=0.5, api_error_status=status, retry_after_seconds=0.01, seed=5)
    caplog.set_level(logging.WARNING, logger=TRIGGER_LOGGER)

    event = await first_event(fast_trigger(batch.id, max_backoff=0.1))

    assert event["status"] == "terminal" and event["batch"]["status"] == "completed"
    warnings = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    assert warnings and all(f" {status}: " in message for message in warnings)


async def test_unknown_batch_gives_an_error_event(shared_server, use_server):
    use_server(shared_server)

    event = await first_event(fast_trigger("batch_doesnotexist"))

    assert event["status"] == "error" and event["batch_id"] == "batch_doesnotexist"
    assert "404" in event["message"]


async def test_wrong_key_gives_an_error_event_without_the_key(shared_server, use_server):
    wrong_key = "sk-wrong-0123456789abcdef"
    use_server(shared_server, api_key=wrong_key)

    event = await first_event(fast_trigger("batch_whatever"))

    assert event["status"] == "error" and "401" in event["message"]
    assert wrong_key not in event["message"]


async def test_a_rotated_key_is_picked_up_after_a_401(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, lines=1)
    use_server(shared_server, api_key="sk-old-key-0123456789")
    with pytest.raises(CredentialsRejected):
        await OpenAIBatchBackend().aretrieve(batch.id)  # the loop's shared reader now holds the old key
    (stale,) = status_readers()
    use_server(shared_server)  # the connection now holds the new key

    event = await first_event(fast_trigger(batch.id))

    assert event["status"] == "terminal"
    (fresh,) = status_readers()
    assert fresh is not stale


async def test_progress_is_logged_only_when_it_changes(shared_server, use_server, caplog, monkeypatch):
    client = use_server(shared_server)
    batch = create_batch(client, lines=3, stall_finalizing_seconds=0.6)
    polls = 0
    get_json = StatusReader.get_json

    async def counting_get_json(self, *args, **kwargs):
        nonlocal polls
        polls += 1
        return await get_json(self, *args, **kwargs)

    monkeypatch.setattr(StatusReader, "get_json", counting_get_json)
    caplog.set_level(logging.INFO)

    await first_event(fast_trigger(batch.id))

    progress = [r.getMessage() for r in caplog.records if r.getMessage().startswith(f"Batch {batch.id} is ")]
    assert polls >= 15
    assert 2 <= len(progress) <= 6 < polls
    assert all(a != b for a, b in itertools.pairwise(progress))
    assert re.fullmatch(
        rf"Batch {batch.id} is completed: 3 of 3 done \(100%; 3 completed, 0 failed\), 0m 0\ds since created",
        progress[-1],
    ), progress[-1]
    # No line per poll (as the SDK's "HTTP Request: GET ..."): it says nothing a user needs.
    assert "GET" not in caplog.text


def test_serialize_round_trip_carries_no_secrets():
    trigger = BatchTrigger(batch_id="batch_abc", conn_id="my_openai", poll_interval=5, max_backoff=120)
    classpath, kwargs = trigger.serialize()

    module_name, class_name = classpath.rsplit(".", 1)
    rebuilt = getattr(importlib.import_module(module_name), class_name)(**kwargs)

    assert classpath == "llm_batch.triggers.BatchTrigger"
    assert kwargs == {"batch_id": "batch_abc", "conn_id": "my_openai", "poll_interval": 5, "max_backoff": 120}
    assert rebuilt.serialize() == (classpath, kwargs)
    assert json.loads(json.dumps(kwargs)) == kwargs


async def test_on_kill_cancels_an_in_progress_batch(start_server, use_server):
    server = start_server("--request-seconds", "0.05")
    client = use_server(server)
    batch = create_batch(client, lines=40)
    trigger = BatchTrigger(batch_id=batch.id, poll_interval=0.05)
    waiting = asyncio.create_task(first_event(trigger))
    await asyncio.to_thread(wait_for_batch, client, batch.id, {"in_progress"})

    waiting.cancel()  # what the triggerer does on a user's clear / mark failed, then on_kill
    await trigger.on_kill()

    done = await asyncio.to_thread(wait_for_batch, client, batch.id)
    assert done.status == "cancelled" and done.request_counts.completed < 40


async def test_on_kill_of_a_finished_batch_is_quiet(shared_server, use_server, caplog):
    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client, lines=1).id)
    caplog.set_level(logging.INFO, logger=TRIGGER_LOGGER)

    await BatchTrigger(batch_id=batch.id).on_kill()  # the server answers 409

    assert "already finished" in caplog.text and not [r for r in caplog.records if r.levelno >= 30]


async def test_waits_never_block_the_event_loop(shared_server, use_server):
    client = use_server(shared_server)
    # The loop's first wait builds the clients every later wait shares, once per process: the
    # SDK's transport imports its modules and loads the CA bundle (0.1 s here, 0.24 s under load).
    # What is measured is the waits themselves.
    await first_event(fast_trigger(wait_for_batch(client, create_batch(client, lines=1).id).id))
    # Long enough that creating the six batches on a busy machine does not eat the wait being measured.
    batches = [create_batch(client, lines=2, stall_finalizing_seconds=5.0) for _ in range(6)]
    lags: list[float] = []
    done = asyncio.Event()

    async def ticker():
        while not done.is_set():
            started = time.perf_counter()
            await asyncio.sleep(0.01)
            lags.append(time.perf_counter() - started - 0.01)

    ticking = asyncio.create_task(ticker())
    events = await asyncio.gather(*(first_event(BatchTrigger(b.id, poll_interval=0.05)) for b in batches))
    done.set()
    await ticking

    assert {e["batch"]["status"] for e in events} == {"completed"}
    assert len(lags) > 50 and max(lags) < 0.2


async def test_triggers_on_one_loop_share_one_client(shared_server, use_server, monkeypatch):
    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client, lines=1).id)
    built = []
    aget_conn = OpenAIHook.aget_conn

    async def counting_aget_conn(self):
        await asyncio.sleep(0.01)  # let every trigger reach the lock before the first client exists
        built.append(await aget_conn(self))
        return built[-1]

    monkeypatch.setattr(OpenAIHook, "aget_conn", counting_aget_conn)

    events = await asyncio.gather(*(first_event(fast_trigger(batch.id)) for _ in range(20)))
    (shared,) = [c for c in shared_async_clients().values() if not isinstance(c, StatusReader)]
    (reader,) = status_readers()

    assert len(built) == 1
    assert all(e["status"] == "terminal" for e in events)
    assert shared.max_retries == 0  # our retries, not the SDK's
    # One bounded connection pool for every cancel of the loop (the SDK's default holds up to 1,000).
    assert shared._client._transport._pool._max_connections == TRIGGER_POOL_CONNECTIONS
    # The looks go through one reader, sending what the SDK client sends.
    assert reader.base_url == str(shared.base_url)


async def test_waits_that_start_together_read_their_connection_once(shared_server, use_server, monkeypatch):
    # A triggerer restart starts every wait at once; reading the connection for each, one after
    # the other, delayed the last waits' first look by seconds at 5,000 waits.
    import airflow.providers.common.compat.connection as compat

    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client, lines=1).id)
    reads = []
    get_async_connection = compat.get_async_connection

    async def counting_get_async_connection(conn_id, *args, **kwargs):
        reads.append(conn_id)
        return await get_async_connection(conn_id, *args, **kwargs)

    monkeypatch.setattr(compat, "get_async_connection", counting_get_async_connection)

    # The read runs as a task queued after the 20 waits: each asks while it is under way.
    together = await asyncio.gather(*(first_event(fast_trigger(batch.id)) for _ in range(20)))
    reads_together = len(reads)
    later = await first_event(fast_trigger(batch.id))

    assert {e["status"] for e in [*together, later]} == {"terminal"}
    assert reads_together == 1
    assert len(reads) == 2  # nothing is kept: a wait started later reads the connection anew


async def test_looks_go_through_the_proxy_the_environment_names(unused_tcp_port, monkeypatch):
    # As the SDK's client does: HTTP(S)_PROXY, read once per reader rather than on every look.
    import openai

    seen: list[bytes] = []

    async def proxy(reader, writer):
        seen.append(await reader.readuntil(b"\r\n\r\n"))
        body = b'{"id": "batch_x", "status": "in_progress"}'
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(proxy, "127.0.0.1", unused_tcp_port)
    monkeypatch.setenv("HTTP_PROXY", f"http://127.0.0.1:{unused_tcp_port}")
    monkeypatch.delenv("NO_PROXY", raising=False)
    monkeypatch.delenv("no_proxy", raising=False)
    sdk = openai.AsyncOpenAI(api_key="k", base_url="http://api.example.invalid/v1")
    reader = await StatusReader.of(sdk)
    monkeypatch.setenv("HTTP_PROXY", "http://127.0.0.1:9")  # read when the reader was made, not per look
    try:
        answers = [await reader.get_json("batches/batch_x", timeout=5) for _ in range(2)]
    finally:
        await reader.close()
        await sdk.close()
        server.close()

    assert [a["status"] for a in answers] == ["in_progress"] * 2
    assert len(seen) == 2
    assert seen[0].startswith(b"GET http://api.example.invalid/v1/batches/batch_x HTTP/1.1\r\n")
    assert b"\r\nAuthorization: Bearer k\r\n" in seen[0]


async def test_the_shared_reader_closes_when_the_last_wait_using_it_ends(shared_server, use_server):
    # An event loop that ends (each deferral under `airflow dags test`) must not leave a session open.
    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client, lines=1).id)
    stalled = create_batch(client, lines=1, stall_finalizing_seconds=3.0)
    slow = first_event(fast_trigger(stalled.id))
    fast = [first_event(fast_trigger(batch.id)) for _ in range(3)]
    waits = [asyncio.create_task(wait) for wait in (slow, *fast)]
    await asyncio.wait(waits[1:])
    (reader,) = status_readers()
    assert not reader.closed  # the slow wait still holds it

    events = [await wait for wait in waits]

    assert {e["status"] for e in events} == {"terminal"} and reader.closed


async def test_a_batch_is_waited_for_through_an_azure_connection(shared_server, monkeypatch):
    # The Azure dialect of the server refuses a look without the api-key header or the api-version query.
    root = shared_server.base_url.removesuffix("/").removesuffix("/v1")
    connection = {
        "conn_type": "openai",
        "host": root,
        "password": shared_server.api_key,
        "extra": {"api_version": AZURE_API_VERSION},
    }
    monkeypatch.setenv("AIRFLOW_CONN_AZURE", json.dumps(connection))
    client = shared_server.client()
    batch = wait_for_batch(client, create_batch(client, lines=2).id)

    event = await first_event(fast_trigger(batch.id, conn_id="azure"))

    assert event["status"] == "terminal"
    assert event["batch"]["id"] == batch.id and event["batch"]["request_counts"]["completed"] == 2
    (reader,) = status_readers()
    assert reader.base_url == f"{root}/openai/"


async def test_a_look_answered_with_no_json_fails_naming_the_answer(unused_tcp_port):
    async def not_json(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\nContent-Type: text/html\r\n\r\n<html>oops")
        await writer.drain()
        writer.close()

    server = await asyncio.start_server(not_json, "127.0.0.1", unused_tcp_port)
    reader = StatusReader(f"http://127.0.0.1:{unused_tcp_port}/v1", {"Authorization": "Bearer k"}, {})
    try:
        with pytest.raises(BackendError, match="not a JSON object") as caught:
            await reader.get_json("batches/batch_x", timeout=5)
    finally:
        await reader.close()
        server.close()

    assert caught.value.status_code == 200 and not caught.value.retryable


async def test_a_message_batch_is_waited_for_through_an_anthropic_connection(shared_server, monkeypatch):
    connection = {
        "conn_type": "anthropic",
        "password": shared_server.api_key,
        "host": f"http://127.0.0.1:{shared_server.port}",
    }
    monkeypatch.setenv("AIRFLOW_CONN_CLAUDE", json.dumps(connection))
    params = {
        "model": "claude-haiku-4-5",
        "max_tokens": 32,
        "messages": [{"role": "user", "content": "good"}],
    }
    batch = anthropic_client(shared_server).messages.batches.create(
        requests=[{"custom_id": f"r{n}", "params": params} for n in range(3)]
    )

    event = await first_event(fast_trigger(batch.id, conn_id="claude"))

    assert event["status"] == "terminal"
    summary = event["batch"]
    assert summary["id"] == batch.id and summary["status"] == "completed"
    assert summary["request_counts"] == {"total": 3, "completed": 3, "failed": 0}
    assert shared_server.api_key not in json.dumps(event)


def test_an_answer_the_sdk_types_do_not_know_is_still_read_as_the_sdk_reads_it():
    answer = {"id": "batch_x", "object": "batch", "endpoint": "/v1/chat/completions", "input_file_id": "f"}
    answer |= {"completion_window": "24h", "created_at": 1, "request_counts": {"total": 2, "completed": 1}}
    known = sdk_model(Batch, {**answer, "status": "in_progress"})
    newer = sdk_model(Batch, {**answer, "status": "a_status_added_later"})  # a Literal the SDK lacks

    assert known.status == "in_progress" and known.request_counts.total == 2
    assert newer.status == "a_status_added_later" and newer.request_counts.completed == 1
