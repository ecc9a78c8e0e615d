"""Where a run's time and memory go, step by step, against the targets of DESIGN.md.

For ``--rows`` sample reviews (default 50,000; with the sample's edge cases: duplicates, blank and
oversized texts) it times, median of ``--repeat`` warm runs:

1. build + validate: ``build_run`` whole, and ``build_requests`` and the Batch API's line rules
   (``check_lines``) alone; baseline std ``json.dumps`` vs ``orjson`` on the same lines.
2. parse + validate: one real batch through the local server, then ``collect_shard``, the raw
   download, and an in-memory orjson parse + Pydantic validation of the output; baseline std ``json``.
3. load: ``load_run`` into a fresh DuckDB file, then again (idempotent replace); baseline row-by-row
   ``executemany`` of ``--baseline-rows`` rows vs an Arrow insert of the same rows.
4. memory: peak RSS and tracemalloc peak per step, and whether ``build_run`` is bounded by the shard:
   it builds ``--rows`` and 3x ``--rows`` rows with 50,000 requests per shard, each in a fresh process,
   and prints the allocation sites that dominate.

Prints each figure with its target and PASS/MISS; a step that misses is profiled (cProfile). Asserts
nothing about time.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_pipeline.py [--rows 50000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import cProfile
import dataclasses
import datetime as dt
import json
import linecache
import logging
import math
import os
import pstats
import resource
import statistics
import subprocess
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import orjson
import pyarrow as pa
import pyarrow.parquet as pq

from dags.review_sentiment import JOB
from include.batch_api_process import ServerProcess, wait_for_batch
from include.sample_data.reviews import generate_reviews
from llm_batch import build as build_module
from llm_batch.backends.openai_backend import OpenAIBatchBackend, batch_state
from llm_batch.batch_rules import check_lines
from llm_batch.build import build_run
from llm_batch.collect import collect_shard
from llm_batch.handoffs import ShardSpec
from llm_batch.job import ShardLimits
from llm_batch.load import load_run
from llm_batch.request_lines import build_requests
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import duckdb_warehouse

START = dt.date(2026, 11, 1)
PER_DAY = 5_000
SHARD_REQUESTS = 50_000
MB = 1024 * 1024
ROOT = Path(__file__).resolve().parents[1]


# --- measuring and printing -----------------------------------------------------------------------


def timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    """Median wall time of ``repeat`` calls, and the last call's result."""
    times, result = [], None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times), result


def traced_peak(fn: Callable[[], Any]) -> float:
    """Peak of Python allocations (MB) while ``fn`` runs; Arrow buffers are not traced."""
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / MB
    finally:
        tracemalloc.stop()


def rss_mb() -> float:
    """Peak RSS of this process so far (ru_maxrss)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def status_mb(field: str) -> float:
    """VmRSS or VmHWM of this process image: unlike ru_maxrss, VmHWM is not inherited across exec."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(field)


def reset_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # Linux: VmHWM starts again from VmRSS


def show(label: str, value: float, unit: str, limit: float | None = None, at_least: bool = False) -> bool:
    """One figure per line; with a limit, the target and PASS/MISS. Returns whether it passed."""
    number = f"{value:,.0f}" if value >= 100 else f"{value:.3f}"
    text = f"  {label:<58} {number:>9} {unit}"
    if limit is None:
        print(text)
        return True
    ok = value >= limit if at_least else value <= limit
    print(f"{text:<80} target {'≥' if at_least else '≤'} {limit:,g} {unit}: {'PASS' if ok else 'MISS'}")
    return ok


def profile(label: str, fn: Callable[[], Any], top: int = 10) -> None:
    """The functions ``fn`` spends its own time in, for a step that missed its target.

    A built-in (``<...>``) is shown with the caller that spent the most time in it.
    """
    profiler = cProfile.Profile()
    profiler.runcall(fn)
    stats = pstats.Stats(profiler).stats  # type: ignore[attr-defined]
    print(f"  cProfile of {label}, top {top} by own time:")
    for func, (_, calls, own, cumulative, callers) in sorted(
        stats.items(), key=lambda item: item[1][2], reverse=True
    )[:top]:
        where = _where(func)
        if not func[1] and callers:
            where += " <- " + _where(max(callers, key=lambda caller: callers[caller][3]))
        print(f"    {own:6.3f} s own {cumulative:6.3f} s cum {calls:>9,} calls  {where}")


