"""How fast result rows land in each warehouse, against the row-by-row path the peers take.

Loads 1M result-like rows (8 columns: strings, a float, an int, a date, a timestamp) with
``Warehouse.replace_rows`` into DuckDB and PostgreSQL, and times ``executemany`` on 20k of the
same rows as the baseline (the path of ``DbApiHook.insert_rows``). Prints the targets of
DESIGN.md with PASS/MISS; asserts nothing about time.

PostgreSQL comes from PGHOST, PGPORT, PGUSER and PGDATABASE (default 127.0.0.1:5432, user
postgres, database test); the benchmark works in a schema of its own and drops it.

    .venv/bin/python benchmarks/bench_warehouse_load.py [--rows 1000000] [--baseline-rows 20000]
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import duckdb
import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.compute as pc
from psycopg.conninfo import make_conninfo

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "plugins"))

from llm_batch.warehouse import Warehouse, duckdb_warehouse, postgres_warehouse

TABLE = "review_sentiment"
KEY = ["review_key"]
DUCKDB_TARGET_S = 0.5
POSTGRES_TARGET_ROWS_S = 400_000


def result_rows(n: int, seed: int = 7) -> pa.Table:
    """Rows shaped like a sentiment job's results, with quotes and commas that CSV must escape."""
    rng = np.random.default_rng(seed)
    ids = pc.cast(pa.array(rng.permutation(n)), pa.string())  # keys arrive in no particular order
    labels = np.array(["positive", "negative", "neutral", "mixed"])
    start = np.datetime64("2024-05-02T01:00:00", "us")
    return pa.table(
        {
            "review_key": pc.binary_join_element_wise("review-", ids, ""),
            "review_date": pa.array(np.full(n, np.datetime64("2024-05-01", "D"))).cast(pa.date32()),
            "label": pa.array(labels[rng.integers(0, len(labels), n)]),
            "rationale": pc.binary_join_element_wise(
                'The reviewer says "fine", mostly; order #', ids, " arrived.", ""
            ),
            "confidence": pa.array(rng.random(n)),
            "total_tokens": pa.array(rng.integers(40, 900, n)),
            "answered_at": pa.array(start + rng.integers(0, 3_600_000_000, n).astype("timedelta64[us]")),
            "model": pa.array(np.full(n, "gpt-4o-mini-2024-07-18")),
        }
    )


