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

import anthropic
import duckdb
import httpx
import orjson

from include.batch_api_process import ServerProcess
from include.local_airflow import PROVIDERS, LocalAirflow
from include.sample_data.reviews import write_reviews
from llm_batch.handoffs import RunReport
from llm_batch.report import describe

SERVER_TIMINGS = ("--validating-seconds", "1", "--finalizing-seconds", "0.5", "--request-seconds", "0.0005")


# The model each provider's demo asks for (on Azure, the name of the deployment).
DEMO_MODELS = {"openai": None, "azure": None, "anthropic": "claude-haiku-4-5"}


def count_batches(server: ServerProcess, provider: str) -> int:
    if provider == "anthropic":
        client = anthropic.Anthropic(
            base_url=f"http://127.0.0.1:{server.port}", api_key=server.api_key, max_retries=2
        )
        return sum(1 for _ in client.messages.batches.list(limit=100))
    return sum(1 for _ in server.client(max_retries=2).batches.list(limit=100))


def summarize(stack: LocalAirflow, day: dt.date, new_batches: int, seconds: float) -> None:
    """What landed for the day, what it cost, and a few rows a person can check by eye.

    Every source row of the day is accounted for once: landed, failed (with its reason), or a
    duplicate of another row's key (the latest version is the one answered).
    """
    with duckdb.connect(str(stack.warehouse_db), read_only=True) as db:
        db.execute(f"ATTACH '{stack.source_db}' AS source (READ_ONLY)")

        def rows(sql: str) -> list[tuple]:
            params = {"day": day, "label": day.isoformat()}
            return db.execute(sql, {k: v for k, v in params.items() if f"${k}" in sql}).fetchall()

        source_rows, source_keys = rows(
            "SELECT count(*), count(DISTINCT review_id) FROM source.reviews WHERE review_date = $day"
        )[0]
        labels = dict(
            rows("SELECT label, count(*) FROM review_sentiment WHERE review_date = $day GROUP BY 1")
        )
        failures = dict(
            rows(
                "SELECT reason, count(*) FROM llm_batch_failures "
                "WHERE job = 'review_sentiment' AND row_date = $day GROUP BY 1 ORDER BY 2 DESC"
            )
        )
        last_run = (
            db.sql(
                "SELECT * FROM llm_batch_runs WHERE job = 'review_sentiment' AND \"window\" = $label "
                "ORDER BY reported_at DESC LIMIT 1",
                params={"label": day.isoformat()},
            )
            .to_arrow_table()
            .to_pylist()
        )
        tokens_in, tokens_out, cost, sync_cost = rows(
            "SELECT sum(input_tokens), sum(output_tokens), sum(cost_usd), sum(sync_cost_usd) "
            "FROM llm_batch_ledger WHERE job = 'review_sentiment' AND interval_label = $label"
        )[0]
        samples = rows(
            "SELECT label, confidence, reason, review_text FROM ("
            "  SELECT s.label, s.confidence, s.reason, r.review_text,"
            "         row_number() OVER (PARTITION BY s.label ORDER BY s.review_id) AS n"
            "  FROM review_sentiment s JOIN source.reviews r USING (review_id)"
            "  WHERE s.review_date = $day AND r.language = 'en' AND length(r.review_text) BETWEEN 40 AND 160"
            ") WHERE n <= 2 ORDER BY label DESC"
        )
    landed, failed, duplicates = sum(labels.values()), sum(failures.values()), source_rows - source_keys
    accounting = (
        f"source rows {source_rows} = {landed} landed + {failed} failed"
        f" + {duplicates} duplicates of a newer row with the same key"
    )
    if landed + failed + duplicates != source_rows:
        accounting += f" ({source_rows - landed - failed - duplicates:+} not accounted for)"
    print(f"\n== review_sentiment for {day} ({seconds:.0f} s) ==")
    print(accounting)
    print(f"landed by label: {labels}")
    print(f"failed by reason: {failures or 'none'}")
    print(f"new batches created by this run: {new_batches}")
    if last_run:
        row = last_run[0]
        print(describe(RunReport.from_xcom({**row, "failure_reasons": orjson.loads(row["failure_reasons"])})))
    if tokens_in is not None:
        if cost is None:
            money = "cost unpriced (the model has no known price)"
        else:
            money = (
                f"cost at batch prices ${cost:.4f}, at synchronous prices ${sync_cost:.4f} "
                f"(saved ${sync_cost - cost:.4f})"
            )
        print(f"all batches for the day: tokens {tokens_in:,} in, {tokens_out:,} out; {money}")
    print("\nsample rows (label, confidence, review):")
    for label, confidence, reason, text in samples:
        print(f"  {label:<8} {confidence:.2f}  {text[:100]!r}")
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
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        default="openai",
        help="the dialect the job's connection speaks (the local server answers all three)",
    )
    args = parser.parse_args(argv)
    root = args.data_dir.resolve()
    if args.provider != "openai":  # each provider's demo keeps its own state
        root = root / args.provider
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
        stack = LocalAirflow(root, server.base_url, api_key, provider=args.provider)
        if not stack.source_db.exists():
            count = write_reviews(stack.source_db, end=dt.date.today())
            print(f"wrote {count:,} sample reviews (90 days) to {stack.source_db}")
        print("preparing Airflow (metadata database, pool) ...", flush=True)
        stack.prepare()
        before = count_batches(server, args.provider)
        model = DEMO_MODELS[args.provider]
        conf = {"model": model} if model else None
        print(
            f"running review_sentiment for {args.date} on {args.provider} with `airflow dags test` ...",
            flush=True,
        )
        started = time.monotonic()
        # A run's data interval ends at its logical date: the run for a day is dated the day after.
        logical_date = (args.date + dt.timedelta(days=1)).isoformat()
        result = stack.dags_test("review_sentiment", logical_date, conf, check=False)
        log_path = root / f"dags-test-{args.date}.log"
        log_path.write_text((result.stdout or "") + (result.stderr or ""))
        if result.returncode != 0:
            print((result.stdout or "")[-3000:] + (result.stderr or "")[-3000:])
            print(f"the run failed; full log in {log_path}")
            return 1
        summarize(stack, args.date, count_batches(server, args.provider) - before, time.monotonic() - started)
        print(f"\nfull Airflow log: {log_path}")
        return 0
    except httpx.HTTPError as exc:
        print(f"could not reach the local Batch API server: {exc}")
        return 1
    finally:
        server.stop()


if __name__ == "__main__":
    sys.exit(main())