def _where(func: tuple[str, int, str]) -> str:
    filename, lineno, name = func
    return f"{_short(filename)}:{lineno}({name})" if lineno else name


def _short(filename: str) -> str:
    for marker in ("/site-packages/", str(ROOT) + "/"):
        if marker in filename:
            return filename.split(marker, 1)[1]
    return filename


def source_rows(n: int) -> pa.Table:
    days = math.ceil(n / PER_DAY)
    return generate_reviews(START, days, per_day=(PER_DAY, PER_DAY)).slice(0, n)


def window_of(rows: pa.Table) -> RunWindow:
    days = math.ceil(rows.num_rows / PER_DAY) or 1
    return RunWindow(START, START + dt.timedelta(days=days))


def json_line(obj: dict[str, Any]) -> bytes:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


# --- 1. build + validate --------------------------------------------------------------------------


def bench_build(job, rows: pa.Table, repeat: int) -> dict[str, Any]:
    window = window_of(rows)
    start = time.perf_counter()
    build_run(job, window, rows.slice(0, 200))
    cold = time.perf_counter() - start

    t_requests, built = timed(lambda: build_requests(job, rows, set()), repeat)
    lines = [line.line for line in built.lines]
    t_validate, _ = timed(lambda: check_lines(lines, job.endpoint), repeat)
    t_run, run = timed(lambda: build_run(job, window, rows), repeat)
    size = sum(s.bytes for s in run.shards)

    print(
        f"\n1. build + validate: {rows.num_rows:,} rows -> {len(lines):,} request lines "
        f"({run.summary.rejected:,} rejected, {run.summary.duplicates_collapsed:,} duplicates), "
        f"{len(run.shards)} shard(s), {size / MB:,.1f} MB"
    )
    show("first build_run in a process (200 rows; imports)", cold, "s")
    show("build_requests (rows -> lines)", t_requests, "s", 3.0)
    show("check_lines (the Batch API's line rules)", t_validate, "s", 3.0)
    show("rest of build_run (shard, join, digest, write)", t_run - t_requests - t_validate, "s")
    passed = show("build_run, all of it", t_run, "s", 1.0)
    show("build_run, all of it (issue: each step)", t_run, "s", 3.0)
    show("build_run throughput", len(lines) / t_run, "lines/s")

    objects = [orjson.loads(line) for line in lines]
    t_orjson, _ = timed(lambda: [orjson.dumps(o, option=orjson.OPT_SORT_KEYS) for o in objects], repeat)
    t_json, _ = timed(lambda: [json_line(o) for o in objects], repeat)
    show("baseline: serialize the lines, orjson", t_orjson, "s")
    show("baseline: serialize the lines, std json.dumps", t_json, "s")
    show("baseline: std json / orjson", t_json / t_orjson, "x")
    show("traced peak: build_requests", traced_peak(lambda: build_requests(job, rows, set())), "MB")
    show(
        "traced peak: check_lines",
        traced_peak(lambda: check_lines(lines, job.endpoint)),
        "MB",
    )
    show("traced peak: build_run", traced_peak(lambda: build_run(job, window, rows)), "MB")
    show("peak RSS of this process so far", rss_mb(), "MB")
    if not passed:
        profile("build_run", lambda: build_run(job, window, rows))
    return run


# --- 2. parse + validate --------------------------------------------------------------------------


def run_batches(client, job, specs: list[ShardSpec]) -> list[dict[str, Any]]:
    summaries = []
    for spec in specs:
        with open(spec.path.removeprefix("file://"), "rb") as handle:
            file = client.files.create(file=("shard.jsonl", handle), purpose="batch")
        batch = client.batches.create(input_file_id=file.id, endpoint=job.endpoint, completion_window="24h")
        summaries.append(batch_state(wait_for_batch(client, batch.id, timeout=1800)).to_summary())
    return summaries


