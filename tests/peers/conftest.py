"""One run of the peers' DAG (``dags/peer_batches.py`` here) under ``airflow dags test``.

Starting Airflow costs most of a run, so the folder's tests share one: every scenario is a task
group of the DAG, on servers with that scenario's faults, and each test reads its own scenario.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import openai
import pytest

from include.local_airflow import LocalAirflow
from tests.batch_server import FAST_TIMINGS, ServerProcess
from tests.peers.dags.peer_batches import SCENARIOS

DAGS = Path(__file__).resolve().parent / "dags"
DAG_ID = "peer_batches"
SCENARIO_FLAGS = {
    "clean": (),
    "expiry": ("--fault", "expire_after_share=0.5"),
    "cancel": ("--request-seconds", "0.05"),  # a second a batch: time to cancel it half-way
    "lost_create": ("--fault", "lose_create_answers=1"),
}
# A lost answer is a server-wide fault that counts creates: there each operator has a server of
# its own. Elsewhere a scenario's operators share one.
SERVER_PER_OPERATOR = {"lost_create"}
CANCEL_AFTER = 5  # requests done when the cancel scenario's batches are cancelled


@dataclass
class PeerRun:
    """The finished run: its servers by connection id, its Airflow, and what ``dags test`` printed."""

    servers: dict[str, ServerProcess]
    airflow: LocalAirflow
    output: str

    @property
    def result_path(self) -> Path:
        return self.airflow.root / "llm-batch-results"

    def server(self, scenario: str, operator: str) -> ServerProcess:
        return self.servers[f"{scenario}_{operator}"]

    def batches(self, scenario: str, operator: str) -> list:
        """The batches ``operator`` made in ``scenario``, oldest first."""
        server = self.server(scenario, operator)
        made = list(server.client().batches.list(limit=100))[::-1]
        if operator == "llm_batch":  # it names its batches in their metadata
            return [b for b in made if "idempotency_key" in (b.metadata or {})]
        uploaded = self.returned(f"{scenario}.upload_{operator}")
        return [b for b in made if b.input_file_id == uploaded]

    def task_state(self, scenario: str, operator: str) -> str:
        with sqlite3.connect(self.airflow.home / "airflow.db") as db:
            (state,) = db.execute(
                "SELECT state FROM task_instance WHERE dag_id = ? AND task_id = ?",
                (DAG_ID, f"{scenario}.{operator}"),
            ).fetchone()
        return state

    def returned(self, task_id: str):
        with sqlite3.connect(self.airflow.home / "airflow.db") as db:
            row = db.execute(
                "SELECT value FROM xcom WHERE dag_id = ? AND task_id = ? AND key = 'return_value'",
                (DAG_ID, task_id),
            ).fetchone()
        return None if row is None else json.loads(row[0])

    def result_rows(self, scenario: str) -> list[dict]:
        """The rows ``LLMBatchOperator`` landed (it writes them before failing on a cancel, too)."""
        (path,) = (self.result_path / scenario).glob("*.jsonl")
        return [json.loads(line) for line in path.read_text().splitlines()]


def connection(conn_type: str, server: ServerProcess) -> str:
    return json.dumps({"conn_type": conn_type, "host": server.base_url, "password": server.api_key})


def cancel_part_way(server: ServerProcess, stop: threading.Event) -> None:
    """Cancel each batch of ``server`` once it has done a few requests, as a person would."""
    client = server.client()
    while not stop.wait(0.05):
        for batch in client.batches.list(limit=100):
            if batch.status == "in_progress" and batch.request_counts.completed >= CANCEL_AFTER:
                with contextlib.suppress(openai.ConflictError):  # it finished meanwhile: the test says so
                    client.batches.cancel(batch.id)


def servers_by_connection(root: Path) -> dict[str, ServerProcess]:
    """A server for each connection of the DAG, not started; a scenario's connections may share one."""
    servers: dict[str, ServerProcess] = {}
    for scenario, operators in SCENARIOS.items():
        flags = (*FAST_TIMINGS, *SCENARIO_FLAGS[scenario])
        shared = ServerProcess(root / scenario, *flags)
        for operator in operators:
            name = f"{scenario}_{operator}"
            servers[name] = ServerProcess(root / name, *flags) if scenario in SERVER_PER_OPERATOR else shared
    return servers


@pytest.fixture(scope="session")
def peer_run(tmp_path_factory) -> Iterator[PeerRun]:
    root = tmp_path_factory.mktemp("peers")
    servers = servers_by_connection(root)
    unique = list({id(server): server for server in servers.values()}.values())
    (root / "no-plugins").mkdir()
    env = {"AIRFLOW__CORE__DAGS_FOLDER": str(DAGS), "AIRFLOW__CORE__PLUGINS_FOLDER": str(root / "no-plugins")}
    for conn_id, server in servers.items():
        conn_type = "pydanticai" if conn_id.endswith("llm_batch") else "openai"
        env[f"AIRFLOW_CONN_{conn_id.upper()}"] = connection(conn_type, server)
    clean = servers["clean_llm_batch"]
    airflow = LocalAirflow(root, clean.base_url, clean.api_key, extra_env=env)
    try:
        # Starting a server is mostly imports, and migrating the metadata database waits on
        # SQLite: side by side they take the time of the longest (a busy machine is slow at both).
        with ThreadPoolExecutor(len(unique) + 1) as pool:
            started = [pool.submit(server.start, timeout=180) for server in unique]
            for future in [pool.submit(airflow.prepare), *started]:
                future.result()
        stop = threading.Event()
        canceller = threading.Thread(target=cancel_part_way, args=(servers["cancel_llm_batch"], stop))
        canceller.start()
        try:
            conf = {"result_path": (root / "llm-batch-results").as_uri()}
            result = airflow.dags_test(DAG_ID, "2026-11-25", conf, check=False)
        finally:
            stop.set()
            canceller.join()
        output = (result.stdout or "") + (result.stderr or "")
        (root / "dags-test.log").write_text(output)  # to read when a test fails
        yield PeerRun(servers, airflow, output)
    finally:
        for server in unique:
            server.stop()
