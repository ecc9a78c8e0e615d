"""A self-contained Airflow environment for the demo and the tests: SQLite metadata, the
project's DAGs and plugins, and connections to the local Batch API server and DuckDB files.

Everything lives under one directory, so runs never touch a user's own ``~/airflow``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
PROVIDERS = ("openai", "azure", "anthropic")
AZURE_API_VERSION = "2024-10-21"
# The local server's dialects as connections of their own, whichever one `openai_default` speaks.
DIALECT_CONNECTIONS = {
    "openai": "local_openai",
    "azure": "local_azure_openai",
    "anthropic": "local_anthropic",
}


@dataclass
class LocalAirflow:
    root: Path  # holds airflow/ (home), source.duckdb, warehouse.duckdb, files/
    openai_base_url: str
    openai_api_key: str
    poll_interval_seconds: float = 1.0
    extra_env: dict[str, str] = field(default_factory=dict)
    airflow_home: Path | None = None  # default: <root>/airflow
    provider: str = "openai"  # which dialect the job's connection speaks: openai, azure or anthropic

    @property
    def home(self) -> Path:
        return self.airflow_home or self.root / "airflow"

    @property
    def source_db(self) -> Path:
        return self.root / "source.duckdb"

    @property
    def warehouse_db(self) -> Path:
        return self.root / "warehouse.duckdb"

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("AIRFLOW", "LLM_BATCH_"))}
        env.update(
            {
                "AIRFLOW_HOME": str(self.home),
                # Named, not left to airflow.cfg: a home copied from a migrated template keeps the
                # template's path there, and every copy would share the template's database.
                "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{self.home / 'airflow.db'}",
                "AIRFLOW__CORE__DAGS_FOLDER": str(PROJECT / "dags"),
                "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
                "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
                "AIRFLOW__CORE__DAGBAG_IMPORT_TIMEOUT": "60",
                "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
                "AIRFLOW_CONN_OPENAI_DEFAULT": json.dumps(self.batch_connection()),
                # One connection per dialect besides, so a run can move vendor by its `batch_conn_id`.
                **{
                    f"AIRFLOW_CONN_{conn_id.upper()}": json.dumps(self.batch_connection(provider))
                    for provider, conn_id in DIALECT_CONNECTIONS.items()
                },
                "AIRFLOW_CONN_LLM_SOURCE": json.dumps({"conn_type": "duckdb", "host": str(self.source_db)}),
                "AIRFLOW_CONN_LLM_WAREHOUSE": json.dumps(
                    {"conn_type": "duckdb", "host": str(self.warehouse_db)}
                ),
                "LLM_BATCH_STORAGE_URL": (self.root / "files").resolve().as_uri(),
                "LLM_BATCH_POLL_INTERVAL_SECONDS": str(self.poll_interval_seconds),
                "PYTHONPATH": os.pathsep.join([str(PROJECT), str(PROJECT / "plugins")]),
            }
        )
        env.update(self.extra_env)
        return env

    def batch_connection(self, provider: str | None = None) -> dict[str, object]:
        """The job's batch connection (``openai_default``) in ``provider``'s dialect (the chosen one by default).

        The local server speaks all three on one port: OpenAI's under ``/v1``, Azure's classic
        data plane under ``/openai`` (the key in ``api-key``), Anthropic's Message Batches at the root.
        """
        provider = provider or self.provider
        root = self.openai_base_url.removesuffix("/").removesuffix("/v1")
        if provider == "azure":
            extra = {"api_version": AZURE_API_VERSION}
            return {"conn_type": "openai", "host": root, "password": self.openai_api_key, "extra": extra}
        if provider == "anthropic":
            return {"conn_type": "anthropic", "host": root, "password": self.openai_api_key}
        return {"conn_type": "openai", "host": self.openai_base_url, "password": self.openai_api_key}

    def airflow(
        self, *args: str, check: bool = True, capture: bool = True
    ) -> subprocess.CompletedProcess[str]:
        command = [str(Path(sys.executable).parent / "airflow"), *args]
        result = subprocess.run(command, env=self.env(), text=True, capture_output=capture, check=False)
        if check and result.returncode != 0:
            raise RuntimeError(
                f"airflow {' '.join(args)} exited {result.returncode}\n{(result.stdout or '')[-4000:]}"
                f"\n{(result.stderr or '')[-4000:]}"
            )
        return result

    def prepare(self) -> None:
        """Create the metadata database (once) and the warehouse pool."""
        self.home.mkdir(parents=True, exist_ok=True)
        if not (self.home / "airflow.db").exists():
            self.airflow("db", "migrate")
        self.airflow("pools", "set", "llm_warehouse", "1", "DuckDB admits one writing process")

    def dags_test(self, dag_id: str, logical_date: str, conf: dict | None = None, **kwargs):
        args = ["dags", "test", dag_id, logical_date]
        if conf:
            args += ["--conf", json.dumps(conf)]
        return self.airflow(*args, **kwargs)
