"""A run's load killed in the middle of its COPY on PostgreSQL: the old rows stay, the retry lands once.

The load runs ``load_run`` over several shard files in a separate process, in small pieces, and
is SIGKILLed once PostgreSQL shows it copying its second piece at least: pieces already replaced
inside the transaction must vanish with it, as when a worker is OOM-killed or its node is lost.
"""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from llm_batch.load import load_run
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import postgres_warehouse
from tests.llm_batch.jobs import sentiment_job
from tests.llm_batch.warehouse.run_files import DAY, failure_rows, rejections, result_rows, shard
from tests.postgres import kill_mid_load

ROOT = Path(__file__).resolve().parents[3]
OLD_KEYS, NEW_KEYS, FILES = 20_000, 40_000, 4

# The child: the run's load, in pieces of about 256 kB, so that it copies many times.
LOADER = """
import sys
from pathlib import Path
from llm_batch import load
from llm_batch.warehouse import postgres_warehouse
from tests.llm_batch.warehouse.test_killed_load import load_new_run

load.PIECE_BYTES = 256 << 10
with postgres_warehouse(sys.argv[1]) as wh:
    load_new_run(wh, Path(sys.argv[2]))
"""


def key(i: int) -> str:
    return f"r{i:06d}"


def window() -> RunWindow:
    return RunWindow(DAY, DAY + dt.timedelta(days=1))


def load_new_run(warehouse, directory: Path):
    """The run the test kills and retries: NEW_KEYS answers labelled "new" in FILES files."""
    job = sentiment_job()
    per_file = NEW_KEYS // FILES
    run = [
        shard(directory, i, result_rows(job, [key(k) for k in range(i * per_file, (i + 1) * per_file)], "new"),
              failure_rows([f"failed-{i}"]))
        for i in range(FILES)
    ]  # fmt: skip
    return load_run(job, window(), warehouse, run, rejections(directory), logical_date=DAY)


def stored(dsn: str) -> dict[str, tuple[str, int]]:
    """key -> (label, rows holding the key), and failure key -> ("failure", rows)."""
    job = sentiment_job()
    with postgres_warehouse(dsn) as wh:
        results = wh.read_arrow(
            f"SELECT review_id AS k, min(label) AS label, count(*) AS n FROM {job.target_table} GROUP BY review_id"
        ).to_pylist()
        failures = wh.read_arrow(
            f'SELECT "key" AS k, count(*) AS n FROM {job.failures_table} GROUP BY "key"'
        ).to_pylist()
    return {r["k"]: (r["label"], r["n"]) for r in results} | {r["k"]: ("failure", r["n"]) for r in failures}


def copying_pieces(dsn: str, app: str, loader: subprocess.Popen, at_least: int, timeout: float = 120) -> int:
    """Wait until the loader's session has started ``at_least`` distinct COPY statements; its backend pid."""
    seen: set[object] = set()
    deadline = time.monotonic() + timeout
    with postgres_warehouse(dsn) as wh:
        while time.monotonic() < deadline and loader.poll() is None:
            found = wh.read_arrow(
                "SELECT pid, query_start FROM pg_stat_activity WHERE application_name = :app "
                "AND state = 'active' AND query LIKE 'COPY%'",
                {"app": app},
            ).to_pylist()
            seen.update((row["pid"], row["query_start"]) for row in found)
            if len(seen) >= at_least:
                return found[0]["pid"]
            time.sleep(0.005)
    pytest.fail(f"saw {len(seen)} COPY statements of the loader (exit code {loader.poll()})")


@pytest.mark.needs_postgres
def test_a_load_killed_mid_copy_leaves_the_old_rows_and_the_retry_lands_each_key_once(
    pg_dsn: str, tmp_path: Path
) -> None:
    job = sentiment_job()
    old = tmp_path / "old"
    with postgres_warehouse(pg_dsn) as wh:
        # The old rows: half the keys the new run replaces, and keys it leaves alone.
        first = [
            shard(
                old,
                0,
                result_rows(job, [key(k) for k in range(NEW_KEYS // 2, NEW_KEYS // 2 + OLD_KEYS)], "old"),
            )
        ]
        load_run(job, window(), wh, first, rejections(old, failure_rows(["failed-old"])), logical_date=DAY)
    before = stored(pg_dsn)
    assert len(before) == OLD_KEYS + 1

    new = tmp_path / "new"
    app = f"killed-load-{uuid.uuid4().hex[:8]}"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}", "PGAPPNAME": app}
    loader = subprocess.Popen([sys.executable, "-c", LOADER, pg_dsn, str(new)], env=env, cwd=ROOT)
    kill_mid_load(pg_dsn, loader, lambda: copying_pieces(pg_dsn, app, loader, at_least=3))
    assert stored(pg_dsn) == before

    with postgres_warehouse(pg_dsn) as wh:
        counts = load_new_run(wh, new)
    assert (counts.results, counts.failures, counts.replaced) == (NEW_KEYS, FILES, NEW_KEYS // 2)
    after = stored(pg_dsn)
    assert {k: v for k, v in after.items() if v[0] == "new"} == {key(k): ("new", 1) for k in range(NEW_KEYS)}
    old_left = range(NEW_KEYS, NEW_KEYS // 2 + OLD_KEYS)
    assert {k: v for k, v in after.items() if v[0] == "old"} == {key(k): ("old", 1) for k in old_left}
    assert sorted(k for k, v in after.items() if v[0] == "failure") == sorted(
        ["failed-old"] + [f"failed-{i}" for i in range(FILES)]
    )
