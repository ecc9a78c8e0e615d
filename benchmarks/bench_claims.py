"""A shard's claim against the claims already in flight: its time and peak RSS at 1M and 5M claims.

While a night of N rows submits, up to N of its rows are claimed in flight, and each shard's
claim checks its 50k keys against them (held by another run? superseded by a newer version?)
before it writes its own (``inflight.claim_requests``). For each ``--in-flight`` size, a DuckDB
warehouse gets that many claims, written a shard at a time as submit writes them, then the next
shard claims in a fresh process, as a worker runs a submit task, and prints its wall time and peak
RSS (VmHWM). The same claim with the lookup unbounded by the keys' range (every row group of the
in-flight table read, as the library did before) runs beside it as the baseline, each on its own
copy of the warehouse. Last, the growth from the smallest size: the peak must not grow.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_claims.py [--in-flight 1000000 5000000] [--shard 50000]
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

from dags.review_sentiment import JOB  # noqa: E402
from llm_batch import inflight  # noqa: E402
from llm_batch.ledger import BatchLedger, LedgerEntry  # noqa: E402
from llm_batch.warehouse import duckdb_warehouse, queries  # noqa: E402

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
        queries._within_range = lambda *args: "TRUE"
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


def status_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def claim_in_fresh_process(filled: Path, first: int, shard: int, unbounded: bool) -> dict:
    copy = filled.with_name(f"copy-{filled.name}")
    shutil.copyfile(filled, copy)
    try:
        argv = [sys.executable, __file__, "--claim", str(copy), "--first", str(first), "--shard", str(shard)]
        done = subprocess.run(
            [*argv, *(["--unbounded"] if unbounded else [])], capture_output=True, text=True
        )
        if done.returncode:
            raise SystemExit(f"the claim failed:\n{done.stderr}")
        return json.loads(done.stdout.splitlines()[-1])
    finally:
        copy.unlink()
        copy.with_name(copy.name + ".wal").unlink(missing_ok=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--in-flight", type=int, nargs="+", default=[1_000_000, 5_000_000])
    parser.add_argument("--shard", type=int, default=50_000)
    parser.add_argument("--claim", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--first", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--unbounded", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.claim:
        print(json.dumps(claim(args.claim, args.first, args.shard, args.unbounded)))
        return

    print(
        f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the start; shards of {args.shard:,}"
    )
    peaks: dict[int, dict[str, float]] = {}
    with tempfile.TemporaryDirectory(prefix="bench-claims-") as work:
        for size in args.in_flight:
            filled = Path(work) / f"warehouse-{size}.duckdb"
            started = time.perf_counter()
            fill(filled, size, args.shard)
            print(f"{size:>10,} claims in flight, written in {time.perf_counter() - started:.1f} s "
                  f"({filled.stat().st_size / 2**20:.0f} MB file)")  # fmt: skip
            peaks[size] = {}
            for name, unbounded in (("library", False), ("unbounded lookup", True)):
                figures = claim_in_fresh_process(filled, size, args.shard, unbounded)
                peaks[size][name] = figures["peak_mb"]
                print(f"  the next shard's claim, {name:<16}: {figures['seconds']:6.2f} s, "
                      f"peak RSS {figures['peak_mb']:6.0f} MB")  # fmt: skip
            filled.unlink()
    smallest = min(peaks)
    for size in sorted(peaks):
        if size != smallest:
            growth = {name: peak / peaks[smallest][name] for name, peak in peaks[size].items()}
            print(f"peak RSS at {size:,} / at {smallest:,} in flight: library {growth['library']:.2f}x, "
                  f"unbounded lookup {growth['unbounded lookup']:.2f}x (target: within 1.25x) -> "
                  f"{'PASS' if growth['library'] <= 1.25 else 'MISS'}")  # fmt: skip
    print(f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())} at the end")


if __name__ == "__main__":
    main()
