"""A whole night at scale: the library's steps end to end, each in a fresh process, at growing sizes.

For each of ``--sizes`` source rows (default 200,000, 1,000,000 and 5,000,000 sample reviews of
one day in a DuckDB source, 1 % of them older versions of a key), it runs the steps a DAG run
runs, each as a worker runs it, in a process of its own:

    extract+build -> submit (a process per shard) -> wait (the local server answers)
    -> collect (a process per shard) -> load

and prints, per step, the wall time, the process's peak RSS and rows/s (for submit and collect,
a process per shard, forked one after another from an interpreter that has imported the library,
as a worker forks a task: the summed time and the largest peak, since in a DAG each shard is a
task of its own); for the wait, the server's
CPU seconds from the first upload to the last answer. Then the growth between sizes: seconds per row and peak RSS per step, each as a ratio
to the smallest size (flat per-row cost reads 1.00x; peak RSS that does not grow reads ~1.00x).

Last, a wave run (``--wave-rows`` rows, in one process) against a server started with
``--enqueued-token-limit`` at a fifth of the run's estimated need, declared to the job as its
limit: it prints how many batches it took, the most tokens ever enqueued at once as the server
counted them (sampled from the server's own state every 20 ms), and how many batches the server
refused with ``token_limit_exceeded`` (the target: none, and the peak never above the limit).

The warehouse is a DuckDB file (``--warehouse postgres`` loads into PostgreSQL instead, from
PGHOST/PGPORT/PGUSER/PGDATABASE, default 127.0.0.1:5432 postgres/test, in a schema of its own).
The load average is printed beside the figures: on a busy machine they mean little.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/bench_scale.py [--sizes 200000 1000000 5000000] [--wave-rows 3000]
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime as dt
import json
import logging
import os
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import duckdb
from openai import OpenAI

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "plugins")]

from dags.review_sentiment import JOB  # noqa: E402
from include.batch_api_process import ServerProcess  # noqa: E402
from include.sample_data.bulk_reviews import write_bulk_reviews  # noqa: E402
from include.window_run import WindowRun  # noqa: E402
from llm_batch import steps  # noqa: E402
from llm_batch.backends.openai_backend import OpenAIBatchBackend  # noqa: E402
from llm_batch.backends.records import BatchState  # noqa: E402
from llm_batch.handoffs import BuildSummary, ShardOutcome, ShardSpec, Submission  # noqa: E402
from llm_batch.job import BatchJob, ShardLimits  # noqa: E402
from llm_batch.run_window import RunWindow  # noqa: E402
from llm_batch.warehouse import Warehouse, duckdb_warehouse, postgres_warehouse  # noqa: E402

DAY = dt.date(2026, 3, 31)
WINDOW = RunWindow(DAY, DAY + dt.timedelta(days=1))
API_KEY = "bench-not-a-secret"
STEPS = ("extract+build", "submit", "wait", "collect", "load")
SERVER_FLAGS = ("--validating-seconds", "0", "--finalizing-seconds", "0", "--request-seconds", "0")


# --- the run's setting, shared by the parent and each step's process -------------------------------


@dataclasses.dataclass(frozen=True)
class Setting:
    work: str
    source: str
    warehouse: str  # a DuckDB file, or a PostgreSQL DSN with `?options=-csearch_path=...`
    base_url: str

    @property
    def job(self) -> BatchJob:
        # A limit no run reaches: this run measures the steps, the wave run below the waves.
        limits = ShardLimits(max_enqueued_tokens=10**12)
        return dataclasses.replace(JOB, storage_url=Path(self.work, "runs").as_uri(), shard_limits=limits)

    def open_warehouse(self) -> Warehouse:
        if self.warehouse.startswith("postgresql://"):
            return postgres_warehouse(self.warehouse)
        return duckdb_warehouse(self.warehouse)

    @property
    def connections(self) -> steps.Connections:
        client = OpenAI(base_url=self.base_url, api_key=API_KEY, max_retries=5)
        return steps.Connections(
            source=lambda: duckdb_warehouse(self.source, read_only=True),
            warehouse=self.open_warehouse,
            backend=lambda: OpenAIBatchBackend(client=client),
        )

    def path(self, name: str) -> Path:
        return Path(self.work, name)

    def read(self, name: str) -> Any:
        return json.loads(self.path(name).read_text())

    def read_shards(self, prefix: str) -> list[Any]:
        """What each shard's process wrote as ``{prefix}-{shard}.json``, in shard order."""
        paths = sorted(Path(self.work).glob(f"{prefix}-*.json"), key=lambda p: int(p.stem.rsplit("-", 1)[1]))
        return [json.loads(path.read_text()) for path in paths]

    def write(self, name: str, value: Any) -> None:
        self.path(name).write_text(json.dumps(value, default=str))


