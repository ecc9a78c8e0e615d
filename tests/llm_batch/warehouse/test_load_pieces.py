"""``load_run`` reads a run's files piece by piece, yet lands them as one: every row once, or none.

``PIECE_BYTES`` is made tiny so that every few rows are a piece of their own, as millions of
rows would be at the real size.
"""

from __future__ import annotations

import datetime as dt

import pytest

from llm_batch import load
from llm_batch.load import load_run
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import Warehouse, quote_table
from llm_batch.warehouse.keys import KeyDigests
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.warehouse.run_files import DAY, failure_rows, rejections, result_rows, shard

WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))


@pytest.fixture(autouse=True)
def tiny_pieces(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(load, "PIECE_BYTES", 200)


def keys(first: int, count: int) -> list[str]:
    return [f"k{i:03d}" for i in range(first, first + count)]


def stored(warehouse: Warehouse, job) -> dict[str, tuple[str, int]]:
    """key -> (label, how many rows hold the key)."""
    table = warehouse.read_arrow(
        f"SELECT review_id AS k, min(label) AS label, count(*) AS n FROM {quote_table(job.target_table)} "
        "GROUP BY review_id"
    )
    return {r["k"]: (r["label"], r["n"]) for r in table.to_pylist()}


def failure_keys(warehouse: Warehouse, job) -> list[str]:
    table = warehouse.read_arrow(f'SELECT "key" FROM {quote_table(job.failures_table)} ORDER BY "key"')
    return table.column("key").to_pylist()


def test_a_run_of_several_files_lands_every_row_once(warehouse: Warehouse, tmp_path) -> None:
    job = sentiment_job()
    first = [shard(tmp_path, 0, result_rows(job, keys(0, 30), "old"))]
    load_run(job, WINDOW, warehouse, first, rejections(tmp_path), logical_date=DAY)

    run = [
        shard(tmp_path, 0, result_rows(job, keys(0, 20), "new"), failure_rows(["f0", "f1"])),
        shard(tmp_path, 1, result_rows(job, keys(20, 25), "new"), failure_rows(["f2"])),
        shard(tmp_path, 2, result_rows(job, keys(45, 5), "new")),
    ]
    counts = load_run(
        job, WINDOW, warehouse, run, rejections(tmp_path, failure_rows(["r0"])), logical_date=DAY
    )

    assert (counts.results, counts.failures, counts.replaced) == (50, 4, 30)
    assert stored(warehouse, job) == {key: ("new", 1) for key in keys(0, 50)}
    assert failure_keys(warehouse, job) == ["f0", "f1", "f2", "r0"]


@pytest.mark.parametrize(
    ("second_file", "message"),
    [
        ([*keys(30, 5), "k012"], "repeat the key {'key': 'k012'}"),  # k012 is in the first file too
        ([*keys(30, 5), None], "NULL 'review_id'"),
    ],
    ids=["a key repeated in a later file", "a later piece that cannot load"],
)
def test_a_piece_that_fails_leaves_nothing_of_the_pieces_before_it(
    warehouse: Warehouse, tmp_path, second_file: list, message: str
) -> None:
    job = sentiment_job()
    load_run(job, WINDOW, warehouse, [shard(tmp_path, 0, result_rows(job, keys(0, 5), "old"))],
             rejections(tmp_path), logical_date=DAY)  # fmt: skip
    before = stored(warehouse, job)

    run = [
        shard(tmp_path, 0, result_rows(job, keys(0, 30), "new"), failure_rows(["f0"])),
        shard(tmp_path, 1, result_rows(job, second_file, "new")),
    ]
    with pytest.raises(ValueError, match=message.replace("{", r"\{").replace("}", r"\}")):
        load_run(job, WINDOW, warehouse, run, rejections(tmp_path), logical_date=DAY)
    assert stored(warehouse, job) == before
    assert failure_keys(warehouse, job) == []


def test_a_digest_seen_again_without_its_key_is_no_repeat(
    warehouse: Warehouse, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # As if every key's 64-bit digest had collided with an earlier piece's: the keys decide.
    monkeypatch.setattr(KeyDigests, "seen_before", lambda self, piece: piece.select(["key"]))
    job = sentiment_job()
    run = [shard(tmp_path, i, result_rows(job, keys(10 * i, 10), "new")) for i in range(3)]
    assert load_run(job, WINDOW, warehouse, run, rejections(tmp_path), logical_date=DAY).results == 30
    assert stored(warehouse, job) == {key: ("new", 1) for key in keys(0, 30)}


def test_key_digests_find_keys_of_earlier_pieces_only() -> None:
    job = sentiment_job()
    with KeyDigests(["key"]) as seen:
        assert seen.seen_before(result_rows(job, keys(0, 3), "a")).num_rows == 0
        again = seen.seen_before(result_rows(job, [*keys(2, 3), "k009"], "b"))
        assert again.column("key").to_pylist() == ["k002"]
