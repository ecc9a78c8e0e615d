"""The run report (counts, failures by reason, tokens, cost) and the failure threshold."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

import orjson

from llm_batch.clock import utcnow
from llm_batch.handoffs import BuildSummary, RunReport, ShardOutcome
from llm_batch.job import BatchJob
from llm_batch.pricing import total
from llm_batch.retryable import PermanentError
from llm_batch.warehouse import queries

if TYPE_CHECKING:
    from llm_batch.warehouse import Warehouse

log = logging.getLogger(__name__)


class FailureThresholdExceeded(PermanentError, RuntimeError):
    """More requests failed than the job allows; a retry would count the same failures."""


def report_run(
    job: BatchJob,
    build_summary: BuildSummary,
    collected: list[ShardOutcome],
    *,
    run_id: str,
    warehouse: Warehouse | None,
) -> RunReport:
    """Log and record the run's report (a dry run's too, flagged); raise over the failure threshold."""
    report = summarize(job, build_summary, collected, run_id=run_id)
    log.info("%s", describe(report))
    if warehouse is not None:
        figures = {k: v for k, v in report.to_xcom().items() if k != "schema_version"}
        row = {
            **figures,
            "failure_reasons": orjson.dumps(report.failure_reasons).decode(),
            "reported_at": utcnow(),
        }
        queries.record_run(warehouse, row)
    if report.failure_share > job.max_failure_share:
        raise FailureThresholdExceeded(
            f"{report.failures} of {report.requests} requests failed ({report.failure_share:.1%}), over "
            f"the threshold of {job.max_failure_share:.1%}: {report.failure_reasons}"
        )
    return report


def summarize(
    job: BatchJob, build_summary: BuildSummary, collected: list[ShardOutcome], *, run_id: str
) -> RunReport:
    """Counts, failures by reason, tokens and cost (batch vs synchronous price) of one run."""
    reasons: Counter[str] = Counter()
    for c in collected:
        reasons.update(c.failure_reasons)
    submitted = build_summary.requests
    failed_after_submit = sum(reasons.values())
    paid = [c for c in collected if not c.reused]  # a reused batch is paid for by the run that made it
    report = RunReport(
        job=job.name,
        window=build_summary.window,
        run_id=run_id,
        dry_run=build_summary.dry_run,
        rows_in=build_summary.rows_in,
        already_settled=build_summary.already_settled,
        duplicates_collapsed=build_summary.duplicates_collapsed,
        rejected=build_summary.rejected,
        requests=submitted,
        results=sum(c.results for c in collected),
        failures=failed_after_submit,
        failure_reasons=dict(reasons + Counter(build_summary.rejection_reasons)),
        batches=len({c.batch_id for c in paid}),
        reused_batches=len({c.batch_id for c in collected if c.reused}),
        rounds=max((c.attempt for c in collected), default=0),
        input_tokens=sum(c.input_tokens for c in paid),
        output_tokens=sum(c.output_tokens for c in paid),
        cost_usd=total([c.cost_usd for c in paid]),
        sync_cost_usd=total([c.sync_cost_usd for c in paid]),
        estimated_cost_usd=build_summary.estimated_cost_usd,
        estimated_sync_cost_usd=build_summary.estimated_sync_cost_usd,
        failure_share=round(failed_after_submit / submitted, 4) if submitted else 0.0,
        model=build_summary.model or job.model,
        over_ceiling=build_summary.over_ceiling,
    )
    return report


def headline(report: RunReport) -> dict[str, object]:
    """The figures a person looks for first, for the asset event's extra and the run's note."""
    saved = None
    if report.cost_usd is not None and report.sync_cost_usd is not None:
        saved = round(report.sync_cost_usd - report.cost_usd, 6)
    return {
        "job": report.job,
        "window": report.window,
        "model": report.model,
        "rows_in": report.rows_in,
        "results": report.results,
        "failures": report.failures + report.rejected,
        "batches": report.batches,
        "reused_batches": report.reused_batches,
        "cost_usd": report.cost_usd,
        "sync_cost_usd": report.sync_cost_usd,
        "saved_usd": saved,
    }


def describe(report: RunReport) -> str:
    """The report as a few lines a person reads at a glance; every row in is accounted for once."""
    if report.dry_run or report.over_ceiling:
        outcome = f"{report.requests:,} " + (
            "to send" if report.dry_run else "not sent (over the cost ceiling)"
        )
        accounted = report.requests
    else:
        # Every request sent ends answered or failed (a retry's last round records its failure);
        # the rest were in flight in another run when this one submitted, and that run lands them.
        elsewhere = report.requests - report.results - report.failures
        outcome = f"{report.results:,} answered + {report.failures:,} failed"
        if elsewhere:
            outcome += f" + {elsewhere:,} in flight in another run, which lands them"
        accounted = report.requests
    accounted += report.rejected + report.already_settled + report.duplicates_collapsed
    rows_line = (
        f"  rows in {report.rows_in:,} = {outcome} + {report.rejected:,} rejected"
        f" + {report.already_settled:,} already answered or in another run"
        f" + {report.duplicates_collapsed:,} duplicate keys"
    )
    if accounted != report.rows_in:
        rows_line += f" ({report.rows_in - accounted:+,} not accounted for)"
    reasons = ", ".join(f"{reason} {count:,}" for reason, count in sorted(report.failure_reasons.items()))
    batches = f"  batches {report.batches:,} made by this run"
    if report.reused_batches:
        batches += f", {report.reused_batches:,} made and paid for by another run"
    batches += f"; rounds {report.rounds}; tokens {report.input_tokens:,} in, {report.output_tokens:,} out"
    if report.dry_run:
        money = f"  dry run: nothing sent; estimate {_usd(report.estimated_cost_usd)} at batch prices, "
        money += f"{_usd(report.estimated_sync_cost_usd)} synchronous ({report.requests:,} requests)"
        if report.over_ceiling:
            money += f"; a real run would be refused: {report.over_ceiling}"
    elif report.over_ceiling:
        money = f"  refused, nothing sent: {report.over_ceiling}"
    else:
        money = f"  cost {_usd(report.cost_usd)} at batch prices, {_usd(report.sync_cost_usd)} synchronous"
        if report.cost_usd is not None and report.sync_cost_usd is not None:
            money += f" (saved {_usd(report.sync_cost_usd - report.cost_usd)})"
    lines = [
        f"Run report: {report.job} {report.window} ({report.run_id}), model {report.model or '?'}",
        rows_line,
        f"  failures by reason: {reasons or 'none'}",
        batches,
        money,
    ]
    return "\n".join(lines)


def _usd(amount: float | None) -> str:
    return "unpriced" if amount is None else f"${amount:,.4f}"