# --- the steps, one per process ----------------------------------------------------------------------


def run_step(step: str, setting: Setting, shard: int | None) -> None:
    job, connections, run_id = setting.job, setting.connections, "bench_scale"
    if step == "extract+build":
        built = steps.build(job, WINDOW, steps.RunOptions(), run_id=run_id, connections=connections)
        setting.write(
            "built.json", {"summary": built.summary.to_xcom(), "shards": [s.to_xcom() for s in built.shards]}
        )
    elif step == "submit":
        spec = ShardSpec.from_xcom(setting.read("built.json")["shards"][shard])
        submitted = steps.submit(job, spec, run_id=run_id, connections=connections)
        setting.write(f"submitted-{shard}.json", submitted.to_xcom())
    elif step == "wait":
        backend = connections.backend()
        pending = {s["batch_id"] for s in setting.read_shards("submitted") if s["batch_id"]}
        states: dict[str, Any] = {}
        while pending:
            for batch_id in sorted(pending):
                state = backend.retrieve(batch_id)
                if state.is_terminal:
                    states[batch_id] = state.to_summary()
                    pending.discard(batch_id)
            time.sleep(0.5 if pending else 0)
        setting.write("waited.json", states)
    elif step == "collect":
        submission = Submission.from_xcom(setting.read(f"submitted-{shard}.json"))
        if submission.batch_id is not None:
            state = setting.read("waited.json")[submission.batch_id]
            assert BatchState.from_summary(state).is_terminal
            outcome = steps.collect(job, submission, state, connections=connections)
            setting.write(f"collected-{shard}.json", outcome.to_xcom())
    elif step == "load":
        summary = BuildSummary.from_xcom(setting.read("built.json")["summary"])
        outcomes = [ShardOutcome.from_xcom(o) for o in setting.read_shards("collected")]
        counts = steps.load(job, WINDOW, summary, outcomes, logical_date=DAY, connections=connections)
        setting.write("loaded.json", counts.to_xcom())
    else:
        raise SystemExit(f"unknown step {step!r}")


@dataclasses.dataclass
class Measured:
    seconds: float
    peak_rss_mb: float


PER_SHARD_STEPS = ("submit", "collect")  # mapped over the shards in a DAG: a task, so a process, each


def peak_rss_mb() -> float:
    """This process image's peak RSS (VmHWM). Not ``ru_maxrss``: at exec the kernel folds the
    parent's peak into the child's, so every step would report at least this script's own."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


def measure_step(step: str, setting: Setting) -> Measured:
    """Run ``step`` in a fresh interpreter, which reports its own peak RSS.

    A mapped step runs each shard in a process forked from one interpreter that has imported the
    library, as an Airflow worker forks a task's process: the shards' summed time and their
    largest peak, without paying the imports once per shard.
    """
    setting.write("setting.json", dataclasses.asdict(setting))
    command = [sys.executable, __file__, "--step", step, "--work", setting.work]
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    started = time.perf_counter()
    process = subprocess.run(command, env=env, check=False)
    seconds = time.perf_counter() - started
    if process.returncode != 0:
        raise SystemExit(f"step {step} exited {process.returncode}")
    if step in PER_SHARD_STEPS:
        return Measured(**setting.read(f"{step}-measured.json"))
    return Measured(seconds, setting.read(f"{step}-peak.json"))


def run_shards_forked(step: str, setting: Setting) -> None:
    """Run ``step`` for each shard in a child forked from this process; write the children's figures."""
    each = []
    for shard in range(len(setting.read("built.json")["shards"])):
        started = time.perf_counter()
        pid = os.fork()
        if pid == 0:
            try:
                run_step(step, setting, shard)
                setting.write(f"{step}-{shard}-peak.json", peak_rss_mb())
            except BaseException:
                logging.getLogger(__name__).exception("shard %d", shard)
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"step {step}, shard {shard}: exited {os.waitstatus_to_exitcode(status)}")
        each.append(Measured(time.perf_counter() - started, setting.read(f"{step}-{shard}-peak.json")))
    setting.write(
        f"{step}-measured.json",
        {
            "seconds": sum(m.seconds for m in each),
            "peak_rss_mb": max((m.peak_rss_mb for m in each), default=0.0),
        },
    )


