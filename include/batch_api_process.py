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
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"server exited with {self.process.returncode}: {self.log_path.read_text()[-2000:]}"
                )
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/_local/health", timeout=1).status_code == 200:
                    return self
            except httpx.HTTPError:
                time.sleep(0.05)
        raise TimeoutError(f"server did not start: {self.log_path.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

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
