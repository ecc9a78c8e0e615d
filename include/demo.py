"""``make demo``: the nightly sentiment job for yesterday, end to end, on embedded defaults.

Starts the local Batch API server, writes the sample source, runs the DAG through
``airflow dags test`` (the deferrable wait included), prints what landed and what it cost, and
stops the server. State is kept between runs, so a second run shows that nothing is paid twice.
"""

from __future__ import annotations

import argparse
import datetime as dt
import secrets
import sys
import time
from pathlib import Path

import duckdb
import httpx

from include.local_airflow import LocalAirflow
from include.sample_data.reviews import write_reviews
from local_batch_api.subprocess_server import ServerProcess

SERVER_TIMINGS = ("--validating-seconds", "1", "--finalizing-seconds", "0.5", "--request-seconds", "0.0005")


def count_batches(server: ServerProcess) -> int:
    return sum(1 for _ in server.client(max_retries=2).batches.list(limit=100))


def summarize(stack: LocalAirflow, day: dt.date, new_batches: int, seconds: float) -> None:
    with duckdb.connect(str(stack.warehouse_db), read_only=True) as db:
        landed = db.execute("SELECT count(*) FROM review_sentiment WHERE review_date = ?", [day]).fetchone()[
            0
        ]
        labels = db.execute(
            "SELECT label, count(*) FROM review_sentiment WHERE review_date = ? GROUP BY 1 ORDER BY 2 DESC",
            [day],
        ).fetchall()
        failures = db.execute(
            "SELECT reason, count(*) FROM llm_batch_failures WHERE job = 'review_sentiment' AND row_date = ? "
            "GROUP BY 1 ORDER BY 2 DESC",
            [day],
        ).fetchall()
        report = db.execute(
            "SELECT requests, results, failures, batches, input_tokens, output_tokens, cost_usd, sync_cost_usd "
            "FROM llm_batch_runs WHERE job = 'review_sentiment' AND \"window\" = ? ORDER BY reported_at DESC LIMIT 1",
            [day.isoformat()],
        ).fetchone()
        totals = db.execute(
            "SELECT sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(sync_cost_usd) FROM llm_batch_ledger "
            "WHERE job = 'review_sentiment' AND interval_label = ?",
            [day.isoformat()],
        ).fetchone()
        samples: list[tuple] = []
    with duckdb.connect(str(stack.source_db), read_only=True) as source:
        rows = source.execute("SELECT count(*) FROM reviews WHERE review_date = ?", [day]).fetchone()[0]
        texts = dict(
            source.execute(
                "SELECT review_id, review_text FROM reviews WHERE review_date = ? AND language = 'en' "
                "AND length(review_text) BETWEEN 40 AND 160",
                [day],
            ).fetchall()
        )
    with duckdb.connect(str(stack.warehouse_db), read_only=True) as db:
        for label in ("positive", "neutral", "negative"):
            samples += db.execute(
                "SELECT review_id, label, confidence, reason FROM review_sentiment WHERE review_date = ? "
                "AND label = ? ORDER BY review_id",
                [day, label],
            ).fetchall()[:40]
    print()
    print(f"== review_sentiment for {day} ({seconds:.0f} s) ==")
    print(f"source rows: {rows}; rows landed: {landed}; by label: {dict(labels)}")
    print(f"failures by reason: {dict(failures) or 'none'}")
    print(f"new batches created this run: {new_batches}")
    if report:
        print(
            f"this run: {report[0]} requests submitted, {report[1]} results, {report[2]} failures, {report[3]} batches"
        )
    if totals and totals[0] is not None:
        print(
            f"tokens for the day: {totals[0]:,} in, {totals[1]:,} out; cost at batch prices ${totals[2]:.4f}, "
            f"at synchronous prices ${totals[3]:.4f} (saved ${totals[3] - totals[2]:.4f})"
        )
    print("\nsample rows (label, confidence, review):")
    shown: dict[str, int] = {}
    for review_id, label, confidence, reason in samples:
        if review_id in texts and shown.get(label, 0) < 2:
            shown[label] = shown.get(label, 0) + 1
            print(f"  {label:<8} {confidence:.2f}  {texts[review_id][:100]!r}")
            print(f"  {'':<8} {'':<4}  reason: {reason}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".local/demo"))
    parser.add_argument(
        "--date",
        type=dt.date.fromisoformat,
        default=dt.date.today() - dt.timedelta(days=1),
        help="day to process",
    )
    args = parser.parse_args(argv)
    root = args.data_dir.resolve()
    root.mkdir(parents=True, exist_ok=True)
    key_file = root / "server-api-key"
    if not key_file.exists():
        key_file.write_text(secrets.token_urlsafe(24))
        key_file.chmod(0o600)
    api_key = key_file.read_text().strip()

    server = ServerProcess(
        root / "batch-api", *SERVER_TIMINGS, api_key=api_key, log_path=root / "batch-api.log"
    )
    server.start()
    try:
        stack = LocalAirflow(root, server.base_url, api_key)
        if not stack.source_db.exists():
            count = write_reviews(stack.source_db, end=dt.date.today())
            print(f"wrote {count:,} sample reviews (90 days) to {stack.source_db}")
        print("preparing Airflow (metadata database, pool) ...", flush=True)
        stack.prepare()
        before = count_batches(server)
        print(f"running review_sentiment for {args.date} with `airflow dags test` ...", flush=True)
        started = time.monotonic()
        # A run's data interval ends at its logical date: the run for a day is dated the day after.
        logical_date = (args.date + dt.timedelta(days=1)).isoformat()
        result = stack.dags_test("review_sentiment", logical_date, check=False)
        log_path = root / f"dags-test-{args.date}.log"
        log_path.write_text((result.stdout or "") + (result.stderr or ""))
        if result.returncode != 0:
            print((result.stdout or "")[-3000:] + (result.stderr or "")[-3000:])
            print(f"the run failed; full log in {log_path}")
            return 1
        summarize(stack, args.date, count_batches(server) - before, time.monotonic() - started)
        print(f"\nfull Airflow log: {log_path}")
        return 0
    except httpx.HTTPError as exc:
        print(f"could not reach the local Batch API server: {exc}")
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
