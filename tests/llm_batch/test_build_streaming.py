"""The streaming build makes the same bytes as the whole-table build it replaced.

A re-run must compute the same shard digests to re-attach to batches already paid for, so the
build that streams rows through a scratch database, a chunk of keys at a time, is checked here
against a reference built the old way (the whole window in one Arrow table: superseded rows
dropped, settled requests looked up for every key, ``dedupe``, sort, ``iter_shards``) on the
sample reviews plus null keys, keys that get hashed custom_ids, ties, rows already answered and
keys answered on a later date.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections import Counter
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
import pytest

from include.sample_data.reviews import generate_reviews
from llm_batch import collapsed_rows, steps
from llm_batch.backends.openai_backend import OpenAIBatchBackend
from llm_batch.build import build_run, rejections_table
from llm_batch.collapsed_rows import CollapsedRows
from llm_batch.extract import extract_batches
from llm_batch.job import BatchJob, ShardLimits
from llm_batch.request_lines import Rejection, RequestLine, dedupe, iter_requests
from llm_batch.run_window import RunWindow
from llm_batch.settled import drop_superseded, settled_requests
from llm_batch.sharding import iter_shards, shard_index
from llm_batch.storage import ObjectStoragePath
from llm_batch.warehouse import Warehouse, duckdb_warehouse
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.overlap import store_source

DAY = dt.date(2026, 5, 4)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=3))
TWO_VERSIONS = "rv-two-versions"
UNSAFE_KEYS = ["rev #1", "h-looks-hashed", "über-7", "x" * 129, "a/b", "tab\there"]


def source_rows() -> pa.Table:
    """Three days of sample reviews (duplicates, blank and huge texts), made harder."""
    rows = generate_reviews(DAY, 3, per_day=(900, 900))
    keys = rows.column("review_id").to_pylist()
    for i in range(0, len(keys), 97):  # rows that lost their key
        keys[i] = None
    for i, key in enumerate(UNSAFE_KEYS):  # custom_ids the endpoint would refuse: hashed
        keys[300 + 7 * i] = key
    keys[400] = keys[401] = keys[402]  # one key three times: the last of equal created_at wins
    created = rows.column("created_at").to_pylist()
    created[400] = created[401] = created[402]
    # One key in two days' rows: an older and a newer version; an answer dated between them is stored.
    keys[500] = keys[510] = TWO_VERSIONS
    created[510] = created[500] + dt.timedelta(hours=1)
    texts = rows.column("review_text").to_pylist()
    texts[500], texts[510] = "An older version of this review.", "A newer version of this review."
    dates = rows.column("review_date").to_pylist()
    dates[500], dates[510] = DAY, DAY + dt.timedelta(days=2)
    rows = rows.set_column(
        rows.schema.get_field_index("review_text"), "review_text", pa.array(texts, pa.string())
    )
    rows = rows.set_column(rows.schema.get_field_index("review_id"), "review_id", pa.array(keys, pa.string()))
    rows = rows.set_column(
        rows.schema.get_field_index("created_at"), "created_at", pa.array(created, pa.timestamp("us"))
    )
    return rows.set_column(
        rows.schema.get_field_index("review_date"), "review_date", pa.array(dates, pa.date32())
    )


def store_answers(warehouse: Warehouse, job: BatchJob, rows: pa.Table) -> None:
    """Answers stored by earlier runs: some of these very requests, and newer versions of others."""
    lines = [
        item
        for item in iter_requests(job, dedupe(rows, job.key_column, job.dedupe_order_column)[0])
        if isinstance(item, RequestLine)
    ]
    answered = [(line.key, line.row_date, line.request_fingerprint) for line in lines[::5]]
    newer = [(line.key, DAY + dt.timedelta(days=30), "fp-of-a-newer-version") for line in lines[3::11]]
    between = [(TWO_VERSIONS, DAY + dt.timedelta(days=1), "fp-between")]
    stored = {key: (key, day, fp) for key, day, fp in answered + newer + between}
    table = pa.table(
        {
            job.key_column: [s[0] for s in stored.values()],
            job.date_column: pa.array([s[1] for s in stored.values()], pa.date32()),
            "request_fingerprint": [s[2] for s in stored.values()],
        }
    )
    warehouse.ensure_table(job.target_table, table.schema)
    warehouse.replace_rows(job.target_table, table, match_columns=[job.key_column])


def old_build(job: BatchJob, rows: pa.Table, warehouse: Warehouse) -> dict:
    """The build before streaming: every row of the window in memory at once.

    A key whose newest version in the window is older than its stored answer leaves the window
    whole (its rows are not counted in); its older rows never decide it.
    """
    newest, _ = dedupe(rows, job.key_column, job.dedupe_order_column)
    fresh = drop_superseded(job, newest, warehouse).column(job.key_column)
    superseded = pc.filter(
        newest.column(job.key_column), pc.invert(pc.is_in(newest.column(job.key_column), fresh))
    )
    rows = rows.filter(pc.invert(pc.fill_null(pc.is_in(rows.column(job.key_column), superseded), False)))
    settled = settled_requests(job, WINDOW, warehouse, rows=rows)
    kept, collapsed = dedupe(rows, job.key_column, job.dedupe_order_column)
    items = list(iter_requests(job, kept, settled))
    lines = [item for item in items if isinstance(item, RequestLine)]
    rejections = [item for item in items if isinstance(item, Rejection)]
    return {
        "shard_bytes": [shard.content for shard in iter_shards(lines, job.shard_limits)],
        "index": [(line.custom_id, line.key, line.request_fingerprint) for line in lines],
        "rejections": rejections_table(job, rejections),
        "rows_in": rows.num_rows,
        "duplicates_collapsed": collapsed,
        "rejected": len(rejections),
        "rejection_reasons": dict(Counter(r.reason for r in rejections)),
        "requests": len(lines),
        "already_settled": rows.num_rows - collapsed - len(rejections) - len(lines),
    }


@pytest.fixture
def setup(tmp_path: Path):
    job = sentiment_job(storage_url=(tmp_path / "files").as_uri(), shard_limits=ShardLimits(max_requests=400))
    rows = source_rows()
    warehouse = duckdb_warehouse(tmp_path / "warehouse.duckdb")
    store_source(warehouse, rows)
    store_answers(warehouse, job, rows)
    yield job, warehouse
    warehouse.close()


def stream_build(job: BatchJob, warehouse: Warehouse, *, chunk_rows: int, skip_settled: bool = True):
    with CollapsedRows(job, chunk_rows=chunk_rows) as rows:
        rows.add(extract_batches(job, WINDOW, warehouse, batch_rows=333))
        return build_run(
            job, WINDOW, rows, warehouse=lambda: nullcontext(warehouse), skip_settled=skip_settled
        )


@pytest.mark.parametrize(
    ("chunk_rows", "sort_range_rows"), [(250, 300), (50_000, 1_000_000)], ids=["many-chunks", "one-chunk"]
)
def test_streaming_build_gives_the_bytes_and_counts_of_the_whole_table_build(
    setup, chunk_rows, sort_range_rows, monkeypatch
):
    job, warehouse = setup
    monkeypatch.setattr(collapsed_rows, "SORT_RANGE_ROWS", sort_range_rows)  # sorted in ranges, or at once
    source = warehouse.read_arrow(job.source_sql, {"start": WINDOW.start, "end": WINDOW.end})
    expected = old_build(job, source, warehouse)
    assert expected["duplicates_collapsed"] > 3 and expected["already_settled"] > 100  # the data is hard
    assert {"missing_key", "empty_input", "null_input"} <= set(expected["rejection_reasons"])

    built = stream_build(job, warehouse, chunk_rows=chunk_rows)

    shards = [Path(spec.path.removeprefix("file://")).read_bytes() for spec in built.shards]
    assert shards == expected["shard_bytes"] and len(shards) > 3
    assert any(b'"custom_id":"h-' in shard for shard in shards)
    index = pq.read_table(built.shards[0].index_path.removeprefix("file://"))
    assert (
        list(
            zip(
                *(index.column(c).to_pylist() for c in ("custom_id", "key", "request_fingerprint")),
                strict=True,
            )
        )
        == expected["index"]
    )
    rejections = pq.read_table(built.summary.rejections_path.removeprefix("file://"))
    assert rejections.equals(expected["rejections"])
    summary = dataclasses.asdict(built.summary)
    assert {name: summary[name] for name in expected if name in summary} == {
        name: value for name, value in expected.items() if name in summary
    }


def test_a_key_answered_between_its_two_versions_sends_the_newer_one(setup):
    """An older row of the key in the window never hides its newer version (dated after the answer)."""
    job, warehouse = setup
    built = stream_build(job, warehouse, chunk_rows=250)
    sent = [
        line
        for spec in built.shards
        for line in Path(spec.path.removeprefix("file://")).read_text().splitlines()
        if TWO_VERSIONS in line
    ]
    assert len(sent) == 1 and "A newer version of this review." in sent[0]


def test_force_skips_the_settled_lookup_but_not_the_superseded_one(setup):
    job, warehouse = setup
    source = warehouse.read_arrow(job.source_sql, {"start": WINDOW.start, "end": WINDOW.end})
    expected = old_build(job, source, warehouse)
    forced = stream_build(job, warehouse, chunk_rows=250, skip_settled=False).summary
    assert forced.already_settled == 0
    assert forced.requests == expected["requests"] + expected["already_settled"]
    newer = warehouse.read_arrow(
        "SELECT review_id FROM review_sentiment WHERE request_fingerprint = 'fp-of-a-newer-version'"
    )
    assert forced.rows_in == expected["rows_in"] and newer.num_rows > 10


def test_a_row_limit_builds_the_first_keys_the_same_way_every_time(setup):
    job, warehouse = setup
    connections = steps.Connections(
        source=lambda: nullcontext(warehouse),
        warehouse=lambda: nullcontext(warehouse),
        backend=lambda: OpenAIBatchBackend(client=None),
    )
    options = steps.RunOptions(row_limit=150, force=True)

    def build() -> tuple[list[str], pa.Table]:
        built = steps.build(job, WINDOW, options, run_id="manual__limit", connections=connections)
        return [spec.digest for spec in built.shards], pq.read_table(
            built.shards[0].index_path.removeprefix("file://")
        )

    (digests, index), (again, _) = build(), build()
    keys = warehouse.read_arrow(
        "SELECT review_id FROM reviews WHERE review_date >= :start AND review_date < :end ORDER BY review_id LIMIT 150",
        {"start": WINDOW.start, "end": WINDOW.end},
    ).column(0)
    assert digests == again
    assert set(index.column("key").to_pylist()) <= set(pc.drop_null(keys).to_pylist())
    assert index.num_rows > 100


def test_a_shards_index_rows_are_read_from_its_own_row_group_alone(setup, tmp_path, monkeypatch):
    job, warehouse = setup
    built = stream_build(job, warehouse, chunk_rows=250)
    # The build's index at a size where a row group outweighs the reader's first read of the
    # file's tail (64 KiB): twenty shards of 20,000 rows, a row group each, as the build writes it.
    built_index = pq.read_table(built.shards[0].index_path.removeprefix("file://"))
    rows = built_index.take(pa.array([i % built_index.num_rows for i in range(400_000)]))
    rows = rows.set_column(
        rows.schema.get_field_index("shard"),
        "shard",
        pa.array([i // 20_000 for i in range(400_000)], rows.schema.field("shard").type),
    )
    path = tmp_path / "index.parquet"
    pq.write_table(rows, path, row_group_size=20_000)
    spec = dataclasses.replace(built.shards[2], index_path=f"file://{path}", shard=7)
    read = []
    open_path = ObjectStoragePath.open

    def counting_open(self, *args, **kwargs):
        handle = open_path(self, *args, **kwargs)
        read_bytes = handle.read

        def counting_read(*size):
            data = read_bytes(*size)
            read.append(len(data))
            return data

        handle.read = counting_read
        return handle

    monkeypatch.setattr(ObjectStoragePath, "open", counting_open)

    index = shard_index(spec)

    assert index.equals(rows.filter(pc.equal(rows["shard"], 7)))
    assert sum(read) < 2 * path.stat().st_size / 20  # its row group and the footer, not the file