def collect_all(client, job, specs, summaries) -> list[dict[str, Any]]:
    backend = OpenAIBatchBackend(client=client)
    return [
        collect_shard(backend, job, spec, summary, submission_key=f"bench-{spec.shard}")
        for spec, summary in zip(specs, summaries, strict=True)
    ]


def parse_only(lines: list[bytes], loads: Callable[[bytes], Any]) -> int:
    for raw in lines:
        loads(raw)
    return len(lines)


def parse_and_validate(lines: list[bytes], loads: Callable[[bytes], Any], model) -> int:
    for raw in lines:
        content = loads(raw)["response"]["body"]["choices"][0]["message"]["content"]
        model.model_validate_json(content)
    return len(lines)


def bench_collect(job, run: dict[str, Any], tmp: Path, repeat: int) -> list[dict[str, Any]]:
    specs = run.shards
    server = ServerProcess(tmp / "batch-api", "--validating-seconds", "0", "--finalizing-seconds", "0")
    server.start()
    try:
        client = server.client(timeout=600)
        start = time.perf_counter()
        summaries = run_batches(client, job, specs)
        t_server = time.perf_counter() - start
        if any(s["status"] != "completed" for s in summaries):
            raise RuntimeError(f"a batch did not complete: {summaries}")

        t_collect, collected = timed(lambda: collect_all(client, job, specs, summaries), repeat)
        t_download, outputs = timed(
            lambda: [client.files.content(s["output_file_id"]).read() for s in summaries], repeat
        )
        lines = [raw for data in outputs for raw in data.splitlines() if raw.strip()]
        model = job.output_schema
        t_orjson, _ = timed(lambda: parse_only(lines, orjson.loads), repeat)
        t_json, _ = timed(lambda: parse_only(lines, json.loads), repeat)
        t_fast, _ = timed(lambda: parse_and_validate(lines, orjson.loads, model), repeat)
        t_std, _ = timed(lambda: parse_and_validate(lines, json.loads, model), repeat)

        results = sum(c.results for c in collected)
        print(f"\n2. parse + validate: {len(lines):,} output lines, {sum(map(len, outputs)) / MB:,.1f} MB")
        show("local server: upload + run the batch (not a target)", t_server, "s")
        passed = show("collect_shard (download, parse, validate, write)", t_collect, "s", 0.5)
        show("collect_shard (issue: each step)", t_collect, "s", 3.0)
        show("  of which: download the output file alone", t_download, "s")
        show("parse + validate in memory (orjson + Pydantic)", t_fast, "s", 0.5)
        show("  of which: orjson.loads alone", t_orjson, "s")
        show("  of which: Pydantic validation (the difference)", t_fast - t_orjson, "s")
        show("baseline: std json.loads alone", t_json, "s")
        show("baseline: parse + validate with std json", t_std, "s")
        show("baseline: std json / orjson (parse alone)", t_json / t_orjson, "x")
        show("collect_shard throughput", results / t_collect, "results/s")
        show(
            "traced peak: collect_shard",
            traced_peak(lambda: collect_all(client, job, specs, summaries)),
            "MB",
        )
        show(
            "traced peak: parse + validate in memory",
            traced_peak(lambda: parse_and_validate(lines, orjson.loads, model)),
            "MB",
        )
        show("peak RSS of this process so far", rss_mb(), "MB")
        if not passed:
            profile("collect_shard", lambda: collect_all(client, job, specs, summaries))
    finally:
        server.stop()
    return collected


# --- 3. load --------------------------------------------------------------------------------------


