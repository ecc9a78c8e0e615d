"""Whole runs whose files live on an S3 server: in one process, and split over two workers that
share nothing but the object store, the warehouse and the batch API."""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from include.object_store import ObjectStore
from include.sample_data.reviews import generate_reviews
from include.window_run import WindowRun
from llm_batch.run_window import RunWindow
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import WarehouseAt, store_source
from tests.llm_batch.vendors import backend_on
from tests.postgres import TEST_DSN

PROJECT = Path(__file__).resolve().parents[3]
DAY = dt.date(2026, 3, 31)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
SOURCE = generate_reviews(DAY, 1, per_day=(30, 30))
ANSWERABLE = 28  # two sample rows have no text


def run_paths(*handoffs: Any) -> list[str]:
    """Every file or directory a run's hand-offs name (``*_path``, ``path``, ``run_dir``)."""
    found: list[str] = []

    def visit(value: Any, key: str = "") -> None:
        if isinstance(value, dict):
            for name, item in value.items():
                visit(item, name)
        elif isinstance(value, list):
            for item in value:
                visit(item, key)
        elif isinstance(value, str) and (key in ("path", "run_dir") or key.endswith("_path")):
            found.append(value)

    visit(list(handoffs))
    return found


def test_a_run_with_its_files_on_s3_lands_every_row_through_a_retry_round(
    start_server, tmp_path, object_store: ObjectStore, s3_prefix
):
    warehouse = WarehouseAt("duckdb", str(tmp_path / "warehouse.duckdb"))
    with warehouse() as opened:
        store_source(opened, SOURCE)
    server = start_server()
    job = sentiment_job(storage_url=object_store.url(s3_prefix))
    run = WindowRun(job, WINDOW, warehouse, backend_on("openai", server), "scheduled__s3").build()
    server.set_faults(line_failure_share=0.3, line_failure_status=500, seed=3, limit_batches=1)

    run.submit().wait_and_collect()
    (first,) = run.collected
    assert first.retries > 0 and run.specs  # the next round's shard was written to the bucket
    while run.specs:
        run.submit().wait_and_collect()
    loaded = run.load()

    assert (loaded.results, loaded.failures) == (ANSWERABLE, 2)
    with warehouse() as opened:
        rows = opened.read_arrow("SELECT review_id FROM review_sentiment").to_pylist()
    assert len({row["review_id"] for row in rows}) == len(rows) == ANSWERABLE
    paths = run_paths(run.summary.to_xcom(), *(outcome.to_xcom() for outcome in run.collected))
    assert paths and all(path.startswith(f"{object_store.url(s3_prefix)}/") for path in paths)
    keys = object_store.keys(s3_prefix)
    assert {key.rsplit("/", 1)[1] for key in keys} >= {"index.parquet", "rejections.parquet"}
    assert sum(key.endswith(".jsonl") for key in keys) >= 2  # the first round's shard and the retry's
    files = [path for path in paths if path != run.summary.run_dir]
    assert files and {object_store.key(path) for path in files} <= set(keys)


@pytest.fixture
def pg_schema_warehouse() -> Iterator[tuple[WarehouseAt, dict[str, Any]]]:
    """A fresh PostgreSQL schema holding the source rows, and the Airflow ``postgres`` connection to it."""
    schema = f"s3_workers_{uuid.uuid4().hex[:12]}"
    options = f"-c search_path={schema}"
    params = conninfo_to_dict(TEST_DSN)
    connection = {
        "conn_type": "postgres",
        "host": params.get("host"),
        "port": int(params.get("port") or 5432),
        "login": params.get("user"),
        "password": params.get("password"),
        "schema": params.get("dbname"),  # the database, in Airflow's terms
        "extra": {"options": options},
    }
    warehouse = WarehouseAt("postgres", make_conninfo(TEST_DSN, options=options))
    with psycopg.connect(TEST_DSN, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            with warehouse() as opened:
                store_source(opened, SOURCE)
            yield warehouse, connection
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


class Worker:
    """A machine of its own: its own AIRFLOW_HOME and temp dir, and only the shared services' connections."""

    def __init__(self, root: Path, connections: dict[str, dict[str, Any]], storage_url: str) -> None:
        self.root = root
        (root / "airflow").mkdir(parents=True)
        (root / "tmp").mkdir()
        inherited = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AIRFLOW", "LLM_BATCH", "TMP", "TEMP"))
        }
        self.env = {
            **inherited,
            "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "plugins")]),
            "AIRFLOW_HOME": str(root / "airflow"),
            "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
            "TMPDIR": str(root / "tmp"),
            "LLM_BATCH_STORAGE_URL": storage_url,
            **{f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(conn) for conn_id, conn in connections.items()},
        }

    def run(self, step: str, handoffs: dict[str, Any]) -> dict[str, Any]:
        out = self.root / f"{step}.json"
        done = subprocess.run(
            [sys.executable, "-m", "tests.llm_batch.storage.worker", step, str(out)],
            input=json.dumps(handoffs).encode(),
            cwd=self.root,
            env=self.env,
            capture_output=True,
            timeout=240,
        )
        assert done.returncode == 0, done.stderr.decode()[-3000:] + done.stdout.decode()[-3000:]
        return json.loads(out.read_text())

    def run_files(self) -> list[Path]:
        """Files of the run kept on this worker's disk: there should be none."""
        return [
            p
            for p in self.root.rglob("*")
            if p.suffix in (".jsonl", ".parquet") or p.name == "llm_batch_files"
        ]


@pytest.mark.slow
def test_shards_built_on_one_worker_are_submitted_collected_and_loaded_on_another(
    start_server, tmp_path, object_store: ObjectStore, s3_prefix, pg_schema_warehouse
):
    server = start_server()
    warehouse, warehouse_connection = pg_schema_warehouse
    connections = {
        "llm_warehouse": warehouse_connection,
        "llm_source": warehouse_connection,
        "openai_default": {"conn_type": "openai", "host": server.base_url, "password": server.api_key},
        object_store.conn_id: object_store.connection,
    }
    storage_url = object_store.url(s3_prefix)
    a = Worker(tmp_path / "worker-a", connections, storage_url)
    b = Worker(tmp_path / "worker-b", connections, storage_url)
    run = {
        "start": WINDOW.start.isoformat(),
        "end": WINDOW.end.isoformat(),
        "run_id": "scheduled__two_workers",
    }
    server.set_faults(line_failure_share=0.3, line_failure_status=500, seed=3, limit_batches=1)

    built = a.run("build", run)
    rounds = b.run("rounds", {**run, **built})
    landed = a.run("load", {**run, **built, "shards": [], **rounds})  # a fresh process on the first machine

    assert landed["load"]["results"] == ANSWERABLE and landed["load"]["failures"] == 2
    assert landed["report"]["rows_in"] == len(SOURCE) and landed["report"]["rounds"] == 2
    with warehouse() as opened:
        rows = opened.read_arrow("SELECT review_id FROM review_sentiment").to_pylist()
        ledger = opened.read_arrow("SELECT * FROM llm_batch_ledger").to_pylist()
    assert len({row["review_id"] for row in rows}) == len(rows) == ANSWERABLE
    paths = run_paths(built, rounds)
    assert paths and all(path.startswith(f"{storage_url}/") for path in paths)
    handed_over = json.dumps([built, rounds, landed, ledger], default=str)
    assert str(a.root) not in handed_over and str(b.root) not in handed_over
    assert a.run_files() == [] and b.run_files() == []
