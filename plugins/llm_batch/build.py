"""Turn a window's rows into checked, sharded request files and the run's index.

Shards are written one at a time and named by the digest of their bytes, so a rebuild of the
same rows finds the same files (and the same submissions) again."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterator, Sequence
from typing import Any

import orjson
import pyarrow as pa

from llm_batch.batch_rules import LinesBreakBatchRules, check_lines
from llm_batch.digests import content_digest
from llm_batch.handoffs import BuildSummary, BuiltRun, ShardSpec
from llm_batch.job import BatchJob
from llm_batch.pricing import cost_of
from llm_batch.request_lines import Rejection, RequestLine, dedupe, iter_requests
from llm_batch.run_window import RunWindow
from llm_batch.sharding import iter_shards
from llm_batch.storage import run_dir, storage_root, write_bytes, write_table
from llm_batch.warehouse.tables import FAILURE_SCHEMA

log = logging.getLogger(__name__)


def build_run(
    job: BatchJob,
    window: RunWindow,
    rows: pa.Table,
    settled: set[tuple[str, str]],
    *,
    dry_run: bool = False,
    identity_salt: str = "",
) -> BuiltRun:
    """Build, check and shard the requests; write shards, index and rejections; describe them.

    Shards are built, checked and written one at a time, and only their small index rows are
    kept, so memory follows the shard size, not the run. A shard file is named by the digest of
    its bytes; the run's directory by the digests of its shards. ``identity_salt`` (a forced
    run's id) makes the submissions new instead of re-attaching to earlier ones.
    """
    deduplicated, collapsed = dedupe(rows, job.key_column, job.dedupe_order_column)
    rejections: list[Rejection] = []

    def request_lines() -> Iterator[RequestLine]:
        for item in iter_requests(job, deduplicated, settled):
            if isinstance(item, Rejection):
                rejections.append(item)
            else:
                yield item

    root = storage_root(job.storage_url)
    shards_dir = root / job.name / window.label / "shards"
    specs: list[dict[str, Any]] = []
    index_parts: list[pa.Table] = []
    estimated_tokens = 0
    for shard in iter_shards(request_lines(), job.shard_limits):
        _check_lines_like_the_server(job, shard.lines)
        content = shard.content
        digest = content_digest(content)
        path = shards_dir / f"{digest[:40]}.jsonl"
        if not path.exists():
            write_bytes(path, content)
        index_parts.append(_index_table(shard.lines, shard.index))
        estimated_tokens += shard.estimated_tokens
        specs.append(
            {
                "job": job.name,
                "interval_label": window.label,
                "shard": shard.index,
                "attempt": 1,
                "path": str(path),
                "requests": len(shard.lines),
                "bytes": len(content),
                "estimated_tokens": shard.estimated_tokens,
                "digest": digest,
                "identity_salt": identity_salt,
            }
        )
        del shard, content  # let this shard go before the next one fills
    run_digest = content_digest("\n".join([job.fingerprint(), *(s["digest"] for s in specs)]).encode())
    directory = run_dir(root, job.name, window.label, run_digest)
    index_path = directory / "index.parquet"
    write_table(index_path, pa.concat_tables(index_parts) if index_parts else _index_table([], 0))
    rejections_path = directory / "rejections.parquet"
    write_table(rejections_path, rejections_table(job, rejections))
    shards = [ShardSpec(index_path=str(index_path), **spec) for spec in specs]

    requests = sum(spec.requests for spec in shards)
    output_tokens = job.endpoint_strategy.output_token_estimate(job) * requests
    estimate = cost_of(job.model, estimated_tokens, output_tokens)
    summary = BuildSummary(
        window=window.label,
        rows_in=rows.num_rows,
        duplicates_collapsed=collapsed,
        already_settled=rows.num_rows - collapsed - len(rejections) - requests,
        rejected=len(rejections),
        rejection_reasons=dict(Counter(r.reason for r in rejections)),
        requests=requests,
        shards=len(shards),
        estimated_input_tokens=estimated_tokens,
        estimated_cost_usd=estimate.batch_usd,
        estimated_sync_cost_usd=estimate.sync_usd,
        rejections_path=str(rejections_path),
        run_dir=str(directory),
        dry_run=dry_run,
        model=job.model,
    )
    described = {k: v for k, v in summary.to_xcom().items() if not k.endswith(("path", "dir", "version"))}
    log.info("Built %s", orjson.dumps(described).decode())
    return BuiltRun(shards=shards, summary=summary)


def _check_lines_like_the_server(job: BatchJob, lines: Sequence[RequestLine]) -> None:
    """Apply the service's own per-line rules before paying for an upload."""
    breaks = check_lines((line.line for line in lines), job.endpoint)
    if breaks:
        first = breaks[0]
        line = lines[first.line - 1]
        raise LinesBreakBatchRules(
            f"{len(breaks)} request lines break the Batch API's rules; the first, for key {line.key!r} "
            f"(custom_id {line.custom_id!r}): {first.code}: {first.message}"
        )


def _index_table(lines: Sequence[RequestLine], shard: int) -> pa.Table:
    return pa.table(
        {
            "shard": pa.array([shard] * len(lines), pa.int32()),
            "custom_id": pa.array([line.custom_id for line in lines], pa.string()),
            "key": pa.array([line.key for line in lines], pa.string()),
            "row_date": pa.array([line.row_date for line in lines], pa.date32()),
            "request_fingerprint": pa.array([line.request_fingerprint for line in lines], pa.string()),
            "estimated_tokens": pa.array([line.estimated_tokens for line in lines], pa.int64()),
        }
    )


def rejections_table(job: BatchJob, rejections: list[Rejection]) -> pa.Table:
    rows = [
        {
            "key": r.key if r.key is not None else "",
            "row_date": r.row_date,
            "custom_id": None,
            "request_fingerprint": None,
            "stage": "build",
            "reason": r.reason,
            "detail": r.detail,
            "batch_id": None,
            "attempt": 0,
        }
        for r in rejections
    ]
    return pa.Table.from_pylist(rows, schema=FAILURE_SCHEMA)
