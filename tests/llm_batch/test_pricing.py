"""Token prices: batch is half of synchronous, snapshots resolve to their family, unknown is unpriced."""

from __future__ import annotations

import logging

import pytest

from llm_batch.pricing import cost_of, known_models, price_for, total


def test_prices_resolve_snapshots_and_batch_is_half():
    assert price_for("gpt-4o-mini-2024-07-18") == price_for("gpt-4o-mini")
    assert price_for("gpt-4o-2024-08-06") == price_for("gpt-4o")
    assert price_for("claude-sonnet-4-5-20250929") == price_for("claude-sonnet-4-5")
    cost = cost_of("gpt-5", 1_000_000, 1_000_000)
    assert cost.sync_usd == 11.25 and cost.batch_usd == 5.625 and cost.priced


@pytest.mark.parametrize("model", known_models())
def test_every_known_model_has_an_input_price(model: str):
    assert price_for(model).input_per_million > 0


def test_the_longest_family_wins():
    assert price_for("gpt-4o-mini-2024-07-18") != price_for("gpt-4o")
    assert price_for("claude-3-5-haiku-20241022") == price_for("claude-3-5-haiku")


def test_an_unknown_model_is_unpriced_with_one_warning_never_zero(caplog: pytest.LogCaptureFixture):
    with caplog.at_level(logging.WARNING, logger="llm_batch.pricing"):
        first = cost_of("mystery-model-unpriced-test", 1000, 1000)
        cost_of("mystery-model-unpriced-test", 5, 5)
    assert price_for("mystery-model-unpriced-test") is None
    assert first.batch_usd is None and first.sync_usd is None and not first.priced
    warnings = [r.getMessage() for r in caplog.records]
    assert len(warnings) == 1 and "'mystery-model-unpriced-test'" in warnings[0] and "unpriced" in warnings[0]


def test_a_total_with_an_unpriced_part_is_unpriced():
    assert total([0.1, 0.2]) == 0.3
    assert total([]) == 0.0
    assert total([0.1, None]) is None
