"""Token prices: batch is half of synchronous, snapshots resolve to their family, unknown is an error."""

from __future__ import annotations

import pytest

from llm_batch.pricing import UnknownModelPrice, cost_of, price_for


def test_prices_resolve_snapshots_and_batch_is_half():
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")
    assert price_for("gpt-4o-2024-08-06") == price_for("gpt-4o")
    cost = cost_of("gpt-5", 1_000_000, 1_000_000)
    assert cost.sync_usd == 11.25 and cost.batch_usd == 5.625 and cost.saved_usd == 5.625
    for model in (
        "gpt-5",
        "gpt-5-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4o",
        "gpt-4o-mini",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
    ):
        assert price_for(model).input_per_million > 0
    with pytest.raises(UnknownModelPrice):
        price_for("mystery-model")
