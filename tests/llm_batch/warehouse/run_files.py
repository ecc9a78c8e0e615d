"""A collected run as the load step finds it: shards' result and failure files, written directly."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pyarrow as pa

from llm_batch.handoffs import ShardOutcome
from llm_batch.job import BatchJob
from llm_batch.storage import ObjectStoragePath, write_table
from llm_batch.warehouse.tables import FAILURE_SCHEMA, results_schema

DAY = dt.date(2026, 11, 22)


def result_rows(job: BatchJob, keys: list[str | None], label: str, day: dt.date = DAY) -> pa.Table:
    """Answers for ``keys``, all labelled ``label``; ``confidence`` tells the keys apart."""
    rows = [
        {"key": key, "row_date": day, "label": label, "confidence": i / 1000, "custom_id": f"c-{key}",
         "request_fingerprint": f"fp-{key}", "vendor": "openai", "model": "m", "batch_id": "b",
         "input_tokens": 10, "output_tokens": 2, "answered_at": dt.datetime(2026, 11, 23)}
        for i, key in enumerate(keys)
    ]  # fmt: skip
    return pa.Table.from_pylist(rows, results_schema(job))


def failure_rows(keys: list[str], reason: str = "server_error") -> pa.Table:
    rows = [{"key": key, "row_date": DAY, "stage": "batch", "reason": reason, "attempt": 1} for key in keys]
    return pa.Table.from_pylist(rows, FAILURE_SCHEMA)


def shard(directory: Path, index: int, results: pa.Table, failures: pa.Table | None = None) -> ShardOutcome:
    """The outcome of shard ``index``, its files written under ``directory``."""
    results_path = ObjectStoragePath((directory / f"results-{index}.parquet").as_uri())
    failures_path = ObjectStoragePath((directory / f"failures-{index}.parquet").as_uri())
    write_table(results_path, results)
    write_table(failures_path, FAILURE_SCHEMA.empty_table() if failures is None else failures)
    return ShardOutcome(
        batch_id=f"batch-{index}", submission_key=f"sub-{index}", status="completed", shard=index,
        attempt=1, results_path=str(results_path), failures_path=str(failures_path),
        results=results.num_rows, failures=0 if failures is None else failures.num_rows, retries=0,
        failure_reasons={}, retry_reasons={}, input_tokens=0, output_tokens=0, cost_usd=None,
        sync_cost_usd=None, model="m",
    )  # fmt: skip


def rejections(directory: Path, failures: pa.Table | None = None) -> str:
    path = ObjectStoragePath((directory / "rejections.parquet").as_uri())
    write_table(path, FAILURE_SCHEMA.empty_table() if failures is None else failures)
    return str(path)
