"""The run report (counts, failures by reason, tokens, cost) and the failure threshold."""

from __future__ import annotations

import logging
from collections import Counter
from typing import TYPE_CHECKING

import orjson

from llm_batch.clock import utcnow
from llm_batch.handoffs import BuildSummary, RunReport, ShardOutcome
from llm_batch.job import BatchJob
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
    """Counts, failures by reason, tokens and cost (batch vs synchronous price) of one run."""
    reasons: Counter[str] = Counter()
    for c in collected:
        reasons.update(c.failure_reasons)
    submitted = build_summary.requests
    failed_after_submit = sum(reasons.values())
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
        batches=len({c.batch_id for c in collected}),
        rounds=max((c.attempt for c in collected), default=0),
        input_tokens=sum(c.input_tokens for c in collected),
        output_tokens=sum(c.output_tokens for c in collected),
        cost_usd=round(sum(c.cost_usd for c in collected), 6),
        sync_cost_usd=round(sum(c.sync_cost_usd for c in collected), 6),
        estimated_cost_usd=build_summary.estimated_cost_usd,
        estimated_sync_cost_usd=build_summary.estimated_sync_cost_usd,
        failure_share=round(failed_after_submit / submitted, 4) if submitted else 0.0,
    )
    figures = {k: v for k, v in report.to_xcom().items() if k != "schema_version"}
    log.info("Run report: %s", orjson.dumps(figures).decode())
    if warehouse is not None:
        row = {
            **figures,
            "failure_reasons": orjson.dumps(report.failure_reasons).decode(),
            "reported_at": utcnow(),
        }
        queries.record_run(warehouse, row)
    if report.failure_share > job.max_failure_share:
        raise FailureThresholdExceeded(
            f"{failed_after_submit} of {submitted} requests failed ({report.failure_share:.1%}), over the "
            f"threshold of {job.max_failure_share:.1%}: {dict(reasons)}"
        )
    return report
