"""Structured answers: the strict schema sent, and answers checked against the same model."""

from __future__ import annotations

import pytest

from llm_batch.answers import AnswerError, parse_answer, strict_json_schema
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
