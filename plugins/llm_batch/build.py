"""Turn a window's rows into checked, sharded request files and the run's index.

Shards are written one at a time and named by the digest of their bytes, so a rebuild of the
same rows finds the same files (and the same submissions) again."""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Self

import orjson
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from llm_batch.batch_rules import LinesBreakBatchRules, check_lines
from llm_batch.collapsed_rows import COPIES, CollapsedRows
from llm_batch.digests import content_digest
from llm_batch.handoffs import BuildSummary, BuiltRun, ShardSpec
from llm_batch.job import BatchJob
from llm_batch.pricing import cost_of
from llm_batch.request_lines import Rejection, RequestLine, iter_ordered_requests
from llm_batch.run_window import RunWindow
from llm_batch.settled import drop_superseded, settled_requests
from llm_batch.sharding import iter_shards
from llm_batch.storage import run_dir, storage_root, write_bytes, write_file
from llm_batch.warehouse.tables import FAILURE_SCHEMA

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)

OpenWarehouse = Callable[[], "AbstractContextManager[Warehouse]"]


def build_run(
    job: BatchJob,
    window: RunWindow,
    rows: CollapsedRows | pa.Table,
    *,
    warehouse: OpenWarehouse | None = None,
    skip_settled: bool = True,
    run_id: str | None = None,
    dry_run: bool = False,
    identity_salt: str = "",
) -> BuiltRun:
    """Build, check and shard the requests; write shards, index and rejections; describe them.

    ``rows`` are the window's source rows, collapsed to one per key in custom_id order
    (:class:`CollapsedRows`; a table is collapsed first). With ``warehouse`` (it opens one), rows
    whose key has a newer version stored are dropped and, with ``skip_settled``, requests already
    answered or in flight in a run other than ``run_id``: both asked one chunk of keys at a time,
    the warehouse opened for each chunk only, so a DuckDB file is not held while lines are built.

    Shards are built, checked and written one at a time; index rows and rejections go to files
    as they come, so memory follows the chunk and the shard, not the run. A shard file is named
    by the digest of its bytes; the run's directory by the digests of its shards.
    ``identity_salt`` (a forced run's id) makes the submissions new instead of re-attaching.
    """
    if isinstance(rows, pa.Table):
        with CollapsedRows(job) as collapsed:
            collapsed.add(rows.to_batches())
            return build_run(
                job,
                window,
                collapsed,
                warehouse=warehouse,
                skip_settled=skip_settled,
                run_id=run_id,
                dry_run=dry_run,
                identity_salt=identity_salt,
            )
    tally = _Tally(rows_in=rows.rows_in, duplicates_collapsed=rows.duplicates_collapsed)
    rejections = _RejectionsFile(job, rows.scratch / "rejections.parquet")

    def request_lines() -> Iterator[RequestLine]:
        for chunk in rows.chunks():
            fresh, settled = _unsettled(job, window, chunk, warehouse, skip_settled, run_id, tally)
            for item in iter_ordered_requests(job, fresh, settled):
                if isinstance(item, Rejection):
                    rejections.add(item)
                else:
                    yield item

    root = storage_root(job.storage_url)
    shards_dir = root / job.name / window.label / "shards"
    specs: list[dict[str, Any]] = []
    estimated_tokens = 0
    index_spool = rows.scratch / "index.parquet"
    with rejections, pq.ParquetWriter(index_spool, INDEX_SCHEMA, compression="zstd") as index:
        for shard in iter_shards(request_lines(), job.shard_limits):
            _check_lines_like_the_server(job, shard.lines)
            content = shard.content
            digest = content_digest(content)
            path = shards_dir / f"{digest[:40]}.jsonl"
            if not path.exists():
                write_bytes(path, content)
            index.write_table(_index_table(shard.lines, shard.index))
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
    write_file(index_path, index_spool)
    rejections_path = directory / "rejections.parquet"
    write_file(rejections_path, rejections.path)
    shards = [ShardSpec(index_path=str(index_path), **spec) for spec in specs]

    requests = sum(spec.requests for spec in shards)
    output_tokens = job.endpoint_strategy.output_token_estimate(job) * requests
    estimate = cost_of(job.model, estimated_tokens, output_tokens)
    summary = BuildSummary(
        window=window.label,
        rows_in=tally.rows_in,
        duplicates_collapsed=tally.duplicates_collapsed,
        already_settled=tally.rows_in - tally.duplicates_collapsed - rejections.count - requests,
        rejected=rejections.count,
        rejection_reasons=dict(rejections.reasons),
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


@dataclass
class _Tally:
    """The summary's row counts: superseded rows leave them, as if never extracted."""

    rows_in: int
    duplicates_collapsed: int


def _unsettled(
    job: BatchJob,
    window: RunWindow,
    chunk: pa.Table,
    open_warehouse: OpenWarehouse | None,
    skip_settled: bool,
    run_id: str | None,
    tally: _Tally,
) -> tuple[pa.Table, set[tuple[str, str]]]:
    """The chunk's rows whose key has no newer version stored, and the requests not to send of them.

    A kept row is the version of its key this run would send, so it alone is compared with the
    stored answer: older rows of the key in the window never hide a newer one.
    """
    if open_warehouse is None:
        return chunk, set()
    with open_warehouse() as warehouse:
        fresh = drop_superseded(job, chunk, warehouse)
        settled = (
            settled_requests(job, window, warehouse, rows=fresh, run_id=run_id) if skip_settled else set()
        )
    if fresh.num_rows < chunk.num_rows:
        copies = pc.sum(chunk.column(COPIES)).as_py() - (pc.sum(fresh.column(COPIES)).as_py() or 0)
        tally.rows_in -= copies
        tally.duplicates_collapsed -= copies - (chunk.num_rows - fresh.num_rows)
    return fresh, settled


class _RejectionsFile:
    """The build's rejections, written to a Parquet file a few thousand at a time, and counted."""

    def __init__(self, job: BatchJob, path: Path, *, buffered: int = 10_000) -> None:
        self.job, self.path, self.buffered = job, path, buffered
        self.count = 0
        self.reasons: Counter[str] = Counter()
        self._pending: list[Rejection] = []
        self._writer = pq.ParquetWriter(path, FAILURE_SCHEMA, compression="zstd")

    def add(self, rejection: Rejection) -> None:
        self.count += 1
        self.reasons[rejection.reason] += 1
        self._pending.append(rejection)
        if len(self._pending) >= self.buffered:
            self._flush()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._flush()
        self._writer.close()

    def _flush(self) -> None:
        if self._pending:
            self._writer.write_table(rejections_table(self.job, self._pending))
            self._pending = []


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


INDEX_SCHEMA = pa.schema(
    [
        ("shard", pa.int32()),
        ("custom_id", pa.string()),
        ("key", pa.string()),
        ("row_date", pa.date32()),
        ("request_fingerprint", pa.string()),
        ("estimated_tokens", pa.int64()),
    ]
)


def _index_table(lines: Sequence[RequestLine], shard: int) -> pa.Table:
    return pa.table(
        [
            [shard] * len(lines),
            [line.custom_id for line in lines],
            [line.key for line in lines],
            [line.row_date for line in lines],
            [line.request_fingerprint for line in lines],
            [line.estimated_tokens for line in lines],
        ],
        schema=INDEX_SCHEMA,
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