def server_cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


# --- the parent: sizes, growth, waves ---------------------------------------------------------------


def pg_schema_dsn() -> tuple[str, str, str]:
    """The server's DSN, one whose search path is a new schema, and that schema."""
    host, port = os.environ.get("PGHOST", "127.0.0.1"), os.environ.get("PGPORT", "5432")
    user, database = os.environ.get("PGUSER", "postgres"), os.environ.get("PGDATABASE", "test")
    schema = f"bench_scale_{uuid.uuid4().hex[:8]}"
    base = f"postgresql://{user}@{host}:{port}/{database}"
    return base, f"{base}?options=-csearch_path%3D{schema}", schema


def run_size(rows: int, tmp: Path, warehouse: str) -> dict[str, Any]:
    work = tmp / f"rows-{rows}"
    work.mkdir()
    print(f"\n{rows:,} source rows: writing the source ...", flush=True)
    source = work / "source.duckdb"
    write_bulk_reviews(source, rows, DAY)
    server = ServerProcess(work / "server", *SERVER_FLAGS, api_key=API_KEY).start()
    cleanup = None
    try:
        if warehouse == "postgres":
            import psycopg

            base, dsn, schema = pg_schema_dsn()
            with psycopg.connect(base, autocommit=True) as conn:
                conn.execute(f'CREATE SCHEMA "{schema}"')
            cleanup = (base, schema)
            target = dsn
        else:
            target = str(work / "warehouse.duckdb")
        setting = Setting(str(work), str(source), target, server.base_url)
        figures: dict[str, Any] = {"rows": rows}
        for step in STEPS:
            if step == "submit":  # the server works from the first upload to the last answer
                cpu_before = server_cpu_seconds(server.process.pid)
            measured = measure_step(step, setting)
            figures[step] = measured
            extra = ""
            if step == "wait":
                figures["server_cpu"] = server_cpu_seconds(server.process.pid) - cpu_before
                extra = f"  server CPU {figures['server_cpu']:7.1f} s (since the first upload)"
            print(
                f"  {step:<14} {measured.seconds:8.1f} s  peak RSS {measured.peak_rss_mb:7.0f} MB  "
                f"{rows / max(measured.seconds, 1e-9):10,.0f} rows/s{extra}",
                flush=True,
            )
        built = setting.read("built.json")
        loaded = setting.read("loaded.json")
        figures["shards"] = len(built["shards"])
        figures["landed"] = loaded["results"]
        total = sum(figures[s].seconds for s in STEPS)
        print(
            f"  whole run      {total:8.1f} s  {rows / total:10,.0f} rows/s; {figures['shards']} batches, "
            f"{loaded['results']:,} rows landed, {loaded['failures']:,} failures "
            f"(load average {os.getloadavg()[0]:.2f})",
            flush=True,
        )
        return figures
    finally:
        server.stop()
        if cleanup:
            import psycopg

            with psycopg.connect(cleanup[0], autocommit=True) as conn:
                conn.execute(f'DROP SCHEMA "{cleanup[1]}" CASCADE')


def print_growth(results: list[dict[str, Any]]) -> None:
    base = results[0]
    print(f"\ngrowth against {base['rows']:,} rows (seconds per row; peak RSS), 1.00x = flat")
    for figures in results[1:]:
        scale = figures["rows"] / base["rows"]
        per_row = "  ".join(
            f"{s} {figures[s].seconds / scale / max(base[s].seconds, 1e-9):.2f}x" for s in STEPS
        )
        rss = "  ".join(f"{s} {figures[s].peak_rss_mb / base[s].peak_rss_mb:.2f}x" for s in STEPS)
        worst = max(figures[s].peak_rss_mb for s in STEPS)
        print(f"  {figures['rows']:>10,} rows ({scale:.0f}x): per row  {per_row}")
        print(f"  {'':>10}            peak RSS {rss}; largest {worst:.0f} MB (target <= 1024 MB)")


