"""Splitting a run's request lines into batches within the service's limits."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from llm_batch.job import ShardLimits
from llm_batch.request_lines import RequestLine
from llm_batch.retryable import PermanentError
from llm_batch.storage import ObjectStoragePath, read_table

if TYPE_CHECKING:
    from llm_batch.handoffs import ShardSpec


class ShardingError(PermanentError, ValueError):
    """A request line that no shard within the limits can hold."""


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


def iter_shards(lines: Iterable[RequestLine], limits: ShardLimits) -> Iterator[Shard]:
    """Greedy split in arrival order: each shard is yielded as soon as it is full, so a caller
    that writes and drops shards holds one shard's lines at a time."""
    budget = limits.max_enqueued_tokens
    current: list[RequestLine] = []
    size = tokens = index = 0
    for line in lines:
        line_size = len(line.line) + 1
        if line_size > limits.max_bytes:
            raise ShardingError(
                f"request {line.custom_id} alone is {line_size:,} bytes, over {limits.max_bytes:,}"
            )
        if budget is not None and line.estimated_tokens > budget:
            raise ShardingError(
                f"request {line.custom_id} alone is about {line.estimated_tokens:,} tokens, over the "
                f"enqueued-token budget of {budget:,}"
            )
        full = (
            len(current) >= limits.max_requests
            or size + line_size > limits.max_bytes
            or (budget is not None and tokens + line.estimated_tokens > budget)
        )
        if full:
            yield Shard(index, current)
            index += 1
            current, size, tokens = [], 0, 0
        current.append(line)
        size += line_size
        tokens += line.estimated_tokens
    if current:
        yield Shard(index, current)


def shard_lines(path: str) -> Iterator[bytes]:
    """The request lines of a shard file, each ending in a newline, byte for byte as sent."""
    with ObjectStoragePath(path).open("rb") as handle:
        for raw in handle:
            if raw.strip():
                yield raw if raw.endswith(b"\n") else raw + b"\n"


def custom_id_of(line: bytes) -> str:
    return orjson.loads(line)["custom_id"]


def shard_index(spec: ShardSpec) -> pa.Table:
    """The index rows (custom_id, key, request fingerprint, ...) of the requests in the shard's file.

    The run's index holds every shard, a row group each as the build writes it: only the shard's
    own is read, so a shard's task holds its 50k rows, not the run's millions.
    """
    table = read_table(ObjectStoragePath(spec.index_path), filters=[("shard", "==", spec.shard)])
    if spec.attempt > 1:  # a follow-up round holds a subset of its first round's requests
        ids = pa.array([custom_id_of(line) for line in shard_lines(spec.path)], pa.string())
        table = table.filter(pc.is_in(table["custom_id"], ids))
    return table
