"""BatchSensor against real local Batch API servers over HTTP."""

from __future__ import annotations

import asyncio
import json
from datetime import timedelta

import pytest
from airflow.sdk.exceptions import AirflowException, TaskDeferred

from llm_batch.backends.shared_clients import close_shared_async_clients
from llm_batch.sensors import BatchSensor
from llm_batch.triggers import BatchTrigger
from local_batch_api.faults import METADATA_KEY
from tests.batch_server import wait_for_batch
from tests.conftest import chat_line, upload


@pytest.fixture
def use_server(monkeypatch):
    """Point the ``openai_default`` connection at a server; returns a test-side client."""

    def use(server):
        connection = {"conn_type": "openai", "password": server.api_key, "host": server.base_url}
        monkeypatch.setenv("AIRFLOW_CONN_OPENAI_DEFAULT", json.dumps(connection))
        return server.client()

    return use


def create_batch(client, lines: int = 2, **faults):
    file = upload(client, [chat_line(f"r{i:03d}", f"review {i} was good") for i in range(lines)])
    metadata = {METADATA_KEY: json.dumps(faults)} if faults else None
    return client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h", metadata=metadata
    )


def test_execute_returns_the_summary_at_once_for_a_finished_batch(shared_server, use_server):
    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client).id)

    summary = BatchSensor(task_id="wait", batch_id=batch.id).execute({})

    assert summary["id"] == batch.id and summary["status"] == "completed"
    assert summary["request_counts"] == {"total": 2, "completed": 2, "failed": 0}
    assert shared_server.api_key not in json.dumps(summary)


def test_execute_defers_a_running_batch_to_the_trigger(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, stall_finalizing_seconds=30)
    sensor = BatchSensor(task_id="wait", batch_id=batch.id, poll_interval=5, timeout=3600)

    with pytest.raises(TaskDeferred) as deferred:
        sensor.execute({})

    trigger = deferred.value.trigger
    assert isinstance(trigger, BatchTrigger)
    assert (trigger.batch_id, trigger.conn_id, trigger.poll_interval) == (batch.id, "openai_default", 5)
    assert deferred.value.method_name == "execute_complete"
    assert deferred.value.timeout == timedelta(hours=1)
    client.batches.cancel(batch.id)


def test_a_submit_tasks_dict_is_accepted_as_batch_id(shared_server, use_server):
    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client).id)
    submitted = {"batch_id": batch.id, "input_file_id": batch.input_file_id, "shard": 0}

    assert BatchSensor(task_id="wait", batch_id=submitted).execute({})["id"] == batch.id
    with pytest.raises(AirflowException, match="no 'batch_id' key"):
        BatchSensor(task_id="wait", batch_id={"id": batch.id}).execute({})


def test_execute_fails_at_once_for_an_unknown_batch(shared_server, use_server):
    use_server(shared_server)

    with pytest.raises(AirflowException, match="404"):
        BatchSensor(task_id="wait", batch_id="batch_doesnotexist").execute({})


def test_execute_complete_returns_the_summary_of_a_real_trigger_event(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client)
    sensor = BatchSensor(task_id="wait", batch_id=batch.id)

    async def fire() -> dict:
        events = BatchTrigger(batch_id=batch.id, poll_interval=0.02).run()
        event = await anext(events)
        await events.aclose()
        await close_shared_async_clients()
        return event.payload

    summary = sensor.execute_complete({}, asyncio.run(fire()))

    assert summary["id"] == batch.id and summary["status"] == "completed"


@pytest.mark.parametrize(
    ("event", "match"),
    [
        ({"status": "error", "batch_id": "batch_x", "message": "Batch batch_x: NotFoundError 404"}, "404"),
        ({"status": "success"}, "Unexpected trigger event"),
    ],
)
def test_execute_complete_raises_on_error_events(event, match):
    with pytest.raises(AirflowException, match=match):
        BatchSensor(task_id="wait", batch_id="batch_x").execute_complete({}, event)


def test_resuming_without_an_event_checks_the_batch_again(shared_server, use_server):
    """A wait cleared before a triggerer ran its trigger resumes with no event: it looks again."""
    client = use_server(shared_server)
    batch = create_batch(client, lines=2)
    wait_for_batch(client, batch.id)
    summary = BatchSensor(task_id="wait", batch_id=batch.id).execute_complete({}, None)
    assert summary["id"] == batch.id and summary["status"] == "completed"


def test_poke_mode_waits_on_the_worker(shared_server, use_server):
    client = use_server(shared_server)
    batch = create_batch(client, lines=3, stall_finalizing_seconds=0.3)
    sensor = BatchSensor(task_id="wait", batch_id=batch.id, poll_interval=0.05, deferrable=False)

    first = sensor.poke({})
    summary = sensor.execute({})

    assert not first.is_done and first.xcom_value is None
    assert summary["status"] == "completed" and summary["request_counts"]["completed"] == 3


def test_poke_mode_fails_for_an_unknown_batch(shared_server, use_server):
    use_server(shared_server)
    sensor = BatchSensor(task_id="wait", batch_id="batch_doesnotexist", deferrable=False)

    with pytest.raises(AirflowException, match="404"):
        sensor.poke({})


def test_on_kill_cancels_the_batch(start_server, use_server):
    server = start_server("--request-seconds", "0.05")
    client = use_server(server)
    batch = create_batch(client, lines=40)
    wait_for_batch(client, batch.id, {"in_progress"})

    BatchSensor(task_id="wait", batch_id={"batch_id": batch.id}, deferrable=False).on_kill()

    done = wait_for_batch(client, batch.id)
    assert done.status == "cancelled" and done.request_counts.completed < 40


def test_on_kill_of_a_finished_batch_does_not_raise(shared_server, use_server):
    client = use_server(shared_server)
    batch = wait_for_batch(client, create_batch(client).id)

    BatchSensor(task_id="wait", batch_id=batch.id).on_kill()  # the server answers 409

    assert client.batches.retrieve(batch.id).status == "completed"


def test_batch_id_is_templated():
    assert "batch_id" in BatchSensor.template_fields
