"""The local Batch API server as a real subprocess on a free port, seen from the client side.

For the demos, benchmarks and tests: start, stop or kill the server, get a client, wait on a batch.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from openai import OpenAI

TERMINAL = {"completed", "failed", "expired", "cancelled"}
FAST_TIMINGS = (
    "--validating-seconds",
    "0.05",
    "--finalizing-seconds",
    "0.05",
    "--cancelling-seconds",
    "0.05",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class ServerProcess:
    """One server process; ``kill`` and ``start`` again keep its port and data directory."""

    def __init__(
        self,
        data_dir: Path,
        *flags: str,
        api_key: str = "test-key",
        env: dict[str, str] | None = None,
        log_path: Path | None = None,
    ):
        self.data_dir = data_dir
        self.env = {**os.environ, **(env or {})}
        self.flags = flags
        self.api_key = api_key
        self.port = free_port()
        self.log_path = log_path or data_dir.parent / f"{data_dir.name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def start(self, timeout: float = 30.0) -> ServerProcess:
        command = [sys.executable, "-m", "local_batch_api", "--port", str(self.port)]
        command += ["--data-dir", str(self.data_dir), *self.flags]
        if self.api_key:
            command += ["--api-key", self.api_key]
        health = f"http://127.0.0.1:{self.port}/_local/health"
        self.process = start_until_healthy(command, health, self.log_path, env=self.env, timeout=timeout)
        return self

    def stop(self) -> None:
        if self.process:
            stop_process(self.process)

    def kill(self) -> None:
        """SIGKILL: no shutdown hook runs, as in a crash."""
        assert self.process is not None
        os.kill(self.process.pid, signal.SIGKILL)
        self.process.wait()

    def client(self, **kwargs: Any) -> OpenAI:
        kwargs.setdefault("max_retries", 0)
        return OpenAI(
            base_url=self.base_url,
            api_key=self.api_key or "unused",
            _strict_response_validation=True,
            **kwargs,
        )

    def set_faults(self, **faults: Any) -> dict[str, Any]:
        response = httpx.put(
            f"http://127.0.0.1:{self.port}/_local/faults",
            json=faults,
            headers={"authorization": f"Bearer {self.api_key}"},
        )
        response.raise_for_status()
        return response.json()


def start_until_healthy(
    command: list[str],
    health_url: str,
    log_path: Path,
    *,
    env: dict[str, str] | None = None,
    timeout: float = 30.0,
) -> subprocess.Popen[bytes]:
    """Start a server process logging to ``log_path``; return once ``health_url`` answers 200.

    A process that exits first, or never answers, fails the start with the tail of its log.
    """
    with log_path.open("ab") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"server exited with {process.returncode}: {log_path.read_text()[-2000:]}")
        try:
            if httpx.get(health_url, timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.05)
    stop_process(process)
    raise TimeoutError(f"server did not start: {log_path.read_text()[-2000:]}")


def stop_process(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM, then SIGKILL if it is not gone within 10 s."""
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def wait_for_batch(client: OpenAI, batch_id: str, statuses=TERMINAL, timeout: float = 60.0):
    """Poll until the batch reaches one of ``statuses``; returns the Batch."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.batches.retrieve(batch_id)
        if batch.status in statuses:
            return batch
        if time.monotonic() > deadline:
            raise TimeoutError(f"batch {batch_id} still {batch.status}")
        time.sleep(0.05)
