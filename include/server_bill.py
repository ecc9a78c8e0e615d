"""What a Batch API server was paid for, read through its own API: uploads and request lines.

For tests and benchmarks that must show a request was paid once: every line of every batch the
server created, by custom_id and the fingerprint of its body (as the pipeline computes it).
"""

from __future__ import annotations

import hashlib

import orjson
from openai import OpenAI

from llm_batch.pricing import cost_of, total


def paid_requests(client: OpenAI) -> list[tuple[str, str]]:
    """(custom_id, body fingerprint) of every request line of every batch the server created."""
    paid = []
    for batch in client.batches.list(limit=100):
        for raw in client.files.content(batch.input_file_id).content.splitlines():
            if raw.strip():
                line = orjson.loads(raw)
                body = orjson.dumps(line["body"], option=orjson.OPT_SORT_KEYS)
                paid.append((line["custom_id"], hashlib.sha256(body).hexdigest()[:32]))
    return paid


def batch_uploads(client: OpenAI) -> int:
    """How many batch input files were uploaded."""
    return sum(1 for f in client.files.list() if f.purpose == "batch")


def created_batches(client: OpenAI) -> int:
    return sum(1 for _ in client.batches.list(limit=100))


def billed_usd(client: OpenAI) -> float | None:
    """What the server's batches cost at batch prices, from the usage each batch reports."""
    return total(
        [
            cost_of(batch.model or "", batch.usage.input_tokens, batch.usage.output_tokens).batch_usd
            for batch in client.batches.list(limit=100)
            if batch.usage is not None
        ]
    )
