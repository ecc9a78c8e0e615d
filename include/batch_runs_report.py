"""``make report``: the last runs, their money and the batches in flight, read as the Batch runs page reads them.

Safe while the stack runs: it opens the warehouse read-only for one short read and closes it,
through the page's own query module, so the pipeline's writers never wait on it. With a DuckDB
warehouse it reads ``<root>/warehouse.duckdb``; ``--warehouse`` takes another file or a
PostgreSQL DSN (the celery stack's is ``postgresql://postgres@127.0.0.1:5432/llm_warehouse``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import sys
from pathlib import Path
from typing import Any

from batch_runs_ui import queries
from batch_runs_ui.app import IN_FLIGHT_HORIZON, utcnow
from batch_runs_ui.reading import NoWarehouseYet, WarehouseBusy, read_briefly
from llm_batch.warehouse import Warehouse, duckdb_warehouse, postgres_warehouse

REPORT_PATIENCE_SECONDS = 10.0  # how long the command waits for a file a writer holds


def opener(where: str):
    if where.startswith(("postgresql://", "postgres://")):
        return lambda: postgres_warehouse(where)
    return lambda: duckdb_warehouse(where, read_only=True, lock_wait_seconds=REPORT_PATIENCE_SECONDS)


def read_all(warehouse: Warehouse, since: dt.datetime, now: dt.datetime) -> dict[str, Any]:
    tables = queries.existing_tables(warehouse)
    return {
        "runs": queries.run_rows(queries.runs_since(warehouse, tables, since)),
        "in_flight": queries.batches_in_flight(warehouse, tables, now - IN_FLIGHT_HORIZON),
    }


def render(data: dict[str, Any], last: int, now: dt.datetime) -> str:
    lines: list[str] = []
    jobs = queries.jobs_over_time(data["runs"])
    lines.append(f"Jobs ({len(data['runs'])} runs in the period)")
    lines.append(
        f"  {'job':<22} {'runs':>5} {'rows in':>9} {'results':>9} {'failures':>8} {'rejected':>8} "
        f"{'batch $':>10} {'sync $':>10} {'saved $':>10}"
    )
    for job in jobs:
        t = job["totals"]
        lines.append(
            f"  {job['job']:<22} {t['runs']:>5} {t['rows_in']:>9,} {t['results']:>9,} {t['failures']:>8,} "
            f"{t['rejected']:>8,} "
            f"{t['cost_usd']:>10.4f} {t['sync_cost_usd']:>10.4f} {t['saved_usd']:>10.4f}"
        )
        if t["reasons"]:
            reasons = ", ".join(f"{k} {v}" for k, v in sorted(t["reasons"].items(), key=lambda kv: -kv[1]))
            lines.append(f"  {'':<22} failures by reason: {reasons}")
    if not jobs:
        lines.append("  (no run has reported yet)")
    lines.append("")
    lines.append(f"Last {min(last, len(data['runs']))} runs")
    lines.append(
        f"  {'reported (UTC)':<19} {'job':<18} {'window':<22} {'rows in':>8} {'results':>8} {'fail':>5} "
        f"{'batch $':>9} {'saved $':>9}  run id"
    )
    for run in data["runs"][:last]:
        dry = " (dry run)" if run["dry_run"] else ""
        lines.append(
            f"  {run['reported_at']:%Y-%m-%d %H:%M:%S} {run['job']:<18} {run['window']:<22} {run['rows_in']:>8,} "
            f"{run['results']:>8,} {run['failures']:>5,} {run['cost_usd']:>9.4f} {run['saved_usd']:>9.4f}  "
            f"{run['run_id']}{dry}"
        )
    lines.append("")
    lines.append(f"In flight ({len(data['in_flight'])} batches)")
    for batch in data["in_flight"]:
        started = batch["submitted_at"] or batch["intent_at"]
        hours = (now - started).total_seconds() / 3600
        lines.append(
            f"  {batch['job']:<18} {batch['interval_label']:<22} shard {batch['shard']:<3} round {batch['attempt']} "
            f"{batch['batch_id'] or '(being created)':<34} {batch['status']:<12} {batch['requests']:>7,} requests, "
            f"{hours:5.1f} h of 24 h  run {batch['run_id']}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.batch_runs_report", description=__doc__)
    parser.add_argument("--root", type=Path, default=Path(".local/stack"), help="the stack's folder")
    parser.add_argument("--warehouse", help="a DuckDB file or a PostgreSQL DSN (default: the stack's file)")
    parser.add_argument("--days", type=int, default=30, help="runs reported in the last DAYS days")
    parser.add_argument("--last", type=int, default=15, help="list this many runs")
    args = parser.parse_args(argv)
    where = args.warehouse or str(args.root / "warehouse.duckdb")
    now = utcnow()
    try:
        data = read_briefly(opener(where), lambda wh: read_all(wh, now - dt.timedelta(days=args.days), now))
    except NoWarehouseYet:
        print(f"no warehouse at {where} yet: start the stack (`make up`) and let a run finish")
        return 1
    except WarehouseBusy as exc:
        print(str(exc))
        return 1
    print(render(data, args.last, now))
    return 0


if __name__ == "__main__":
    sys.exit(main())
