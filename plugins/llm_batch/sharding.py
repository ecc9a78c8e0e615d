"""Splitting a run's request lines into batches within the service's limits."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass

from llm_batch.job import ShardLimits
from llm_batch.request_lines import RequestLine


class ShardingError(ValueError):
    pass


@dataclass(frozen=True)
class Shard:
    index: int
    lines: Sequence[RequestLine]

    @property
    def content(self) -> bytes:
        return b"".join(line.line + b"\n" for line in self.lines)

    @property
    def estimated_tokens(self) -> int:
        return sum(line.estimated_tokens for line in self.lines)


def split_into_shards(lines: Sequence[RequestLine], limits: ShardLimits) -> list[Shard]:
    """Greedy split in custom_id order: each shard stays within requests, bytes and token budget."""
    shards: list[Shard] = []
    start, size, tokens = 0, 0, 0
    for i, line in enumerate(lines):
        line_size = len(line.line) + 1
        if line_size > limits.max_bytes:
            raise ShardingError(
                f"request {line.custom_id} alone is {line_size:,} bytes, over {limits.max_bytes:,}"
            )
        budget = limits.max_enqueued_tokens
        if budget is not None and line.estimated_tokens > budget:
            raise ShardingError(
                f"request {line.custom_id} alone is about {line.estimated_tokens:,} tokens, over the "
                f"enqueued-token budget of {budget:,}"
            )
        full = (
            i - start >= limits.max_requests
            or size + line_size > limits.max_bytes
            or (budget is not None and tokens + line.estimated_tokens > budget)
        )
        if full:
            shards.append(Shard(len(shards), lines[start:i]))
            start, size, tokens = i, 0, 0
        size += line_size
        tokens += line.estimated_tokens
    if start < len(lines):
        shards.append(Shard(len(shards), lines[start:]))
    return shards


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()
