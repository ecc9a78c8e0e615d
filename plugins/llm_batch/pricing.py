"""Token prices, so every run reports what it cost and what the synchronous API would have cost.

Prices are US dollars per 1M tokens at the synchronous (standard) rate; the Batch API charges
half of both. Snapshot names (``gpt-4o-mini-2024-07-18``) resolve to their family by prefix.
"""

from __future__ import annotations

from dataclasses import dataclass

BATCH_DISCOUNT = 0.5


@dataclass(frozen=True)
class Price:
    input_per_million: float
    output_per_million: float


SYNC_PRICES: dict[str, Price] = {
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
}


class UnknownModelPrice(KeyError):
    pass


def price_for(model: str) -> Price:
    """The price of a model or of the family its snapshot name belongs to (longest prefix wins)."""
    if model in SYNC_PRICES:
        return SYNC_PRICES[model]
    families = [name for name in SYNC_PRICES if model.startswith(name + "-")]
    if not families:
        raise UnknownModelPrice(
            f"no price known for model {model!r}; add it to llm_batch.pricing.SYNC_PRICES"
        )
    return SYNC_PRICES[max(families, key=len)]


@dataclass(frozen=True)
class Cost:
    batch_usd: float
    sync_usd: float

    @property
    def saved_usd(self) -> float:
        return self.sync_usd - self.batch_usd


def cost_of(model: str, input_tokens: int, output_tokens: int) -> Cost:
    price = price_for(model)
    sync = (input_tokens * price.input_per_million + output_tokens * price.output_per_million) / 1_000_000
    return Cost(batch_usd=round(sync * BATCH_DISCOUNT, 6), sync_usd=round(sync, 6))
