"""A run's cost ceiling: nothing is sent when the run's estimate is over what it may spend."""

from __future__ import annotations

from llm_batch.handoffs import BuildSummary
from llm_batch.retryable import PermanentError


class CostCeilingExceeded(PermanentError, RuntimeError):
    """The run's estimate is over its ``max_cost_usd``: a retry would estimate the same."""


def over_ceiling(summary: BuildSummary, max_cost_usd: float | None) -> str | None:
    """Why the built run may not be sent under ``max_cost_usd``, or ``None`` when it may.

    The estimate is the requests' input tokens plus the job's declared output budget, at batch
    prices. An unpriced model cannot be held to a ceiling, so it is refused rather than let through.
    """
    if max_cost_usd is None or not summary.requests:
        return None
    ceiling = f"max_cost_usd ${max_cost_usd:,.2f}"
    if summary.estimated_cost_usd is None:
        return (
            f"{summary.requests:,} requests to {summary.model} cannot be held to {ceiling}: the model "
            "is unpriced. Add its price to llm_batch.pricing, or run without max_cost_usd"
        )
    if summary.estimated_cost_usd <= max_cost_usd:
        return None
    return (
        f"the estimate of ${summary.estimated_cost_usd:,.4f} at batch prices for {summary.requests:,} "
        f"requests ({summary.estimated_input_tokens:,} input tokens, model {summary.model}) is over "
        f"{ceiling}. Raise max_cost_usd, or narrow the run (its dates or row_limit)"
    )
