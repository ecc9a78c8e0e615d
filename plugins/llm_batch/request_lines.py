"""Source rows to Batch API request lines, deterministically, with every rejected row explained.

The same rows, job and parameters always give byte-identical lines, so a re-run computes the same
shard fingerprints and re-attaches to batches it already paid for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
import pyarrow as pa
import pyarrow.compute as pc

from llm_batch.job import BatchJob
from llm_batch.models import context_window, request_tokens
from llm_batch.prompts import PromptError

_SAFE_ID = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")


@dataclass(frozen=True, slots=True)
class RequestLine:
    custom_id: str
    key: str
    row_date: Any
    line: bytes  # one JSONL line, newline excluded
    request_fingerprint: str
    estimated_tokens: int


@dataclass(frozen=True, slots=True)
class Rejection:
    key: str | None
    row_date: Any
    reason: str
    detail: str


@dataclass
class BuiltRequests:
    lines: list[RequestLine]
    rejections: list[Rejection]
    duplicates_collapsed: int


def custom_id_for(key: str, safe: re.Pattern[str] = _SAFE_ID) -> str:
    """The key itself when it is a safe identifier (by the endpoint's rule ``safe``), else a digest
    of it (``h-`` never passes as safe)."""
    if safe.match(key) and not key.startswith("h-"):
        return key
    return "h-" + hashlib.sha256(key.encode()).hexdigest()[:32]


def dedupe(rows: pa.Table, key_column: str, order_column: str | None) -> tuple[pa.Table, int]:
    """Keep one row per key: the greatest ``order_column`` value, the last row on ties."""
    if rows.num_rows == 0:
        return rows, 0
    indexed = rows.append_column("__row", pa.array(range(rows.num_rows), pa.int64()))
    sort_keys = [(key_column, "ascending")]
    if order_column:
        sort_keys.append((order_column, "descending"))
    sort_keys.append(("__row", "descending"))
    ordered = indexed.sort_by(sort_keys)
    keys = ordered.column(key_column)
    if keys.null_count:
        ordered = ordered.filter(pc.is_valid(keys))  # null keys are rejected by the builder instead
    first = _first_of_runs(ordered.column(key_column))
    kept = ordered.filter(first).sort_by("__row").drop_columns(["__row"])
    null_keys = rows.filter(pc.is_null(rows.column(key_column)))
    return pa.concat_tables([kept, null_keys]), rows.num_rows - kept.num_rows - null_keys.num_rows


def _first_of_runs(keys: pa.ChunkedArray) -> pa.Array:
    values = keys.combine_chunks()
    if len(values) == 0:
        return pa.array([], pa.bool_())
    previous = pa.concat_arrays([pa.array([None], values.type), values.slice(0, len(values) - 1)])
    return pc.fill_null(pc.not_equal(values, previous), True)


def build_requests(
    job: BatchJob, rows: pa.Table, answered: set[tuple[str, str]] | None = None
) -> BuiltRequests:
    """All request lines and rejections at once; :func:`iter_requests` streams them instead."""
    rows, collapsed = dedupe(rows, job.key_column, job.dedupe_order_column)
    lines: list[RequestLine] = []
    rejections: list[Rejection] = []
    for item in iter_requests(job, rows, answered):
        (lines if isinstance(item, RequestLine) else rejections).append(item)
    return BuiltRequests(lines, rejections, collapsed)


def iter_requests(
    job: BatchJob, rows: pa.Table, answered: set[tuple[str, str]] | None = None, *, chunk_rows: int = 5_000
) -> Iterator[RequestLine | Rejection]:
    """Request lines (and rejections) in custom_id order, a slice of the rows at a time.

    ``rows`` must already be deduplicated. Only the columns the job reads are turned into Python
    objects, one slice at a time, so memory follows the slice, not the run.
    """
    ordered = _in_custom_id_order(rows, job.key_column, job.endpoint_strategy.custom_id_pattern)
    return iter_ordered_requests(job, ordered, answered, chunk_rows=chunk_rows)


def iter_ordered_requests(
    job: BatchJob, rows: pa.Table, answered: set[tuple[str, str]] | None = None, *, chunk_rows: int = 5_000
) -> Iterator[RequestLine | Rejection]:
    """Request lines (and rejections) of ``rows`` already deduplicated and in custom_id order
    (rows without a key last), in that order; see :func:`iter_requests`."""
    strategy = job.endpoint_strategy
    limit = context_window(job.model) - strategy.output_token_reserve
    body_of = strategy.body_builder(job)
    url_prefix = b',"method":"POST","url":' + orjson.dumps(job.endpoint) + b',"body":'
    safe_id = strategy.custom_id_pattern
    columns = _columns_read(job, rows.column_names)
    for batch in rows.select(columns).to_batches(max_chunksize=chunk_rows):
        for row in batch.to_pylist():
            key, row_date = row[job.key_column], row[job.date_column]
            problem = _row_problem(job, row)
            if problem:
                yield Rejection(None if key is None else str(key), row_date, *problem)
                continue
            key = str(key)
            try:
                body, text = body_of(row)
            except PromptError as exc:
                yield Rejection(key, row_date, "invalid_input", str(exc))
                continue
            tokens = request_tokens(text)
            if tokens > limit:
                detail = f"about {tokens:,} tokens; {job.model} takes {limit:,}"
                yield Rejection(key, row_date, "input_too_long", detail)
                continue
            body_bytes = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
            fingerprint = hashlib.sha256(body_bytes).hexdigest()[:32]
            if answered and (key, fingerprint) in answered:
                continue
            custom_id = custom_id_for(key, safe_id)
            line = b'{"custom_id":' + orjson.dumps(custom_id) + url_prefix + body_bytes + b"}"
            yield RequestLine(custom_id, key, row_date, line, fingerprint, tokens)


def _in_custom_id_order(rows: pa.Table, key_column: str, safe_id: re.Pattern[str]) -> pa.Table:
    keys = rows.column(key_column).to_pylist()
    ids = pa.array([None if k is None else custom_id_for(str(k), safe_id) for k in keys], pa.string())
    return rows.append_column("__custom_id", ids).sort_by([("__custom_id", "ascending")])


def _columns_read(job: BatchJob, available: list[str]) -> list[str]:
    wanted = [job.key_column, job.date_column, *job.required_columns]
    if job.input_column:
        wanted.append(job.input_column)
    if job.prompt:
        wanted.extend(job.prompt.fields)
    return [name for name in dict.fromkeys(wanted) if name in available]


def _row_problem(job: BatchJob, row: dict[str, Any]) -> tuple[str, str] | None:
    if row.get(job.key_column) is None:
        return "missing_key", f"{job.key_column} is null"
    required = job.required_columns or ((job.input_column,) if job.input_column else ())
    for column in required:
        value = row.get(column)
        if value is None:
            return "null_input", f"{column} is null"
        if isinstance(value, str) and not value.strip():
            return "empty_input", f"{column} is blank"
    return None
