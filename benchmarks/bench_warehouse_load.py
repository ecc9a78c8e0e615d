"""How fast result rows land in each warehouse, against the row-by-row path the peers take.

Loads 1M result-like rows (8 columns: strings, a float, an int, a date, a timestamp) with
``Warehouse.replace_rows`` into DuckDB and PostgreSQL, and times ``executemany`` on 20k of the
same rows as the baseline (the path of ``DbApiHook.insert_rows``). Three loads each: a day into
an empty table (the target, median of the repeats), the next day's new keys into a table
holding the first day (the nightly steady state), and a re-run of a day (every row replaced).
The table is made by ``ensure_table`` with the key as primary key, as the pipeline makes it.
On PostgreSQL the re-run is also timed with the library's replace (keys through a temporary
table, delete, then the rows copied straight into the target) beside an alternative that stages
every row and keeps the stored rows equal to theirs unwritten, alternately in the same run, each
re-running the stored rows as they are and rows whose every answer changed; the ratios are
printed. Measured with binary COPY (load average 1-4): 1.82x the library's rows/s for equal
rows but 0.62x for changed rows (with CSV COPY, load average 7: 2.08x and 0.58x), and its next
day of new keys took 23 s where the library's took 9.6 s (CSV, load average 3): the nightly
case pays for it, so the library stages keys only. The machine's load average is printed
beside the figures: on a busy machine every figure is slower, the ratios less so.
Prints the targets of DESIGN.md with PASS/MISS; asserts nothing about time.

PostgreSQL comes from PGHOST, PGPORT, PGUSER and PGDATABASE (default 127.0.0.1:5432, user
postgres, database test); the benchmark works in a schema of its own and drops it.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_warehouse_load.py [--rows 1000000] [--baseline-rows 20000]
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.conninfo import make_conninfo

from include.local_postgres import LOCAL_POSTGRES_DSN

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from llm_batch.warehouse import (
    PostgresWarehouse,
    ReplaceResult,
    Warehouse,
    duckdb_warehouse,
    postgres_warehouse,
)
from llm_batch.warehouse.identifiers import column_list, join_on, quote_ident
from llm_batch.warehouse.keys import checked_order
from llm_batch.warehouse.postgres_copy import copy_rows

TABLE = "review_sentiment"
KEY = ["review_key"]
DUCKDB_TARGET_S = 0.5
POSTGRES_TARGET_ROWS_S = 400_000
POSTGRES_REPLACE_TARGET_ROWS_S = 400_000


class EqualRowsKeptWarehouse(PostgresWarehouse):
    """The alternative replace, timed beside the library's: every row staged, equal rows kept.

    All the rows are copied into a temporary table typed like the target; those byte for byte
    equal to their stored row (``record_image_eq``) are dropped from it and counted as replaced;
    the rest replace theirs by DELETE ... USING and INSERT ... SELECT in key order, with
    ``work_mem`` raised so the joins hash in memory. One transaction. The benchmark's table has
    the key as primary key and rows carry all its columns, which this shortcut needs.
    """

    def _replace(self, table, rows, keys, delete_where, params) -> ReplaceResult:
        assert delete_where is None, "the benchmark replaces by key only"
        stage = quote_ident("_llm_batch_rows")
        columns = column_list(rows.column_names)
        t_row, r_row = (", ".join(f"{a}.{quote_ident(c)}" for c in rows.column_names) for a in "tr")
        with self._transaction() as cur:
            checked_order(table, rows, keys)  # the same check of the keys as the library's
            cur.execute("SET LOCAL work_mem = '256MB'")
            cur.execute(f"CREATE TEMP TABLE {stage} AS SELECT {columns} FROM {table} WITH NO DATA")
            copy_rows(cur, stage, rows)
            cur.execute(f"ANALYZE {stage}")
            cur.execute(
                f"DELETE FROM {stage} AS r USING {table} AS t WHERE {join_on(keys)} "
                f"AND record_image_eq(ROW({t_row}), ROW({r_row}))"
            )
            deleted = cur.rowcount
            cur.execute(f"DELETE FROM {table} AS t USING {stage} AS r WHERE {join_on(keys)}")
            deleted += cur.rowcount
            cur.execute(
                f"INSERT INTO {table} ({columns}) SELECT {columns} FROM {stage} ORDER BY {column_list(keys)}"
            )
            cur.execute(f"DROP TABLE {stage}")
        return ReplaceResult(deleted=deleted, inserted=rows.num_rows)


def result_rows(n: int, day: int = 0) -> pa.Table:
    """One day's results of a sentiment job, with quotes and commas that CSV must escape.

    Keys arrive shuffled, and each day's keys interleave with earlier days' in the key order.
    """
    rng = np.random.default_rng(day)
    ids = pc.cast(pa.array(rng.permutation(n) + day * n), pa.string())
    labels = np.array(["positive", "negative", "neutral", "mixed"])
    date = np.datetime64("2024-05-01", "D") + day
    return pa.table(
        {
            "review_key": pc.binary_join_element_wise("review-", ids, ""),
            "review_date": pa.array(np.full(n, date)).cast(pa.date32()),
            "label": pa.array(labels[rng.integers(0, len(labels), n)]),
            "rationale": pc.binary_join_element_wise('The reviewer says "fine", mostly; order #', ids, " arrived.", ""),
            "confidence": pa.array(rng.random(n)),
            "total_tokens": pa.array(rng.integers(40, 900, n)),
            "answered_at": pa.array(date + np.timedelta64(1, "D") + rng.integers(0, 3_600_000_000, n).astype("timedelta64[us]")),
            "model": pa.array(np.full(n, "gpt-4o-mini-2024-07-18")),
        }
    )  # fmt: skip


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def load_times(wh: Warehouse, day1: pa.Table, day2: pa.Table, repeats: int) -> dict[str, list[float]]:
    def load(rows: pa.Table) -> float:
        return timed(lambda: wh.replace_rows(TABLE, rows, match_columns=KEY))

    times: dict[str, list[float]] = {"empty": [], "next day": [], "re-run": []}
    for _ in range(repeats):
        wh.execute(f"DROP TABLE IF EXISTS {TABLE}")
        wh.ensure_table(TABLE, day1.schema, primary_key=KEY)
        times["empty"].append(load(day1))
    times["next day"].append(load(day2))
    times["re-run"].append(load(day2))
    count = wh.read_arrow(f"SELECT count(*) AS n FROM {TABLE}").column("n")[0].as_py()
    assert count == day1.num_rows + day2.num_rows, f"{count} rows in {TABLE}"
    return times


def executemany_seconds(
    executemany: Callable[[str, list[tuple]], object], rows: pa.Table, placeholder: str
) -> float:
    columns = ", ".join(rows.column_names)
    values = ", ".join([placeholder] * rows.num_columns)
    records = list(zip(*(column.to_pylist() for column in rows.columns), strict=True))
    return timed(lambda: executemany(f"INSERT INTO {TABLE}_baseline ({columns}) VALUES ({values})", records))


def report(name: str, times: dict[str, list[float]], n: int, baseline_n: int, baseline_s: float) -> float:
    """Print the loads and the baseline; return the rows/s of the load into an empty table."""
    empty = statistics.median(times["empty"])
    print(f"{name:10s} replace_rows {n:,} rows into an empty table: median {empty:.3f} s, "
          f"best {min(times['empty']):.3f} s of {len(times['empty'])} ({n / empty:,.0f} rows/s)")  # fmt: skip
    print(f"{name:10s} replace_rows the next day's {n:,} new keys, table holding a day: "
          f"{times['next day'][0]:.3f} s ({n / times['next day'][0]:,.0f} rows/s)")  # fmt: skip
    print(f"{name:10s} replace_rows a re-run of that day (the same {n:,} rows again): "
          f"{times['re-run'][0]:.3f} s ({n / times['re-run'][0]:,.0f} rows/s)")  # fmt: skip
    print(
        f"{name:10s} executemany baseline, {baseline_n:,} rows: {baseline_s:.2f} s ({baseline_n / baseline_s:,.0f} rows/s)"
    )
    print(
        f"{name:10s} ratio: replace_rows loads {(n / empty) / (baseline_n / baseline_s):,.1f}x the rows/s of executemany"
    )
    return n / empty


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_duckdb(day1: pa.Table, day2: pa.Table, baseline_rows: pa.Table, repeats: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        with duckdb_warehouse(path) as wh:
            times = load_times(wh, day1, day2, repeats)
            wh.ensure_table(f"{TABLE}_baseline", day1.schema)
        with duckdb.connect(str(path)) as con:  # a plain DB-API connection, as DbApiHook.insert_rows uses
            baseline_s = executemany_seconds(con.executemany, baseline_rows, "?")
    report("DuckDB", times, day1.num_rows, baseline_rows.num_rows, baseline_s)
    empty = statistics.median(times["empty"])
    print(f"DuckDB     target: {day1.num_rows:,} rows in <= {DUCKDB_TARGET_S} s: {empty:.3f} s -> "
          f"{verdict(empty <= DUCKDB_TARGET_S)}")  # fmt: skip


@contextmanager
def postgres_schema() -> Iterator[str]:
    """A DSN whose search_path is a fresh schema, dropped afterwards."""
    dsn = LOCAL_POSTGRES_DSN
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            yield make_conninfo(dsn, options=f"-c search_path={schema}")
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')


def replace_both_ways(dsn: str, versions: tuple[pa.Table, pa.Table], repeats: int) -> dict[str, list[float]]:
    """Re-run a day (already in the table) with the library's replace and the alternative, alternately.

    Each takes a re-run of the stored rows as they are (a retry, a repeated load) and a re-run
    whose every row changed (the other of ``versions``: every answer differs). The table is
    vacuumed before each, so none inherits another's dead rows.
    """
    times: dict[str, list[float]] = {}
    makers = {"library": PostgresWarehouse, "equal rows kept": EqualRowsKeptWarehouse}
    stored = 0
    with psycopg.connect(dsn, autocommit=True) as admin:
        for round_ in range(max(2, repeats)):
            names = list(makers) if round_ % 2 == 0 else list(reversed(makers))
            for name in names:
                for kind in ("same rows", "changed rows"):
                    stored = stored if kind == "same rows" else 1 - stored
                    admin.execute(f"VACUUM {TABLE}")
                    rows = versions[stored]
                    with makers[name](dsn) as wh:
                        seconds = timed(
                            lambda wh=wh, rows=rows: wh.replace_rows(TABLE, rows, match_columns=KEY)
                        )
                    times.setdefault(f"{name}, {kind}", []).append(seconds)
    return times


def changed(rows: pa.Table) -> pa.Table:
    """``rows`` with every answer changed, keys kept."""
    label = rows.schema.get_field_index("label")
    return rows.set_column(label, "label", pc.binary_join_element_wise(rows.column("label"), "-again", ""))


def bench_postgres(day1: pa.Table, day2: pa.Table, baseline_rows: pa.Table, repeats: int) -> None:
    n = day1.num_rows
    with postgres_schema() as dsn:
        with postgres_warehouse(dsn) as wh:
            times = load_times(wh, day1, day2, repeats)
        replaced = replace_both_ways(dsn, (day2, changed(day2)), repeats)
        with postgres_warehouse(dsn) as wh:
            wh.execute(f"DROP TABLE {TABLE}")
            wh.ensure_table(TABLE, day1.schema)  # no primary key: what COPY costs without an index
            unindexed = timed(lambda: wh.replace_rows(TABLE, day1, match_columns=KEY))
            wh.ensure_table(f"{TABLE}_baseline", day1.schema)
        with psycopg.connect(dsn) as conn:
            baseline_s = executemany_seconds(conn.cursor().executemany, baseline_rows, "%s")
            conn.commit()
    rate = report("PostgreSQL", times, n, baseline_rows.num_rows, baseline_s)
    print(f"PostgreSQL replace_rows {n:,} rows into an empty table without a primary key: {unindexed:.3f} s "
          f"({n / unindexed:,.0f} rows/s)")  # fmt: skip
    print(f"PostgreSQL target: >= {POSTGRES_TARGET_ROWS_S:,} rows/s into an empty table: {rate:,.0f} rows/s -> "
          f"{verdict(rate >= POSTGRES_TARGET_ROWS_S)}")  # fmt: skip
    medians = {name: statistics.median(seconds) for name, seconds in replaced.items()}
    for name, seconds in replaced.items():
        print(f"PostgreSQL re-run of {n:,} keyed rows, {name + ':':<31} median {medians[name]:.3f} s "
              f"of {len(seconds)} ({n / medians[name]:,.0f} rows/s), each {', '.join(f'{s:.2f}' for s in seconds)} s")  # fmt: skip
    for kind in ("same rows", "changed rows"):
        ratio = medians[f"library, {kind}"] / medians[f"equal rows kept, {kind}"]
        print(f"PostgreSQL re-run, {kind}: equal rows kept / library = {ratio:.2f}x the rows/s")
        rate = n / medians[f"library, {kind}"]
        print(f"PostgreSQL target: >= {POSTGRES_REPLACE_TARGET_ROWS_S:,} rows/s replacing {n:,} keyed rows ({kind}): "
              f"{rate:,.0f} rows/s -> {verdict(rate >= POSTGRES_REPLACE_TARGET_ROWS_S)}")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()

    day1, day2 = result_rows(args.rows, day=0), result_rows(args.rows, day=1)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at the start")
    baseline_rows = day1.slice(0, args.baseline_rows)
    print(f"{args.rows:,} rows x {day1.num_columns} columns ({day1.nbytes / 1e6:.0f} MB in Arrow), "
          f"{os.cpu_count()} CPUs, duckdb {duckdb.__version__}, pyarrow {pa.__version__}, psycopg {psycopg.__version__}")  # fmt: skip
    bench_duckdb(day1, day2, baseline_rows, args.repeats)
    bench_postgres(day1, day2, baseline_rows, args.repeats)
    print(f"load average {' '.join(f'{x:.2f}' for x in os.getloadavg())} (1, 5, 15 min) at the end")


if __name__ == "__main__":
    main()
