"""Each endpoint's strategy: what a job must declare, how answers and usage are read, its columns."""

from __future__ import annotations

import dataclasses

import pyarrow as pa
import pytest

from dags.review_embeddings import JOB as EMBEDDINGS_JOB
from dags.review_sentiment import JOB as SENTIMENT_JOB
from llm_batch.answers import AnswerError
from llm_batch.endpoints import CHAT, EMBEDDINGS, MESSAGES, RESPONSES, endpoint_urls, strategy_for
from llm_batch.endpoints.base import EndpointStrategy

RESPONSES_JOB = dataclasses.replace(SENTIMENT_JOB, endpoint=RESPONSES)
ANSWER = '{"label": "positive", "confidence": 0.9, "reason": "works"}'


def test_every_module_of_the_package_registers_its_endpoint():
    assert set(endpoint_urls()) == {CHAT, RESPONSES, EMBEDDINGS, MESSAGES}
    assert all(isinstance(strategy_for(url), EndpointStrategy) for url in endpoint_urls())
    with pytest.raises(ValueError, match="endpoint must be one of"):
        strategy_for("/v1/completions")


def test_a_job_is_checked_against_its_endpoint():
    with pytest.raises(ValueError, match="needs input_column"):
        dataclasses.replace(EMBEDDINGS_JOB, input_column=None)
    with pytest.raises(ValueError, match="needs a prompt and an output_schema"):
        dataclasses.replace(SENTIMENT_JOB, output_schema=None)
    with pytest.raises(ValueError, match="review_sentiment: endpoint must be one of"):
        dataclasses.replace(SENTIMENT_JOB, endpoint="/v1/moderations")


def test_chat_answers_refusals_and_truncation():
    chat = strategy_for(CHAT)
    body = {
        "choices": [{"message": {"content": ANSWER}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 120, "completion_tokens": 14},
    }
    assert chat.answer_fields(SENTIMENT_JOB, body)["label"] == "positive"
    assert chat.usage(body) == (120, 14)
    problems = {
        "refusal": {
            "choices": [{"message": {"content": None, "refusal": "I can't"}, "finish_reason": "stop"}]
        },
        "truncated": {"choices": [{"message": {"content": '{"la'}, "finish_reason": "length"}]},
        "content_filter": {"choices": [{"message": {"content": None}, "finish_reason": "content_filter"}]},
        "empty_answer": {"choices": []},
    }
    for reason, problem in problems.items():
        with pytest.raises(AnswerError) as caught:
            chat.answer_fields(SENTIMENT_JOB, problem)
        assert caught.value.reason == reason


def test_responses_answers_joined_from_output_texts():
    responses = strategy_for(RESPONSES)
    half = len(ANSWER) // 2
    body = {
        "status": "completed",
        "output": [
            {"type": "reasoning", "summary": []},
            {
                "type": "message",
                "content": [
                    {"type": "output_text", "text": ANSWER[:half]},
                    {"type": "output_text", "text": ANSWER[half:]},
                ],
            },
        ],
        "usage": {"input_tokens": 80, "output_tokens": 20},
    }
    assert responses.answer_fields(RESPONSES_JOB, body)["reason"] == "works"
    assert responses.usage(body) == (80, 20)
    incomplete = {"status": "incomplete", "incomplete_details": {"reason": "max_output_tokens"}}
    with pytest.raises(AnswerError, match=r"truncated: response incomplete \(max_output_tokens\)"):
        responses.answer_fields(RESPONSES_JOB, incomplete)
    refusal = {"output": [{"type": "message", "content": [{"type": "refusal", "refusal": "no"}]}]}
    with pytest.raises(AnswerError, match="refusal"):
        responses.answer_fields(RESPONSES_JOB, refusal)


def test_embeddings_vectors_and_columns():
    embeddings = strategy_for(EMBEDDINGS)
    body = {"data": [{"embedding": [0.5, -1, 2]}], "usage": {"prompt_tokens": 7, "total_tokens": 7}}
    assert embeddings.answer_fields(EMBEDDINGS_JOB, body) == {"embedding": [0.5, -1.0, 2.0], "dimensions": 3}
    assert embeddings.usage(body) == (7, 0)
    with pytest.raises(AnswerError, match="invalid_embedding"):
        embeddings.answer_fields(EMBEDDINGS_JOB, {"data": []})
    assert embeddings.answer_columns(EMBEDDINGS_JOB).names == ["embedding", "dimensions"]
    assert embeddings.output_token_reserve == embeddings.expected_output_tokens == 0


def test_structured_answer_columns_follow_the_output_schema():
    columns = strategy_for(CHAT).answer_columns(SENTIMENT_JOB)
    assert columns == pa.schema(
        [("label", pa.string()), ("confidence", pa.float64()), ("reason", pa.string())]
    )
    assert strategy_for(RESPONSES).answer_columns(RESPONSES_JOB) == columns
