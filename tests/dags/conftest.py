"""Fixtures of the whole-DAG runs: a stack per test (its own local server, warehouse and
metadata database, copied from one migrated template), on the connection of the vendor it names."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import duckdb
import pytest

from include.local_airflow import LocalAirflow
from tests.dags.stacks import SOURCE, Stack


@pytest.fixture(scope="session")
def migrated_home(tmp_path_factory) -> Path:
    template = LocalAirflow(tmp_path_factory.mktemp("airflow-template"), "http://unused/v1", "unused")
    template.prepare()
    return template.home


@pytest.fixture
def make_stack(start_server, tmp_path, migrated_home) -> Callable[..., Stack]:
    """``make_stack(vendor, *server_flags)``: a stack whose job's connection speaks that vendor."""

    def make(vendor: str = "openai", *flags: str) -> Stack:
        server = start_server("--validating-seconds", "0.5", *flags, name="batch-api")
        home = tmp_path / "airflow"
        shutil.copytree(migrated_home, home, ignore=shutil.ignore_patterns("logs"))
        airflow = LocalAirflow(
            tmp_path,
            server.base_url,
            server.api_key,
            poll_interval_seconds=0.5,
            extra_env={"LLM_BATCH_RETRY_DELAY_SECONDS": "1"},
            airflow_home=home,
            provider=vendor,
        )
        with duckdb.connect(str(airflow.source_db)) as db:
            db.register("generated", SOURCE)
            db.execute("CREATE TABLE reviews AS SELECT * FROM generated")
        return Stack(server, airflow)

    return make


@pytest.fixture
def stack(make_stack) -> Stack:
    return make_stack()
