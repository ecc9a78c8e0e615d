"""What the Batch runs page and ``make report`` read from the warehouse: runs, money, batches in flight.

Every function takes an open warehouse and only reads, in SQL both DuckDB and PostgreSQL run. The
caller opens the warehouse read-only for one batch of these reads and closes it at once
(:mod:`batch_runs_ui.reading`), so the pipeline's writers are never kept waiting.
"""

from __future__ import annotations

import datetime as dt
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from llm_batch.warehouse.identifiers import quote_ident, quote_table
from llm_batch.warehouse.tables import LEDGER_TABLE, RUNS_SCHEMA, RUNS_TABLE

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

FAILURES_TABLE = "llm_batch_failures"  # BatchJob's default failures table
# A table holding these columns is a job's results table (the provenance every result row carries).
_RESULT_MARKERS = ("custom_id", "request_fingerprint", "batch_id", "prompt_version")
_RUN_FIGURES = (
    "rows_in",
    "results",
    "failures",
    "rejected",
    "input_tokens",
    "output_tokens",
)
_SAMPLE_TEXT_LIMIT = 300


@dataclass
class Figures:
    """Counts and money of one or more runs; ``saved_usd`` is the synchronous price less the batch one."""

    runs: int = 0
    rows_in: int = 0
    results: int = 0
    failures: int = 0  # failed after they were sent
    rejected: int = 0  # refused before sending (blank text, too long, ...)
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float = 0.0  # of the priced runs
    sync_cost_usd: float = 0.0
    unpriced_runs: int = 0  # runs of a model with no known price: their cost is unknown, not zero
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, run: dict[str, Any]) -> None:
        self.runs += 1
        for name in _RUN_FIGURES:
            setattr(self, name, getattr(self, name) + int(run[name] or 0))
        if run["cost_usd"] is None or run["sync_cost_usd"] is None:
            self.unpriced_runs += 1
        else:
            self.cost_usd += float(run["cost_usd"])
            self.sync_cost_usd += float(run["sync_cost_usd"])
        self.reasons = dict(Counter(self.reasons) + Counter(run["failure_reasons"]))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        data["sync_cost_usd"] = round(self.sync_cost_usd, 6)
        data["saved_usd"] = round(self.sync_cost_usd - self.cost_usd, 6)
        return data


def existing_tables(warehouse: Warehouse) -> frozenset[str]:
    """The tables of the warehouse's current schema, looked up once per read (each lookup costs ms)."""
    rows = warehouse.read_arrow(
        "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema()"
    )
    return frozenset(name.lower() for name in rows.column("table_name").to_pylist())


# Runs -------------------------------------------------------------------------------------------


def runs_since(
    warehouse: Warehouse, tables: frozenset[str], since: dt.datetime, job: str | None = None
) -> pa.Table:
    """Run reports written since ``since``, newest first, as read (:func:`run_rows` reads them after)."""
    if RUNS_TABLE not in tables:
        return RUNS_SCHEMA.empty_table()
    return warehouse.read_arrow(
        f'SELECT * FROM {quote_table(RUNS_TABLE)} WHERE "reported_at" >= :since '
        'AND (CAST(:job AS VARCHAR) IS NULL OR "job" = :job) ORDER BY "reported_at" DESC, "run_id"',
        {"since": since, "job": job},
    )


def run_rows(runs: pa.Table) -> list[dict[str, Any]]:
    """Run report rows as the page shows them: failure reasons read, the money saved added."""
    return [_run_json(row) for row in runs.to_pylist()]


def run_reports(warehouse: Warehouse, tables: frozenset[str], job: str, run_id: str) -> list[dict[str, Any]]:
    """The report rows of one run (one per window it covered)."""
    if RUNS_TABLE not in tables:
        return []
    rows = warehouse.read_arrow(
        f'SELECT * FROM {quote_table(RUNS_TABLE)} WHERE "job" = :job AND "run_id" = :run_id '
        'ORDER BY "reported_at"',
        {"job": job, "run_id": run_id},
    ).to_pylist()
    return [_run_json(row) for row in rows]


def _run_json(row: dict[str, Any]) -> dict[str, Any]:
    row = dict(row)
    row["failure_reasons"] = json.loads(row["failure_reasons"] or "{}")
    priced = row["cost_usd"] is not None and row["sync_cost_usd"] is not None
    row["saved_usd"] = round(row["sync_cost_usd"] - row["cost_usd"], 6) if priced else None
    return row


