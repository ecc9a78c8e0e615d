"""Run files on an S3 server through ``llm_batch.storage``: what a task writes, another reads by
the path string it was handed."""

from __future__ import annotations

import pyarrow as pa
from airflow.sdk import ObjectStoragePath

from include.object_store import ObjectStore
from llm_batch.storage import read_table, run_dir, storage_root, write_bytes, write_table


def test_a_storage_url_naming_a_connection_reaches_the_bucket_through_it(
    object_store: ObjectStore, s3_prefix
):
    root = storage_root(object_store.url(s3_prefix))

    assert (root.protocol, root.conn_id, root.bucket) == ("s3", object_store.conn_id, object_store.bucket)
    shard = run_dir(root, "review_sentiment", "2026-03-31", "ab" * 20) / "shard-000.jsonl"
    assert shard.conn_id == object_store.conn_id  # paths built under the root keep its connection
    assert not shard.exists()
    write_bytes(shard, b'{"custom_id": "r1"}\n')

    assert shard.exists()
    assert object_store.keys(s3_prefix) == [
        f"{s3_prefix}/review_sentiment/2026-03-31/abababababababab/shard-000.jsonl"
    ]
    body = object_store.client().get_object(Bucket=object_store.bucket, Key=object_store.key(str(shard)))[
        "Body"
    ]
    assert body.read() == b'{"custom_id": "r1"}\n'


def test_a_path_handed_over_as_a_string_keeps_its_connection(object_store: ObjectStore, s3_prefix):
    written = storage_root(object_store.url(s3_prefix)) / "run" / "results-000.parquet"
    table = pa.table({"review_id": ["r1", "r2"], "label": ["positive", None]})
    write_table(written, table)

    handed_over = str(written)  # what the hand-offs carry through XCom
    assert handed_over == f"{object_store.url(s3_prefix)}/run/results-000.parquet"
    read = ObjectStoragePath(handed_over)
    assert read.conn_id == object_store.conn_id
    assert read_table(read).equals(table)


def test_a_file_written_again_is_read_whole_and_leaves_no_partial_object(
    object_store: ObjectStore, s3_prefix
):
    path = storage_root(object_store.url(s3_prefix)) / "shards" / "shard.jsonl"
    write_bytes(path, b"first\n" * 1000)
    write_bytes(path, b"second\n")

    with ObjectStoragePath(str(path)).open("rb") as handle:
        assert handle.read() == b"second\n"
    assert object_store.keys(s3_prefix) == [f"{s3_prefix}/shards/shard.jsonl"]