def bench_load(job, rows: pa.Table, run: dict[str, Any], collected, tmp: Path, baseline_rows: int):
    window = window_of(rows)
    rejections = run.summary.rejections_path

    def load(path: Path) -> dict[str, Any]:
        with duckdb_warehouse(path) as warehouse:
            return load_run(job, window, warehouse, collected, rejections, logical_date=window.start)

    db = tmp / "warehouse.duckdb"
    t_first, landed = timed(lambda: load(db), 1)
    t_second, again = timed(lambda: load(db), 1)
    with duckdb.connect(str(db)) as con:
        stored = con.execute(f"SELECT COUNT(*) FROM {job.target_table}").fetchone()[0]
    n = landed.results
    print(f"\n3. load: {n:,} results and {landed.failures:,} failures into a fresh DuckDB file")
    show("load_run, first load", t_first, "s", 3.0)
    show("load_run, second identical load (replace)", t_second, "s", 3.0)
    show("load_run, first load", n / t_first, "rows/s")
    show("load_run, second load", n / t_second, "rows/s")
    show("rows in the table after both loads (= results)", stored, "rows")
    show("rows replaced by the second load", again.replaced, "rows")
    show("traced peak: load_run (Arrow buffers not traced)", traced_peak(lambda: load(db)), "MB")
    show("peak RSS of this process so far", rss_mb(), "MB")

    target = pq.read_table(collected[0].results_path.removeprefix("file://")).slice(0, baseline_rows)
    tuples = list(zip(*(c.to_pylist() for c in target.columns), strict=True))
    with duckdb.connect(str(tmp / "baseline.duckdb")) as con:
        con.register("source", target)
        con.execute("CREATE TABLE by_row AS SELECT * FROM source LIMIT 0")
        con.execute("CREATE TABLE by_arrow AS SELECT * FROM source LIMIT 0")
        marks = ", ".join("?" * target.num_columns)
        t_rows, _ = timed(lambda: con.executemany(f"INSERT INTO by_row VALUES ({marks})", tuples), 1)
        t_arrow, _ = timed(lambda: con.execute("INSERT INTO by_arrow SELECT * FROM source"), 1)
    show(f"baseline: executemany, {len(tuples):,} rows row by row", len(tuples) / t_rows, "rows/s")
    show(f"baseline: Arrow insert, the same {len(tuples):,} rows", len(tuples) / t_arrow, "rows/s")
    show("baseline: Arrow / executemany", t_rows / t_arrow, "x")


# --- 4. memory ------------------------------------------------------------------------------------


def bench_memory(rows: pa.Table, tmp: Path, rows_3x: int) -> None:
    print(
        f"\n4. memory: is build_run bounded by the shard? Each build in a fresh process, "
        f"{SHARD_REQUESTS:,} requests per shard"
    )
    small, big = tmp / "rows-small.parquet", tmp / "rows-big.parquet"
    pq.write_table(rows, small)
    pq.write_table(source_rows(rows_3x), big)
    measured = [_child(small, tmp / "child-small"), _child(big, tmp / "child-big")]
    for m in measured:
        label = f"{m['rows']:,} rows, {m['shards']} shard(s)"
        show(f"{label}: traced peak", m["traced_peak_mb"], "MB")
        show(f"{label}: peak RSS", m["rss_peak_mb"], "MB")
        show(f"{label}: peak RSS added by the build", m["rss_added_mb"], "MB")
        show(f"{label}: {m['requests']:,} request lines hold", m["line_mb"], "MB")
    small_m, big_m = measured
    ratio = big_m["traced_peak_mb"] / small_m["traced_peak_mb"]
    show("traced peak ratio, 3x rows / 1x rows", ratio, "x", 1.25)
    show(
        "peak RSS added ratio, 3x rows / 1x rows", big_m["rss_added_mb"] / small_m["rss_added_mb"], "x", 1.25
    )
    show("largest shard ratio, 3x rows / 1x rows", big_m["largest_shard"] / small_m["largest_shard"], "x")
    if ratio > 1.25:
        print(
            "  NOT BOUNDED BY THE SHARD: build_run holds every request line of the run, and copies of them,\n"
            f"  at once: its traced peak is {big_m['traced_peak_mb'] / big_m['line_mb']:.1f}x the run's "
            "request bytes, whatever the shard size."
        )
    print(
        f"  top allocation sites of the {big_m['rows']:,}-row build, at the first content_digest call in "
        f"build_run ({big_m['snapshot_mb']:,.0f} MB traced there; peak {big_m['traced_peak_mb']:,.0f} MB):"
    )
    for site in big_m["top"]:
        print(f"    {site['mb']:8.1f} MB {site['count']:>9,} blocks  {site['where']}  {site['code']}")
    if ratio > 1.25:
        print(
            "  to bound it by the shard: build lines from Arrow slices in custom_id order; cut a shard when\n"
            "  full, validate, digest and write it, keep only its index rows and digest, drop its lines;\n"
            "  name the run by sha256(shard digests + job fingerprint) instead of joining every shard's bytes."
        )


