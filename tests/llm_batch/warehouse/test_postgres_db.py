"""PostgreSQL's replace: how it deletes the old rows, and a load killed inside its transaction.

A killed load leaves the old rows, and the retry lands once. The load runs in a separate
process that stops just before a chosen statement of the replace (after the keys' COPY into the
temporary table, or after the DELETE, before the rows' COPY) and is SIGKILLed there, as a worker
killed by the OOM killer or a lost node would be.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psycopg
import pyarrow as pa
import pytest
from psycopg.conninfo import conninfo_to_dict, make_conninfo

from llm_batch.warehouse import postgres_warehouse
from tests.postgres import kill_mid_load

ROOT = Path(__file__).resolve().parents[3]
KEYS = 5_000
SCHEMA = pa.schema([("review_key", pa.string()), ("label", pa.string()), ("score", pa.float64())])

# The child: load KEYS rows labelled "new", pausing (and announcing it) before the first
# statement that starts with the given words, inside the load's transaction.
LOADER = """
import sys, time
from pathlib import Path
import psycopg
import pyarrow as pa
from llm_batch.warehouse import postgres_warehouse

dsn, pause_before, marker, keys = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
execute = psycopg.Cursor.execute

def pausing_execute(self, query, *args, **kwargs):
    if str(query).startswith(pause_before):
        marker.write_text(str(self.connection.info.backend_pid))
        time.sleep(600)
    return execute(self, query, *args, **kwargs)

psycopg.Cursor.execute = pausing_execute
rows = pa.table({
    "review_key": [f"r{i:05d}" for i in range(keys)],
    "label": ["new"] * keys,
    "score": [float(i) for i in range(keys)],
})
with postgres_warehouse(dsn) as wh:
    wh.replace_rows("results", rows, match_columns=["review_key"])
"""


def rows(label: str, keys: range) -> pa.Table:
    return pa.table(
        {
            "review_key": [f"r{i:05d}" for i in keys],
            "label": [label] * len(keys),
            "score": [float(i) for i in keys],
        },
        schema=SCHEMA,
    )


def labels(dsn: str) -> dict[str, int]:
    with postgres_warehouse(dsn) as wh:
        found = wh.read_arrow("SELECT label, count(*) AS n FROM results GROUP BY label ORDER BY label")
    return dict(zip(found.column("label").to_pylist(), found.column("n").to_pylist(), strict=True))


@pytest.mark.needs_postgres
@pytest.mark.parametrize("killed_before", ["ANALYZE", "DROP TABLE"], ids=["after-keys-copy", "after-delete"])
def test_a_load_killed_inside_its_transaction_leaves_the_old_rows_and_the_retry_lands_once(
    pg_dsn: str, tmp_path: Path, killed_before: str
) -> None:
    with postgres_warehouse(pg_dsn) as wh:
        wh.ensure_table("results", SCHEMA, primary_key=["review_key"])
        # The old rows: half the keys the load replaces, and keys it leaves alone.
        wh.replace_rows("results", rows("old", range(KEYS // 2, KEYS + 1_000)), match_columns=["review_key"])
    before = labels(pg_dsn)
    assert before == {"old": KEYS // 2 + 1_000}

    marker = tmp_path / "paused"
    env = {**os.environ, "PYTHONPATH": f"{ROOT}{os.pathsep}{ROOT / 'plugins'}"}
    loader = subprocess.Popen(
        [sys.executable, "-c", LOADER, pg_dsn, killed_before, str(marker), str(KEYS)], env=env
    )

    def paused() -> int:
        deadline = time.monotonic() + 60
        while not marker.exists() and loader.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert marker.exists(), f"the loader never reached {killed_before!r} (exit code {loader.poll()})"
        time.sleep(0.1)  # the pid is written before the sleep starts; let it start
        return int(marker.read_text())

    kill_mid_load(pg_dsn, loader, paused)
    assert labels(pg_dsn) == before

    with postgres_warehouse(pg_dsn) as wh:
        result = wh.replace_rows("results", rows("new", range(KEYS)), match_columns=["review_key"])
        assert (result.deleted, result.inserted) == (KEYS - KEYS // 2, KEYS)
        per_key = wh.read_arrow(
            "SELECT review_key, count(*) AS n FROM results GROUP BY review_key HAVING count(*) > 1"
        )
    assert per_key.num_rows == 0
    assert labels(pg_dsn) == {"new": KEYS, "old": 1_000}


@pytest.mark.needs_postgres
def test_the_old_rows_go_in_one_sweep_of_the_table_whatever_work_mem_the_session_has(
    pg_dsn: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The delete's plan, with what it did, is read in a savepoint rolled back before the delete runs.
    plans: list[str] = []
    execute = psycopg.Cursor.execute

    def explaining_execute(self, query, params=None, **kwargs):
        if str(query).startswith("DELETE FROM") and "EXISTS" in str(query):
            execute(self, "SAVEPOINT probe")
            explained = execute(self, "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF) " + str(query), params)
            plans.append("\n".join(line for (line,) in explained.fetchall()))
            execute(self, "ROLLBACK TO SAVEPOINT probe")
        return execute(self, query, params, **kwargs)

    small = make_conninfo(pg_dsn, options=f"{conninfo_to_dict(pg_dsn)['options']} -c work_mem=1MB")
    keys = 60_000  # their hash needs ~3 MB: batches under 1 MB of work_mem (2 MB for hashes)
    with postgres_warehouse(small) as wh:
        wh.ensure_table("results", SCHEMA, primary_key=["review_key"])
        wh.replace_rows("results", rows("old", range(keys)), match_columns=["review_key"])
        monkeypatch.setattr(psycopg.Cursor, "execute", explaining_execute)
        result = wh.replace_rows("results", rows("new", range(keys)), match_columns=["review_key"])
        monkeypatch.undo()
        work_mem = wh.read_arrow("SELECT current_setting('work_mem') AS v").column("v")[0].as_py()

    assert (result.deleted, result.inserted) == (keys, keys)
    assert labels(pg_dsn) == {"new": keys}
    (plan,) = plans
    assert "Hash Semi Join" in plan, plan  # the keys hashed, the table swept in its own order
    assert "Batches: 1 " in plan, plan  # in one sweep
    assert work_mem == "1MB"  # the session's setting is back once the delete is done
