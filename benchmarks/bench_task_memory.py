"""Two tasks whose memory could follow the night's size: a shard's claim, and the load. At 1M and 5M rows.

While a night of N rows submits, up to N of its rows are claimed in flight, and each shard's
claim checks its 50k keys against them (held by another run? superseded by a newer version?)
before it writes its own (``inflight.claim_requests``). For each of ``--sizes``, a DuckDB
warehouse gets that many claims, written a shard at a time as submit writes them, then the next
shard claims in a fresh process, as a worker runs a submit task. The same claim with the lookup
unbounded by the keys' range (every row group of the in-flight table read, as the library did
before) runs beside it as the baseline, each on its own copy of the warehouse.

The load lands the night's N result rows into an empty DuckDB table in ``--piece``-row pieces,
one transaction (as ``load.load_run`` does, a shard's keys ascending), in a fresh process; the
baseline is the same load with the warehouse's previous memory limit (512MB).

Each prints its wall time and the process's peak RSS (VmHWM); last, the growth of each peak from
the smallest size (target: within 1.25x).

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_task_memory.py [--sizes 1000000 5000000] [--shard 50000] [--piece 250000]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from bench_warehouse_load import KEY, TABLE, result_rows  # noqa: E402  (this folder)

from dags.review_sentiment import JOB  # noqa: E402
from llm_batch import inflight  # noqa: E402
from llm_batch.ledger import BatchLedger, LedgerEntry  # noqa: E402
from llm_batch.warehouse import duckdb_warehouse, queries  # noqa: E402
from llm_batch.warehouse.duckdb_db import MEMORY_LIMIT_ENV  # noqa: E402

DAY = dt.date(2026, 11, 1)


def keys(first: int, count: int) -> pa.Array:
    """Keys as the sample reviews have them: ``rv-`` and nine digits."""
    digits = pc.utf8_lpad(pc.cast(pa.array(range(first, first + count), pa.int64()), pa.string()), 9, "0")
    return pc.binary_join_element_wise("rv-", digits, "")


def submission(shard: int, now: dt.datetime) -> LedgerEntry:
    """A submission of another run whose batch is running: its claims hold."""
    return LedgerEntry(
        **{field: None for field in (field.name for field in dataclasses.fields(LedgerEntry))}
        | {
            "submission_key": f"earlier-{shard}", "job": JOB.name, "interval_label": DAY.isoformat(),
            "run_id": "earlier", "shard": shard, "attempt": 1, "generation": 1, "content_digest": "d",
            "job_fingerprint": "f", "model": JOB.model, "endpoint": JOB.endpoint, "requests": 0,
            "status": "intent", "intent_at": now,
        }
    )  # fmt: skip


def fill(path: Path, in_flight: int, shard: int) -> None:
    """``in_flight`` claims of running batches, a shard at a time, keys ascending as shards go."""
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with duckdb_warehouse(path) as warehouse:
        ledger = BatchLedger(warehouse)
        queries.create_inflight(warehouse)
        for number, first in enumerate(range(0, in_flight, shard)):
            ledger.record_intent(submission(number, now))
            ledger.update(
                f"earlier-{number}", batch_id=f"batch_{number}", status="in_progress", submitted_at=now
            )
            claimed = keys(first, min(shard, in_flight - first))
            count = len(claimed)
            queries.record_inflight(
                warehouse,
                pa.table(
                    {
                        "job": [JOB.name] * count, "key": claimed,
                        "request_fingerprint": pc.binary_join_element_wise(claimed, "fp", "-"),
                        "row_date": pa.array([DAY] * count, pa.date32()),
                        "submission_key": [f"earlier-{number}"] * count, "run_id": ["earlier"] * count,
                        "claimed_at": pa.array([now] * count, pa.timestamp("us")),
                    }
                ),
            )  # fmt: skip


def claim(path: Path, first: int, shard: int, unbounded: bool) -> dict:
    """One shard's claim, in this (fresh) process: its wall time, and this process's peak RSS."""
    if unbounded:
        queries._within_range = lambda *args: ("TRUE", {})
    claimed = keys(first, shard).to_pylist()
    started = time.perf_counter()
    with duckdb_warehouse(path) as warehouse:
        taken = inflight.claim_requests(
            warehouse,
            JOB,
            "next",
            "tonight",
            [(key, f"{key}-fp") for key in claimed],
            row_dates=[DAY] * shard,
        )
    seconds = time.perf_counter() - started
    assert not taken, f"{len(taken)} of the next shard's requests were found taken"
    return {"seconds": seconds, "peak_mb": status_mb("VmHWM")}


def load(path: Path, rows: int, piece: int) -> dict:
    """The night's ``rows`` result rows into an empty table, ``piece`` rows at a time, one transaction."""
    template = result_rows(piece)
    started = time.perf_counter()
    with duckdb_warehouse(path) as warehouse:
        warehouse.ensure_table(TABLE, template.schema, primary_key=KEY)
        with warehouse.transaction():
            for first in range(0, rows, piece):
                count = min(piece, rows - first)
                pieces = template.slice(0, count).set_column(0, KEY[0], keys(first, count))
                warehouse.replace_rows(TABLE, pieces, match_columns=KEY)
        landed = warehouse.read_arrow(f"SELECT count(*) AS n FROM {TABLE}").column("n")[0].as_py()
    assert landed == rows, f"{landed} rows landed of {rows}"
    return {"seconds": time.perf_counter() - started, "peak_mb": status_mb("VmHWM")}


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def in_fresh_process(*args: str, env: dict[str, str] | None = None) -> dict:
    done = subprocess.run(
        [sys.executable, __file__, *args], capture_output=True, text=True, env={**os.environ, **(env or {})}
    )
    if done.returncode:
        raise SystemExit(f"{' '.join(args)} failed:\n{done.stderr}")
    return json.loads(done.stdout.splitlines()[-1])


