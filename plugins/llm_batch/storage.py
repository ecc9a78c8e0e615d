"""Where a run's intermediate files live: an ObjectStoragePath every worker can reach.

Local ``file://`` by default; point ``LLM_BATCH_STORAGE_URL`` (or the job's ``storage_url``) at
``s3://...`` or similar when tasks run on several machines. Paths are derived from the job, the
interval and the content, so a repeated run finds the files of the run before it.
"""

from __future__ import annotations

import io
import os
import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import BinaryIO

import pyarrow as pa
import pyarrow.parquet as pq
from airflow.sdk import ObjectStoragePath

ENV_VAR = "LLM_BATCH_STORAGE_URL"


def storage_root(url: str | None = None) -> ObjectStoragePath:
    url = url or os.environ.get(ENV_VAR)
    if not url:
        home = Path(os.environ.get("AIRFLOW_HOME", Path.home() / "airflow"))
        url = (home / "llm_batch_files").resolve().as_uri()
    return ObjectStoragePath(url)


def run_dir(root: ObjectStoragePath, job_name: str, interval_label: str, digest: str) -> ObjectStoragePath:
    return root / job_name / interval_label / digest[:16]


def write_bytes(path: ObjectStoragePath, data: bytes) -> None:
    """Write whole or not at all: a reader never sees half a file after a crash."""
    with _whole_or_nothing(path) as handle:
        handle.write(data)


def write_file(path: ObjectStoragePath, local: Path) -> None:
    """Copy the local file ``local`` to ``path`` a block at a time, whole or not at all."""
    with local.open("rb") as source, _whole_or_nothing(path) as handle:
        shutil.copyfileobj(source, handle, 8 << 20)


@contextmanager
def _whole_or_nothing(path: ObjectStoragePath) -> Iterator[BinaryIO]:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.protocol in ("file", "local", ""):
        partial = path.parent / f".{path.name}.{uuid.uuid4().hex}.partial"
        with partial.open("wb") as handle:
            yield handle
        partial.rename(path)
    else:  # object stores publish an object only once its upload completes
        with path.open("wb") as handle:
            yield handle


def write_table(path: ObjectStoragePath, table: pa.Table) -> None:
    buffer = io.BytesIO()
    pq.write_table(table, buffer, compression="zstd")
    write_bytes(path, buffer.getvalue())


def read_table(path: ObjectStoragePath, filters: list[tuple] | None = None) -> pa.Table:
    """The table of a Parquet file; with ``filters`` (pyarrow's ``[(column, op, value)]``) its
    matching rows alone, read from the row groups whose statistics admit them: a reader of one part
    of a large file holds that part, not the file."""
    with path.open("rb") as handle:
        return pq.read_table(handle, filters=filters)


def read_table_batches(path: ObjectStoragePath, *, batch_bytes: int) -> Iterator[pa.RecordBatch]:
    """The rows of a table file in record batches of about ``batch_bytes`` of Arrow data each.

    The file is read as it is consumed (a row group at a time), so a reader holds one piece
    of a large file, not all of it; the batch size follows the file's own width per row.
    """
    with path.open("rb") as handle:
        parquet = pq.ParquetFile(handle)
        rows, width = parquet.metadata.num_rows, 0
        for group in range(parquet.metadata.num_row_groups):
            width += parquet.metadata.row_group(group).total_byte_size
        batch_rows = max(1, batch_bytes * rows // max(1, width))
        yield from parquet.iter_batches(batch_size=batch_rows)
