"""Peak RSS of the build step against the size of its window: is it flat?

Writes ``--rows`` sample reviews (each size in turn, with the sample's duplicates, blank and
oversized texts) into a DuckDB source file, then runs ``steps.build`` over the whole window in a
fresh process and reads the process's peak RSS (VmHWM) after it, less its RSS before it (after
imports and a small warm-up build). Prints each size's figures, the ratio of the largest to the
smallest, and the load average beside them (other work on the machine slows, but should not
swell, a build).

``--base REV`` also runs the build of revision ``REV`` (its ``plugins`` exported to a temporary
directory; the job, sample data and this script stay this checkout's) on the same source files,
alternating, for a before/after on the same machine at the same time.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_build_memory.py \
        [--rows 200000 1000000] [--base HEAD~1]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import math
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from io import BytesIO
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
START = dt.date(2026, 1, 1)
PER_DAY = 5_000
DAYS_PER_WRITE = 20
MB = 1024 * 1024


def load_average() -> str:
    return " ".join(f"{value:.1f}" for value in os.getloadavg())


def write_source(path: Path, rows: int) -> None:
    """``rows`` sample reviews in the table ``reviews`` of a new DuckDB file, a few days at a time."""
    import duckdb

    from include.sample_data.reviews import generate_reviews

    days = math.ceil(rows / PER_DAY)
    with duckdb.connect(str(path)) as con:
        for first in range(0, days, DAYS_PER_WRITE):
            count = min(DAYS_PER_WRITE, days - first)
            part = generate_reviews(START + dt.timedelta(first), count, per_day=(PER_DAY, PER_DAY))
            part = part.slice(0, max(0, rows - first * PER_DAY))
            con.register("part", part)
            if first == 0:
                con.execute("CREATE TABLE reviews AS SELECT * FROM part")
            else:
                con.execute("INSERT INTO reviews SELECT * FROM part")
            con.unregister("part")


def child_build(source: Path, storage: Path) -> None:
    """In a fresh process: one warm-up build of a day, then the whole window; print the figures."""
    from benchmarks.bench_pipeline import reset_peak_rss, status_mb
    from dags.review_sentiment import JOB
    from llm_batch import steps
    from llm_batch.backends.openai_backend import OpenAIBatchBackend
    from llm_batch.run_window import RunWindow
    from llm_batch.warehouse import duckdb_warehouse

    job = dataclasses.replace(JOB, storage_url=storage.as_uri())
    warehouse_path = storage / "warehouse.duckdb"
    storage.mkdir(parents=True, exist_ok=True)
    connections = steps.Connections(
        source=lambda: duckdb_warehouse(source, read_only=True),
        warehouse=lambda: duckdb_warehouse(warehouse_path),
        backend=lambda: OpenAIBatchBackend(client=None),
    )
    with duckdb_warehouse(source, read_only=True) as opened:
        days = (
            opened.read_arrow("SELECT count(DISTINCT review_date) AS n FROM reviews").column("n")[0].as_py()
        )
    options = steps.RunOptions(dry_run=True)
    day = RunWindow(START, START + dt.timedelta(days=1))
    steps.build(job, day, options, run_id="warm-up", connections=connections)
    reset_peak_rss()
    before = status_mb("VmRSS")
    started = time.perf_counter()
    window = RunWindow(START, START + dt.timedelta(days=days))
    built = steps.build(job, window, options, run_id="measured", connections=connections)
    seconds = time.perf_counter() - started
    peak = status_mb("VmHWM")
    summary = built.summary
    print(
        json.dumps(
            {
                "rows": summary.rows_in,
                "requests": summary.requests,
                "shards": summary.shards,
                "run": Path(summary.run_dir).name,  # from the digests of the shards' bytes
                "rss_before_mb": before,
                "rss_peak_mb": peak,
                "rss_added_mb": peak - before,
                "seconds": seconds,
            }
        )
    )


def measure(source: Path, plugins: Path, storage: Path) -> dict[str, Any]:
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{plugins}"}
    command = [sys.executable, __file__, "--child", str(source), "--storage", str(storage)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, cwd=ROOT, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the build failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    figures = json.loads(done.stdout.strip().splitlines()[-1])
    figures["load"] = load_average()
    return figures


def export_plugins(revision: str, into: Path) -> Path:
    """The ``plugins`` folder of ``revision``, written under ``into`` (no checkout, no worktree)."""
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision, "plugins"], cwd=ROOT, capture_output=True, check=True
    ).stdout
    with tarfile.open(fileobj=BytesIO(archive)) as tar:
        tar.extractall(into, filter="data")
    return into / "plugins"


def show(side: str, figures: dict[str, Any]) -> None:
    print(
        f"  {side:<6} {figures['rows']:>9,} rows  {figures['requests']:>9,} requests  "
        f"{figures['shards']:>3} shards  peak RSS {figures['rss_peak_mb']:7,.0f} MB  "
        f"added by the build {figures['rss_added_mb']:7,.0f} MB  {figures['seconds']:6.1f} s  "
        f"load {figures['load']}  run {figures['run']}",
        flush=True,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, nargs="+", default=[200_000, 1_000_000])
    parser.add_argument("--base", help="also measure this revision's build, e.g. HEAD~1")
    parser.add_argument("--sources", type=Path, help="keep the source files here, and reuse them")
    parser.add_argument("--base-only", action="store_true", help="measure only the --base revision")
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_build(args.child, args.storage)
        return
    with tempfile.TemporaryDirectory(prefix="bench-build-memory-") as name:
        tmp = Path(name)
        sides = {"head": ROOT / "plugins"}
        if args.base:
            base = {"base": export_plugins(args.base, tmp / "base")}
            sides = base if args.base_only else {**base, **sides}
        results: dict[str, list[dict[str, Any]]] = {side: [] for side in sides}
        print("Peak RSS of steps.build (dry run) over a DuckDB source, each build in a fresh process")
        for rows in args.rows:
            source = (args.sources or tmp) / f"source-{rows}.duckdb"
            if not source.exists():
                started = time.perf_counter()
                write_source(source, rows)
                print(f"  wrote {rows:,} source rows in {time.perf_counter() - started:.0f} s", flush=True)
            for side, plugins in sides.items():
                figures = measure(source, plugins, tmp / f"files-{side}-{rows}")
                results[side].append(figures)
                show(side, figures)
            if not args.sources:
                source.unlink()
        for side, measured in results.items():
            if len(measured) > 1:
                small, big = measured[0], measured[-1]
                print(
                    f"  {side}: peak RSS added, {big['rows']:,} / {small['rows']:,} rows: "
                    f"{big['rss_added_mb'] / max(small['rss_added_mb'], 1):.2f}x; peak RSS "
                    f"{big['rss_peak_mb'] / small['rss_peak_mb']:.2f}x (target: flat, ≤ 1,024 MB)"
                )


if __name__ == "__main__":
    main()