def claim_in_fresh_process(filled: Path, first: int, shard: int, unbounded: bool) -> dict:
    copy = filled.with_name(f"copy-{filled.name}")
    shutil.copyfile(filled, copy)
    try:
        argv = ["--claim", str(copy), "--first", str(first), "--shard", str(shard)]
        return in_fresh_process(*argv, *(["--unbounded"] if unbounded else []))
    finally:
        copy.unlink()
        copy.with_name(copy.name + ".wal").unlink(missing_ok=True)


def load_in_fresh_process(work: Path, rows: int, piece: int, memory_limit: str | None) -> dict:
    path = work / "loaded.duckdb"
    try:
        env = {MEMORY_LIMIT_ENV: memory_limit} if memory_limit else None
        return in_fresh_process("--load", str(path), "--rows", str(rows), "--piece", str(piece), env=env)
    finally:
        for leftover in work.glob("loaded.duckdb*"):
            leftover.unlink()


def show(name: str, figures: dict) -> None:
    print(f"  {name:<42}: {figures['seconds']:6.2f} s, peak RSS {figures['peak_mb']:6.0f} MB")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--shard", type=int, default=50_000)
    parser.add_argument("--piece", type=int, default=250_000, help="rows a load replaces at a time")
    parser.add_argument("--claim", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--unbounded", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--load", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--rows", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claim:
        print(json.dumps(claim(args.claim, args.first, args.shard, args.unbounded)))
        return
    if args.load:
        print(json.dumps(load(args.load, args.rows, args.piece)))
        return

    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the start; "
          f"shards of {args.shard:,}, load pieces of {args.piece:,} rows")  # fmt: skip
    peaks: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-task-memory-") as work:
        for size in args.sizes:
            filled = Path(work) / f"warehouse-{size}.duckdb"
            started = time.perf_counter()
            fill(filled, size, args.shard)
            print(f"{size:>10,} rows: the claims in flight written in {time.perf_counter() - started:.1f} s "
                  f"({filled.stat().st_size / 2**20:.0f} MB file)")  # fmt: skip
            runs = [
                ("claim, library", claim_in_fresh_process, (filled, size, args.shard, False)),
                ("claim, unbounded lookup", claim_in_fresh_process, (filled, size, args.shard, True)),
                ("load, library", load_in_fresh_process, (Path(work), size, args.piece, None)),
                (
                    "load, the previous 512MB limit",
                    load_in_fresh_process,
                    (Path(work), size, args.piece, "512MB"),
                ),
            ]
            peaks[size] = {}
            for name, run, arguments in runs:
                figures = run(*arguments)
                peaks[size][name] = figures["peak_mb"]
                show(name, figures)
            filled.unlink()
    smallest = min(peaks)
    for size in sorted(peaks):
        if size == smallest:
            continue
        print(f"peak RSS at {size:,} rows / at {smallest:,} (target: within 1.25x):")
        for name, peak in peaks[size].items():
            growth = peak / peaks[smallest][name]
            verdict = f" -> {'PASS' if growth <= 1.25 else 'MISS'}" if name.endswith("library") else ""
            print(f"  {name:<42}: {growth:.2f}x{verdict}")
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