def jobs_over_time(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Per job, per day of data (the first day of each run's window): figures and the job's totals.

    A backfill of last month lands on last month's days, not on the day it ran. Dry runs cost nothing.
    """
    days: dict[str, dict[dt.date, Figures]] = {}
    totals: dict[str, Figures] = {}
    for run in runs:
        if run["dry_run"]:
            continue
        window = window_of(run["window"])
        day = window[0] if window else run["reported_at"].date()
        days.setdefault(run["job"], {}).setdefault(day, Figures()).add(run)
        totals.setdefault(run["job"], Figures()).add(run)
    return [
        {
            "job": job,
            "totals": totals[job].to_json(),
            "days": [{"day": day, **figures.to_json()} for day, figures in sorted(by_day.items())],
        }
        for job, by_day in sorted(days.items())
    ]


# Ledger -----------------------------------------------------------------------------------------


def batches_in_flight(
    warehouse: Warehouse, tables: frozenset[str], since: dt.datetime
) -> list[dict[str, Any]]:
    """Ledger rows not finished whose intent is newer than ``since``, oldest first.

    A submitter that died leaves its row unfinished for good; ``since`` (the 24 h window and
    some) keeps such rows off the list.
    """
    if LEDGER_TABLE not in tables:
        return []
    return warehouse.read_arrow(
        'SELECT "submission_key", "job", "interval_label", "run_id", "shard", "attempt", "model", '
        '"requests", "batch_id", "status", "completed", "failed", "intent_at", "submitted_at" '
        f'FROM {quote_table(LEDGER_TABLE)} WHERE "finished_at" IS NULL AND "intent_at" >= :since '
        'ORDER BY coalesce("submitted_at", "intent_at"), "submission_key"',
        {"since": since},
    ).to_pylist()


def run_batches(warehouse: Warehouse, tables: frozenset[str], job: str, run_id: str) -> list[dict[str, Any]]:
    """The ledger rows of one run: one per shard and round it submitted."""
    if LEDGER_TABLE not in tables:
        return []
    return warehouse.read_arrow(
        'SELECT "interval_label", "shard", "attempt", "model", "requests", "batch_id", "status", '
        '"completed", "failed", "input_tokens", "output_tokens", "cost_usd", "sync_cost_usd", "error", '
        f'"intent_at", "submitted_at", "finished_at" FROM {quote_table(LEDGER_TABLE)} '
        'WHERE "job" = :job AND "run_id" = :run_id ORDER BY "attempt", "shard"',
        {"job": job, "run_id": run_id},
    ).to_pylist()


# Results and failures ---------------------------------------------------------------------------


def result_tables(warehouse: Warehouse) -> list[str]:
    """Tables holding result rows: those with every provenance column of a result row."""
    markers = ", ".join(f"'{name}'" for name in _RESULT_MARKERS)
    schema = "current_schema()"
    rows = warehouse.read_arrow(
        "SELECT table_name FROM information_schema.columns "
        f"WHERE table_schema = {schema} AND column_name IN ({markers}) "
        f"GROUP BY table_name HAVING count(DISTINCT column_name) = {len(_RESULT_MARKERS)} ORDER BY table_name"
    )
    return rows.column("table_name").to_pylist()


def sample_results(warehouse: Warehouse, batch_ids: list[str], limit: int = 10) -> list[dict[str, Any]]:
    """Up to ``limit`` result rows answered by these batches, whichever results table holds them."""
    if not batch_ids:
        return []
    sample: list[dict[str, Any]] = []
    for table in result_tables(warehouse):
        rows = warehouse.read_arrow(
            f"SELECT * FROM {quote_table(table)} WHERE {_batch_among()} ORDER BY {quote_ident('custom_id')} "
            f"LIMIT {int(limit - len(sample))}",
            {"batch_ids": batch_ids},
        ).to_pylist()
        sample.extend({"table": table, **{k: _shown(v) for k, v in row.items()}} for row in rows)
        if len(sample) >= limit:
            break
    return sample


def failures_by_reason(
    warehouse: Warehouse,
    tables: frozenset[str],
    job: str,
    batch_ids: list[str],
    window: tuple[dt.date, dt.date] | None,
    examples: int = 3,
) -> list[dict[str, Any]]:
    """The run's failure rows grouped by stage and reason, with a few examples of each.

    A run's failures are those of its batches, and those rejected before sending (no batch) dated
    in its window.
    """
    if FAILURES_TABLE not in tables:
        return []
    start, end = window or (dt.date.min, dt.date.min)
    columns = ", ".join(
        quote_ident(name) for name in ("key", "stage", "reason", "detail", "batch_id", "row_date")
    )
    rows = warehouse.read_arrow(
        f'SELECT {columns}, count(*) OVER (PARTITION BY "stage", "reason") AS "n", '
        'row_number() OVER (PARTITION BY "stage", "reason" ORDER BY "key") AS "nth" '
        f'FROM {quote_table(FAILURES_TABLE)} WHERE "job" = :job AND ({_batch_among()} '
        'OR ("batch_id" IS NULL AND "row_date" >= :start AND "row_date" < :end))',
        {"job": job, "batch_ids": batch_ids, "start": start, "end": end},
    ).to_pylist()
    groups: dict[tuple[str, str], dict[str, Any]] = {}
    for row in rows:
        group = groups.setdefault(
            (row["stage"], row["reason"]),
            {"stage": row["stage"], "reason": row["reason"], "count": row["n"], "examples": []},
        )
        if row["nth"] <= examples:
            group["examples"].append({"key": row["key"], "detail": _shown(row["detail"])})
    return sorted(groups.values(), key=lambda g: (-g["count"], g["stage"], g["reason"]))


def _batch_among() -> str:
    return '"batch_id" IN (SELECT unnest(CAST(:batch_ids AS VARCHAR[])))'


def window_of(label: str) -> tuple[dt.date, dt.date] | None:
    """The days a window label covers (``llm_batch.run_window.RunWindow.label``), end exclusive."""
    try:
        if "--" in label:
            first, end = label.split("--", 1)
            return dt.date.fromisoformat(first), dt.date.fromisoformat(end)
        day = dt.date.fromisoformat(label)
    except ValueError:
        return None
    return day, day + dt.timedelta(days=1)


def _shown(value: Any) -> Any:
    """A value as the page shows it: long text cut, vectors summarised."""
    if isinstance(value, str) and len(value) > _SAMPLE_TEXT_LIMIT:
        return value[:_SAMPLE_TEXT_LIMIT] + "…"
    if isinstance(value, list | tuple):
        return f"[{len(value)} values]"
    return value
