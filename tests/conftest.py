from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from tests.batch_server import FAST_TIMINGS, ServerProcess

pytest_plugins = ["tests.object_store"]  # the S3 server fixtures

# Airflow reads its home at first import: keep tests away from any real ~/airflow.
os.environ.setdefault(
    "AIRFLOW_HOME", str(Path(__file__).resolve().parent.parent / ".local" / "test-airflow-home")
)
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")


POSTGRES_FIXTURES = frozenset({"pg_schema", "pg_dsn"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Mark the tests that talk to PostgreSQL; outside CI, skip them when it is not running.

    A test needs PostgreSQL when it asks for a PostgreSQL fixture, is parametrised on
    ``"postgres"``, or is marked ``needs_postgres`` itself. CI starts the server, so there an
    unreachable one fails those tests instead.
    """
    needing = []
    for item in items:
        callspec = getattr(item, "callspec", None)
        if (
            POSTGRES_FIXTURES & set(getattr(item, "fixturenames", ()))
            or (callspec is not None and "postgres" in callspec.params.values())
            or item.get_closest_marker("needs_postgres")
        ):
            item.add_marker(pytest.mark.needs_postgres)
            needing.append(item)
    if needing and not os.environ.get("CI") and not _postgres_reachable():
        skip = pytest.mark.skip(reason="PostgreSQL is not reachable (PGHOST/PGPORT); CI runs these")
        for item in needing:
            item.add_marker(skip)


def _postgres_reachable() -> bool:
    import psycopg

    from tests.postgres import TEST_DSN

    try:
        psycopg.connect(TEST_DSN, connect_timeout=2).close()
    except psycopg.OperationalError:
        return False
    return True


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


def echo_line(custom_id: str, prompt: str) -> dict:
    """A completions request whose answer starts with its prompt, verbatim."""
    return {
        "custom_id": custom_id,
        "method": "POST",
        "url": "/v1/completions",
        "body": {"model": "gpt-3.5-turbo-instruct", "prompt": prompt, "echo": True, "max_tokens": 8},
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
