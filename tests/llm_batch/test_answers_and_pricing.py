from __future__ import annotations

import pytest

from llm_batch.answers import AnswerError, parse_answer, strict_json_schema
from llm_batch.pricing import UnknownModelPrice, cost_of, price_for
from tests.llm_batch.jobs import Sentiment


def test_answers_are_validated_against_the_schema():
    assert (
        parse_answer(Sentiment, '{"label": "positive", "confidence": 0.9, "reason": "love"}')["label"]
        == "positive"
    )
    cases = {
        '{"label": "ecstatic", "confidence": 0.9, "reason": "x"}': "schema_violation",
        '{"label": "positive", "confidence": 1.5, "reason": "x"}': "schema_violation",
        '{"label": "positive"}': "schema_violation",
        "not json at all": "invalid_json",
        "": "empty_answer",
    }
    for content, reason in cases.items():
        with pytest.raises(AnswerError) as caught:
            parse_answer(Sentiment, content)
        assert caught.value.reason == reason, content


def test_strict_schema_requires_every_property():
    schema = strict_json_schema(Sentiment)
    assert schema["additionalProperties"] is False and schema["required"] == ["label", "confidence", "reason"]


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