def _child(rows_path: Path, storage: Path) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child-build", str(rows_path), "--storage", str(storage)]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def child_build(rows_path: Path, storage: Path) -> None:
    """In a fresh process: peak RSS and traced peak of one build_run, and what dominates it."""
    rows = pq.read_table(rows_path)
    job = dataclasses.replace(
        JOB, storage_url=storage.as_uri(), shard_limits=ShardLimits(max_requests=SHARD_REQUESTS)
    )
    window = window_of(rows)
    build_run(job, window, rows.slice(0, 200))  # imports and plugin discovery
    reset_peak_rss()
    before = status_mb("VmRSS")
    run = build_run(job, window, rows)
    rss_peak = status_mb("VmHWM")
    rss_added = rss_peak - before

    snapshots: list[tracemalloc.Snapshot] = []
    real_digest = build_module.content_digest

    def digest_with_snapshot(content: bytes) -> str:
        if not snapshots:
            snapshots.append(tracemalloc.take_snapshot())
        return real_digest(content)

    build_module.content_digest = digest_with_snapshot
    try:
        peak = traced_peak(lambda: build_run(job, window, rows))
    finally:
        build_module.content_digest = real_digest
    snapshot_mb = sum(t.size for t in snapshots[0].traces) / MB
    stats = snapshots[0].filter_traces([tracemalloc.Filter(False, tracemalloc.__file__)]).statistics("lineno")
    top = [
        {
            "mb": s.size / MB,
            "count": s.count,
            "where": f"{_short(s.traceback[0].filename)}:{s.traceback[0].lineno}",
            "code": linecache.getline(s.traceback[0].filename, s.traceback[0].lineno).strip()[:70],
        }
        for s in stats[:6]
    ]
    shards = run.shards
    print(
        json.dumps(
            {
                "rows": rows.num_rows,
                "requests": run.summary.requests,
                "shards": len(shards),
                "largest_shard": max(s.bytes for s in shards),
                "line_mb": sum(s.bytes for s in shards) / MB,
                "rss_added_mb": rss_added,
                "rss_peak_mb": rss_peak,
                "traced_peak_mb": peak,
                "snapshot_mb": snapshot_mb,
                "top": top,
            }
        )
    )


# --- main -----------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=3, help="timed runs per figure (median)")
    parser.add_argument("--baseline-rows", type=int, default=20_000, help="rows for executemany")
    parser.add_argument("--child-build", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--storage", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.INFO)
    if args.child_build:
        child_build(args.child_build, args.storage)
        return

    rows = source_rows(args.rows)
    print(f"bench_pipeline: {rows.num_rows:,} sample review rows, median of {args.repeat} warm runs")
    print(f"  load average of this {os.cpu_count()}-core machine at start: {os.getloadavg()[0]:.2f}")
    show("peak RSS after generating the rows, before any step", rss_mb(), "MB")
    with tempfile.TemporaryDirectory(prefix="bench-pipeline-") as name:
        tmp = Path(name)
        job = dataclasses.replace(JOB, storage_url=(tmp / "runs").as_uri())
        run = bench_build(job, rows, args.repeat)
        collected = bench_collect(job, run, tmp, args.repeat)
        bench_load(job, rows, run, collected, tmp, args.baseline_rows)
        bench_memory(rows, tmp, 3 * args.rows)


if __name__ == "__main__":
    main()
