"""Token prices, so every run reports what it cost and what the synchronous API would have cost.

Prices are US dollars per 1M tokens at each vendor's synchronous (standard) rate, as published
on ``PRICES_CHECKED_ON``; their batch APIs charge half of both. Snapshot names
(``gpt-4o-mini-2024-07-18``, ``claude-sonnet-4-5-20250929``) resolve to their family by prefix.
A model in no table is *unpriced*: its cost is ``None``, reported as unknown, never as zero, and
the run goes on (the service, not the price list, decides which models exist).
"""

from __future__ import annotations

import datetime as dt
import logging
from dataclasses import dataclass

log = logging.getLogger(__name__)

BATCH_DISCOUNT = 0.5
PRICES_CHECKED_ON = dt.date(2025, 11, 30)


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float


SYNC_PRICES: dict[str, dict[str, Price]] = {
    "openai": {  # Azure OpenAI's global batch deployments are priced as OpenAI's models
        "gpt-5": Price(1.25, 10.00),
        "gpt-5-mini": Price(0.25, 2.00),
        "gpt-5-nano": Price(0.05, 0.40),
        "gpt-4.1": Price(2.00, 8.00),
        "gpt-4.1-mini": Price(0.40, 1.60),
        "gpt-4.1-nano": Price(0.10, 0.40),
        "gpt-4o": Price(2.50, 10.00),
        "gpt-4o-mini": Price(0.15, 0.60),
        "o4-mini": Price(1.10, 4.40),
        "o3": Price(2.00, 8.00),
        "text-embedding-3-small": Price(0.02, 0.0),
        "text-embedding-3-large": Price(0.13, 0.0),
        "text-embedding-ada-002": Price(0.10, 0.0),
    },
    "anthropic": {
        "claude-opus-4-5": Price(5.00, 25.00),
        "claude-opus-4-1": Price(15.00, 75.00),
        "claude-opus-4": Price(15.00, 75.00),
        "claude-sonnet-4-5": Price(3.00, 15.00),
        "claude-sonnet-4": Price(3.00, 15.00),
        "claude-3-7-sonnet": Price(3.00, 15.00),
        "claude-haiku-4-5": Price(1.00, 5.00),
        "claude-3-5-haiku": Price(0.80, 4.00),
        "claude-3-haiku": Price(0.25, 1.25),
    },
}


def price_for(model: str) -> Price | None:
    """The price of a model or of the family its snapshot name belongs to (longest prefix wins)."""
    table = {name: price for prices in SYNC_PRICES.values() for name, price in prices.items()}
    if model in table:
        return table[model]
    families = [name for name in table if model.startswith(name + "-")]
    return table[max(families, key=len)] if families else None


def known_models() -> list[str]:
    """Every priced model family, for pick lists (any other name is still accepted, unpriced)."""
    return [name for prices in SYNC_PRICES.values() for name in prices]


@dataclass(frozen=True)
class Cost:
    """A cost at batch and at synchronous prices; both ``None`` when the model is unpriced."""

    batch_usd: float | None
    sync_usd: float | None

    @property
    def priced(self) -> bool:
        return self.batch_usd is not None


_warned: set[str] = set()


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Cost:
    price = price_for(model)
    if price is None:
        if model not in _warned:
            _warned.add(model)
            log.warning(
                "No price is known for model %r: its cost is reported as unpriced. "
                "Add it to llm_batch.pricing.SYNC_PRICES to see what it costs.",
                model,
            )
        return Cost(batch_usd=None, sync_usd=None)
    sync = (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000
    return Cost(batch_usd=round(sync * BATCH_DISCOUNT, 6), sync_usd=round(sync, 6))


def total(amounts: list[float | None]) -> float | None:
    """The sum of costs, or ``None`` (unpriced) when any of them is unpriced."""
    if any(amount is None for amount in amounts):
        return None
    return round(sum(amounts), 6)  # type: ignore[arg-type]
