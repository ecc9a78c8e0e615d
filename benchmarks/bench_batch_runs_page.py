"""How fast the Batch runs page answers, and how long it holds the warehouse, with a year of runs.

Writes ``--runs`` finished runs of the two sample jobs (and a few batches in flight) into a
DuckDB warehouse through the library's own write paths, then times each JSON endpoint of the
page's app in process (no network), ``--repeat`` times, and how long each request kept the
DuckDB file open. The page should load in well under a second; the file should be held for
milliseconds, so the pipeline's writers never wait on a reader.
"""

from __future__ import annotations

import argparse
import datetime as dt
import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from batch_runs_ui.app import create_app
from dags.review_embeddings import JOB as EMBEDDINGS_JOB
from dags.review_sentiment import JOB as SENTIMENT_JOB
from include.sample_data.run_history import PastRun, write_in_flight, write_run
from llm_batch.warehouse import DuckDBWarehouse, duckdb_warehouse

NOW = dt.datetime(2026, 6, 30, 12, 0)
REASONS = ("server_error", "invalid_json", "rate_limited", "truncated")


class TimedWarehouse(DuckDBWarehouse):
    """A read-only warehouse that records how long it stayed open."""

    held: list[float] = []

    def __enter__(self):
        self._opened = time.perf_counter()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
        TimedWarehouse.held.append(time.perf_counter() - self._opened)


def seed(path: Path, files: Path, runs: int) -> list[tuple[str, str]]:
    """``runs`` runs, one a day per job going back from NOW, and five batches in flight."""
    written = []
    jobs = (SENTIMENT_JOB, EMBEDDINGS_JOB)
    with duckdb_warehouse(path) as warehouse:
        for n in range(runs):
            job = jobs[n % len(jobs)]
            day = (NOW - dt.timedelta(days=n // len(jobs) + 1)).date()
            failures = {REASONS[n % len(REASONS)]: n % 7, REASONS[(n + 1) % len(REASONS)]: n % 3}
            run = PastRun(
                day=day,
                run_id=f"scheduled__{day.isoformat()}T00:00:00+00:00",
                reported_at=dt.datetime.combine(day + dt.timedelta(days=1), dt.time(0, 40)),
                shard_results=(40 + n % 30, 30),
                failure_reasons=failures,
                rejected={"blank_text": n % 2},
            )
            written.append((job.name, write_run(warehouse, files, job, run).report.run_id))
        for shard in range(5):
            write_in_flight(
                warehouse,
                SENTIMENT_JOB,
                run_id="manual__in_flight",
                day=NOW.date(),
                shard=shard,
                requests=1000,
                submitted_at=NOW - dt.timedelta(hours=shard * 5),
            )
    return written


def timed(client: TestClient, path: str, params: dict, repeat: int) -> tuple[list[float], int]:
    seconds, size = [], 0
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(path, params=params)
        seconds.append(time.perf_counter() - started)
        response.raise_for_status()
        size = len(response.content)
    return seconds, size


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1000)
    parser.add_argument("--repeat", type=int, default=10)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        path, files = Path(tmp) / "warehouse.duckdb", Path(tmp) / "files"
        started = time.perf_counter()
        written = seed(path, files, args.runs)
        print(
            f"seeded {args.runs} runs (2 jobs) and 5 batches in flight in {time.perf_counter() - started:.1f} s"
        )
        app = create_app(lambda: TimedWarehouse(path, read_only=True), clock=lambda: NOW)
        client = TestClient(app)
        job, run_id = written[len(written) // 2]
        endpoints = {
            "overview, a year (every run)": ("/api/overview", {"days": 366}),
            "overview, 90 days": ("/api/overview", {"days": 90}),
            "in flight": ("/api/inflight", {}),
            "one run": ("/api/run", {"job": job, "run_id": run_id}),
            "the page's HTML": ("/", {}),
        }
        print(f"{'endpoint':<30} {'median ms':>10} {'max ms':>8} {'bytes':>9}")
        for name, (route, params) in endpoints.items():
            seconds, size = timed(client, route, params, args.repeat)
            print(
                f"{name:<30} {statistics.median(seconds) * 1000:>10.1f} {max(seconds) * 1000:>8.1f} {size:>9,}"
            )
        held = TimedWarehouse.held
        print(
            f"warehouse file held open per request: median {statistics.median(held) * 1000:.1f} ms, "
            f"max {max(held) * 1000:.1f} ms over {len(held)} reads"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