def timed(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def load_times(wh: Warehouse, rows: pa.Table, repeats: int) -> tuple[list[float], float]:
    """Seconds for a first load into an empty table (each repeat), then for replacing the same rows."""
    fresh = []
    for _ in range(repeats):
        wh.execute(f"DROP TABLE IF EXISTS {TABLE}")
        wh.ensure_table(TABLE, rows.schema, primary_key=KEY)
        fresh.append(timed(lambda: wh.replace_rows(TABLE, rows, match_columns=KEY)))
    rerun = timed(lambda: wh.replace_rows(TABLE, rows, match_columns=KEY))
    count = wh.read_arrow(f"SELECT count(*) AS n FROM {TABLE}").column("n")[0].as_py()
    assert count == rows.num_rows, f"{count} rows in {TABLE}, expected {rows.num_rows}"
    return fresh, rerun


def baseline(executemany: Callable[[str, list[tuple]], object], rows: pa.Table, placeholder: str) -> float:
    columns = ", ".join(rows.column_names)
    values = ", ".join([placeholder] * rows.num_columns)
    records = list(zip(*(column.to_pylist() for column in rows.columns), strict=True))
    return timed(lambda: executemany(f"INSERT INTO {TABLE}_baseline ({columns}) VALUES ({values})", records))


def verdict(ok: bool) -> str:
    return "PASS" if ok else "MISS"


def bench_duckdb(rows: pa.Table, baseline_rows: pa.Table, repeats: int) -> None:
    n = rows.num_rows
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "bench.duckdb"
        with duckdb_warehouse(path) as wh:
            fresh, rerun = load_times(wh, rows, repeats)
            wh.ensure_table(f"{TABLE}_baseline", rows.schema)
        with duckdb.connect(str(path)) as con:  # a plain DB-API connection, as DbApiHook.insert_rows uses
            slow = baseline(con.executemany, baseline_rows, "?")
    best = min(fresh)
    fast_rate, slow_rate = n / best, baseline_rows.num_rows / slow
    print(f"DuckDB     replace_rows, {n:,} rows into an empty table: best {best:.3f} s, "
          f"median {statistics.median(fresh):.3f} s of {repeats} ({fast_rate:,.0f} rows/s)")  # fmt: skip
    print(f"DuckDB     replace_rows, the same {n:,} rows again (re-run of the date): {rerun:.3f} s")
    print(
        f"DuckDB     executemany baseline, {baseline_rows.num_rows:,} rows: {slow:.2f} s ({slow_rate:,.0f} rows/s)"
    )
    print(f"DuckDB     ratio: replace_rows is {fast_rate / slow_rate:,.0f}x the rows/s of executemany")
    print(f"DuckDB     target: {n:,} rows in <= {DUCKDB_TARGET_S} s -> {verdict(best <= DUCKDB_TARGET_S)}")


def bench_postgres(rows: pa.Table, baseline_rows: pa.Table, repeats: int) -> None:
    n = rows.num_rows
    dsn = make_conninfo(
        "",
        host=os.environ.get("PGHOST", "127.0.0.1"),
        port=os.environ.get("PGPORT", "5432"),
        user=os.environ.get("PGUSER", "postgres"),
        dbname=os.environ.get("PGDATABASE", "test"),
    )
    schema = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'CREATE SCHEMA "{schema}"')
        try:
            with postgres_warehouse(make_conninfo(dsn, options=f"-c search_path={schema}")) as wh:
                fresh, rerun = load_times(wh, rows, repeats)
                wh.execute(f"DROP TABLE {TABLE}")
                wh.ensure_table(TABLE, rows.schema)  # no primary key: what COPY alone costs
                unindexed = timed(lambda: wh.replace_rows(TABLE, rows, match_columns=KEY))
                wh.ensure_table(f"{TABLE}_baseline", rows.schema)
            with psycopg.connect(make_conninfo(dsn, options=f"-c search_path={schema}")) as conn:
                slow = baseline(conn.cursor().executemany, baseline_rows, "%s")
                conn.commit()
        finally:
            admin.execute(f'DROP SCHEMA "{schema}" CASCADE')
    best = min(fresh)
    fast_rate, slow_rate = n / best, baseline_rows.num_rows / slow
    print(f"PostgreSQL replace_rows, {n:,} rows into an empty table with PRIMARY KEY: best {best:.2f} s, "
          f"median {statistics.median(fresh):.2f} s of {repeats} ({fast_rate:,.0f} rows/s)")  # fmt: skip
    print(f"PostgreSQL replace_rows, the same {n:,} rows again (re-run of the date): {rerun:.2f} s "
          f"({n / rerun:,.0f} rows/s: deletes {n:,} and inserts {n:,})")  # fmt: skip
    print(f"PostgreSQL replace_rows, {n:,} rows into an empty table without a key index: {unindexed:.2f} s "
          f"({n / unindexed:,.0f} rows/s)")  # fmt: skip
    print(
        f"PostgreSQL executemany baseline, {baseline_rows.num_rows:,} rows: {slow:.2f} s ({slow_rate:,.0f} rows/s)"
    )
    print(f"PostgreSQL ratio: replace_rows is {fast_rate / slow_rate:,.1f}x the rows/s of executemany")
    print(
        f"PostgreSQL target: >= {POSTGRES_TARGET_ROWS_S:,} rows/s -> {verdict(fast_rate >= POSTGRES_TARGET_ROWS_S)}"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--baseline-rows", type=int, default=20_000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    rows = result_rows(args.rows)
    baseline_rows = rows.slice(0, args.baseline_rows)
    print(f"{args.rows:,} rows x {rows.num_columns} columns ({rows.nbytes / 1e6:.0f} MB in Arrow), "
          f"{os.cpu_count()} CPUs, {dt.datetime.now():%Y-%m-%d %H:%M}")  # fmt: skip
    bench_duckdb(rows, baseline_rows, args.repeats)
    bench_postgres(rows, baseline_rows, args.repeats)


if __name__ == "__main__":
    main()
