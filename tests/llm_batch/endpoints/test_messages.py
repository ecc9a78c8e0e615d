"""Anthropic's Messages strategy: the same declared job as Messages params with a forced tool call."""

from __future__ import annotations

import dataclasses
import datetime as dt
import re

import orjson
import pyarrow as pa
import pytest

from dags.review_embeddings import JOB as EMBEDDINGS_JOB
from dags.review_sentiment import JOB as SENTIMENT_JOB
from dags.review_sentiment import ReviewSentiment
from llm_batch.answers import AnswerError, strict_json_schema
from llm_batch.backends.anthropic_backend import AnthropicBatchBackend
from llm_batch.endpoints import CHAT, MESSAGES, strategy_for
from llm_batch.request_lines import build_requests
from llm_batch.retryable import PermanentError

ANTHROPIC = AnthropicBatchBackend(client=None)
JOB = ANTHROPIC.job_for(dataclasses.replace(SENTIMENT_JOB, model="claude-haiku-4-5"))
ANTHROPIC_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
LONG_KEY = "rv-" + "9" * 70
ROWS = pa.table(
    {
        "review_id": ["rv-1", "rv.2", "weird key/ä", LONG_KEY],
        "review_date": [dt.date(2026, 11, 25)] * 4,
        "created_at": [dt.datetime(2026, 11, 25, 10, i) for i in range(4)],
        "product_name": ["Kettle", "Lamp", "Chair", "Desk"],
        "category": ["kitchen", "home", "home", "office"],
        "rating": [5, 1, 3, 4],
        "language": ["en", "de", "en", "fr"],
        "review_text": ["Love it", "Kaputt", "Fine", "Très bien"],
    }
)


def message(*blocks, stop_reason="tool_use", **usage) -> dict:
    return {
        "type": "message",
        "role": "assistant",
        "model": "claude-haiku-4-5",
        "content": list(blocks),
        "stop_reason": stop_reason,
        "usage": {
            "input_tokens": usage.get("input_tokens", 90),
            "output_tokens": usage.get("output_tokens", 20),
        },
    }


def tool_use(answer: dict) -> dict:
    return {"type": "tool_use", "id": "toolu_1", "name": "ReviewSentiment", "input": answer}


def test_a_chat_job_on_anthropic_asks_for_its_schema_as_a_forced_tool_call():
    assert SENTIMENT_JOB.endpoint == CHAT and JOB.endpoint == MESSAGES
    (line,) = [line for line in build_requests(JOB, ROWS).lines if line.key == "rv-1"]
    request = orjson.loads(line.line)

    assert request["url"] == MESSAGES
    body = request["body"]
    system, user = SENTIMENT_JOB.prompt.render({**ROWS.slice(0, 1).to_pylist()[0]})
    assert body["model"] == "claude-haiku-4-5" and body["max_tokens"] == 200 and body["temperature"] == 0
    assert body["system"] == system and body["messages"] == [{"role": "user", "content": user}]
    (tool,) = body["tools"]
    assert tool["name"] == "ReviewSentiment" and tool["input_schema"] == strict_json_schema(ReviewSentiment)
    assert body["tool_choice"] == {"type": "tool", "name": "ReviewSentiment"}
    assert "max_completion_tokens" not in body and "response_format" not in body


def test_custom_ids_follow_anthropics_rule_and_openais_stay_as_they_were():
    anthropic_ids = {line.key: line.custom_id for line in build_requests(JOB, ROWS).lines}
    openai_ids = {line.key: line.custom_id for line in build_requests(SENTIMENT_JOB, ROWS).lines}

    assert all(ANTHROPIC_ID.match(custom_id) for custom_id in anthropic_ids.values())
    assert anthropic_ids["rv-1"] == openai_ids["rv-1"] == "rv-1"
    assert openai_ids["rv.2"] == "rv.2" and anthropic_ids["rv.2"].startswith("h-")
    assert openai_ids[LONG_KEY] == LONG_KEY and anthropic_ids[LONG_KEY].startswith("h-")
    assert len(set(anthropic_ids.values())) == len(ROWS)


def test_the_answer_is_the_tool_calls_input_validated_against_the_same_model():
    strategy = strategy_for(MESSAGES)
    answer = {"label": "negative", "confidence": 0.7, "reason": "broke after two days"}
    body = message(
        {"type": "text", "text": "Recording it."}, tool_use(answer), input_tokens=123, output_tokens=45
    )

    assert strategy.answer_fields(JOB, body) == answer
    assert strategy.usage(body) == (123, 45)
    with pytest.raises(AnswerError) as wrong:
        strategy.answer_fields(JOB, message(tool_use({**answer, "label": "furious"})))
    assert wrong.value.reason == "schema_violation"
    with pytest.raises(AnswerError) as cut:
        strategy.answer_fields(JOB, message(tool_use({"label": "neg"}), stop_reason="max_tokens"))
    assert cut.value.reason == "truncated"
    with pytest.raises(AnswerError) as prose:
        strategy.answer_fields(JOB, message({"type": "text", "text": "negative"}, stop_reason="end_turn"))
    assert prose.value.reason == "no_tool_call"


def test_a_job_anthropic_cannot_run_is_refused_with_what_to_change():
    with pytest.raises(ValueError, match="needs an output budget: set max_completion_tokens"):
        dataclasses.replace(JOB, request_params={"temperature": 0})
    with pytest.raises(ValueError, match=r"request_params \['seed'\] have no Messages API equivalent"):
        dataclasses.replace(JOB, request_params={"max_completion_tokens": 100, "seed": 1})
    with pytest.raises(PermanentError, match="no /v1/embeddings endpoint"):
        ANTHROPIC.job_for(EMBEDDINGS_JOB)
