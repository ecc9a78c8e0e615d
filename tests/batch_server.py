"""Test helpers around the server process."""

from __future__ import annotations

import time

from openai import OpenAI

from local_batch_api.subprocess_server import FAST_TIMINGS, ServerProcess, free_port

TERMINAL = {"completed", "failed", "expired", "cancelled"}
__all__ = ["FAST_TIMINGS", "TERMINAL", "ServerProcess", "free_port", "wait_for_batch"]


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
