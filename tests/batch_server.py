"""Test helpers around the server process, under the names the tests import."""

from __future__ import annotations

import time
from typing import Any

import anthropic

from include.batch_api_process import FAST_TIMINGS, TERMINAL, ServerProcess, free_port, wait_for_batch

__all__ = [
    "FAST_TIMINGS",
    "TERMINAL",
    "ServerProcess",
    "anthropic_client",
    "free_port",
    "wait_for_batch",
    "wait_for_message_batch",
]


def anthropic_client(server: ServerProcess, **kwargs: Any) -> anthropic.Anthropic:
    """The unmodified anthropic SDK, validating every response strictly, pointed at the server."""
    kwargs.setdefault("max_retries", 0)
    kwargs.setdefault("api_key", server.api_key or "unused")
    return anthropic.Anthropic(
        base_url=f"http://127.0.0.1:{server.port}", _strict_response_validation=True, **kwargs
    )


def wait_for_message_batch(
    client: anthropic.Anthropic, batch_id: str, status: str = "ended", timeout: float = 60.0
):
    """Poll until the Message Batch reaches ``status``; returns the MessageBatch."""
    deadline = time.monotonic() + timeout
    while True:
        batch = client.messages.batches.retrieve(batch_id)
        if batch.processing_status == status:
            return batch
        if time.monotonic() > deadline:
            raise TimeoutError(f"message batch {batch_id} still {batch.processing_status}")
        time.sleep(0.05)