def wave_run(rows: int, tmp: Path) -> None:
    """A run needing five times its model's enqueued-token limit, in waves under it."""
    work = tmp / "waves"
    work.mkdir()
    source = work / "source.duckdb"
    write_bulk_reviews(source, rows, DAY)
    warehouse_path = work / "warehouse.duckdb"
    with duckdb.connect(str(warehouse_path)) as db:
        db.execute(f"ATTACH '{source}' AS src (READ_ONLY); CREATE TABLE reviews AS SELECT * FROM src.reviews")

    def open_warehouse() -> Warehouse:
        return duckdb_warehouse(warehouse_path)

    job = dataclasses.replace(JOB, storage_url=(work / "runs").as_uri())
    need = WindowRun(job, WINDOW, open_warehouse, OpenAIBatchBackend(client=None), "probe").build()
    limit = need.summary.estimated_input_tokens // 5 + 1
    flags = (*SERVER_FLAGS[:-1], "0.002", "--enqueued-token-limit", str(limit))
    server = ServerProcess(work / "server", *flags, api_key=API_KEY).start()
    peak, stop = [0], threading.Event()

    def sample() -> None:  # the server's own count of what is enqueued, from its state file
        db = sqlite3.connect(f"file:{work / 'server' / 'state.sqlite3'}?mode=ro", uri=True, timeout=5)
        while not stop.wait(0.02):
            enqueued = db.execute(
                "SELECT COALESCE(SUM(enqueued_tokens), 0) FROM batches WHERE status IN ('in_progress', 'finalizing')"
            ).fetchone()
            peak[0] = max(peak[0], enqueued[0])
        db.close()

    sampler = threading.Thread(target=sample, daemon=True)
    try:
        limited = dataclasses.replace(job, shard_limits=ShardLimits(max_enqueued_tokens=limit))
        client = OpenAI(base_url=server.base_url, api_key=API_KEY, max_retries=5)
        run = WindowRun(limited, WINDOW, open_warehouse, OpenAIBatchBackend(client=client), "waves")
        sampler.start()
        started = time.perf_counter()
        loaded = run.run(timeout=3600)
        seconds = time.perf_counter() - started
        stop.set()
        sampler.join()
        batches = list(client.batches.list(limit=100))  # every page
        refused = sum(
            1 for b in batches if b.errors and any(e.code == "token_limit_exceeded" for e in b.errors.data)
        )
        print(
            f"\nwave run: {rows:,} rows needing {need.summary.estimated_input_tokens:,} tokens, limit {limit:,} "
            f"(1/5 of the need): {len(batches)} batches in {seconds:.1f} s, {loaded.results:,} rows landed"
        )
        print(
            f"  most tokens enqueued at once {peak[0]:,} ({peak[0] / limit:.0%} of the limit; "
            f"{'PASS' if peak[0] <= limit else 'MISS'}); batches refused for the limit: {refused} "
            f"({'PASS' if refused == 0 else 'MISS'})"
        )
    finally:
        stop.set()
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[200_000, 1_000_000, 5_000_000])
    parser.add_argument("--wave-rows", type=int, default=3_000, help="0: no wave run")
    parser.add_argument("--warehouse", choices=["duckdb", "postgres"], default="duckdb")
    parser.add_argument("--step", choices=STEPS, help=argparse.SUPPRESS)
    parser.add_argument("--work", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    logging.disable(logging.WARNING)
    if args.step:
        setting = Setting(**json.loads((args.work / "setting.json").read_text()))
        if args.step in PER_SHARD_STEPS:
            run_shards_forked(args.step, setting)
        else:
            run_step(args.step, setting, None)
            setting.write(f"{args.step}-peak.json", peak_rss_mb())
        return

    print(f"bench_scale: sizes {', '.join(f'{n:,}' for n in args.sizes)}; warehouse {args.warehouse}")
    print(f"  load average of this {os.cpu_count()}-core machine at start: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory(prefix="bench-scale-") as name:
        tmp = Path(name)
        results = [run_size(rows, tmp, args.warehouse) for rows in sorted(args.sizes)]
        if len(results) > 1:
            print_growth(results)
        if args.wave_rows:
            wave_run(args.wave_rows, tmp)
    print(f"  load average at the end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
