from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.batch_server import FAST_TIMINGS, ServerProcess

# Airflow reads its home at first import: keep tests away from any real ~/airflow.
os.environ.setdefault(
    "AIRFLOW_HOME", str(Path(__file__).resolve().parent.parent / ".local" / "test-airflow-home")
)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


@pytest.fixture
def start_server(tmp_path: Path) -> Iterator:
    """Factory: start a server with extra flags; every server it started is stopped afterwards."""
    servers: list[ServerProcess] = []

    def start(*flags: str, name: str = "server", api_key: str = "test-key", env=None) -> ServerProcess:
        server = ServerProcess(tmp_path / name, *FAST_TIMINGS, *flags, api_key=api_key, env=env)
        servers.append(server)
        return server.start()

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def shared_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the many tests that need no server-wide settings of their own."""
    server = ServerProcess(tmp_path_factory.mktemp("shared") / "server", *FAST_TIMINGS).start()
    yield server
    server.stop()


@pytest.fixture
def client(shared_server: ServerProcess):
    return shared_server.client()


def chat_line(custom_id: str, text: str, model: str = "gpt-4o-mini", **extra) -> dict:
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {"model": model, "messages": [{"role": "user", "content": text}], **extra},
    }


def request_line(custom_id: str = "a", *, drop: str | None = None, **changes) -> bytes:
    """A good chat request line, with top-level keys changed or ``drop`` left out."""
    line = {**chat_line(custom_id, "Fine."), **changes}
    line.pop(drop, None)
    return orjson.dumps(line)


def jsonl(lines: list) -> bytes:
    return b"".join((line if isinstance(line, bytes) else orjson.dumps(line)) + b"\n" for line in lines)


def upload(client, lines: list, name: str = "input.jsonl"):
    return client.files.create(file=(name, io.BytesIO(jsonl(lines))), purpose="batch")
