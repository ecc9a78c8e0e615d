"""An S3-compatible object store on this machine: moto's server as a process of its own.

For the tests of run files on S3 and ``make up-celery``, whose workers share nothing but it and
the databases. Run files go through ``ObjectStoragePath``, the Amazon provider's filesystem and
s3fs over HTTP, as on a real object store. The store is reached through an Airflow ``aws``
connection, and the storage URL names that connection (``s3://<conn_id>@<bucket>/...``), as a
deployment sets it. moto keeps its objects in memory: a restarted server has lost them.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import boto3

from include.batch_api_process import free_port, start_until_healthy, stop_process

CONN_ID = "llm_run_files"
BUCKET = "llm-batch-runs"
# moto accepts any key; these only have to be present so that no anonymous access is tried.
ACCESS_KEY, SECRET_KEY, REGION = "test-access-key", "test-secret-key", "us-east-1"


@dataclass(frozen=True)
class ObjectStore:
    """A bucket on a running S3-compatible server, and the Airflow connection that reaches it."""

    endpoint_url: str
    bucket: str = BUCKET
    conn_id: str = CONN_ID

    @property
    def connection(self) -> dict[str, object]:
        """The Airflow ``aws`` connection to the server: the keys, and its URL as ``endpoint_url``."""
        return {
            "conn_type": "aws",
            "login": ACCESS_KEY,
            "password": SECRET_KEY,
            "extra": {"endpoint_url": self.endpoint_url, "region_name": REGION},
        }

    def url(self, prefix: str) -> str:
        """The storage URL of ``prefix`` in the bucket, naming the connection to reach it with."""
        return f"s3://{self.conn_id}@{self.bucket}/{prefix}"

    def key(self, url: str) -> str:
        """The object key a storage URL of this bucket names."""
        return url.removeprefix(f"s3://{self.conn_id}@{self.bucket}/")

    def client(self):
        return boto3.client(
            "s3",
            endpoint_url=self.endpoint_url,
            aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            region_name=REGION,
        )

    def connection_env(self) -> dict[str, str]:
        """The variable that defines the connection, for a process's environment."""
        return {f"AIRFLOW_CONN_{self.conn_id.upper()}": json.dumps(self.connection)}

    def keys(self, prefix: str) -> list[str]:
        """Every object under ``prefix``, read straight from the server (no filesystem cache)."""
        pages = self.client().get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=prefix)
        return sorted(item["Key"] for page in pages for item in page.get("Contents", ()))


class MotoServer:
    """``moto.server`` as a subprocess; its state lives in its memory, so it is never restarted."""

    def __init__(self, log_path: Path) -> None:
        self.port = free_port()
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 30.0) -> MotoServer:
        health = f"{self.endpoint_url}/moto-api/"
        self.process = start_until_healthy(moto_command(self.port), health, self.log_path, timeout=timeout)
        return self

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)


def moto_command(port: int) -> list[str]:
    return [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)]
