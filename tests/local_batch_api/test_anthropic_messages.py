"""The synchronous Messages API: the engine's answers as Anthropic Messages, through the SDK."""

from __future__ import annotations

from typing import Literal

import anthropic
import jsonschema
import orjson
import pytest
from pydantic import BaseModel

from tests.batch_server import anthropic_client, wait_for_message_batch

MODEL = "claude-haiku-4-5"
VERDICT_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "score": {"type": "number", "minimum": 0, "maximum": 1},
        "reasons": {"type": "array", "items": {"type": "string"}, "maxItems": 3},
    },
    "required": ["label", "score", "reasons"],
    "additionalProperties": False,
}


class Verdict(BaseModel):
    label: Literal["positive", "negative", "neutral"]
    score: float


@pytest.fixture
def claude(shared_server):
    return anthropic_client(shared_server)


def ask(claude, text: str = "Review: I love it, great value.", **params):
    params.setdefault("max_tokens", 256)
    return claude.messages.create(model=MODEL, messages=[{"role": "user", "content": text}], **params)


def test_plain_text(claude):
    message = ask(claude, system="Answer with the sentiment.")
    assert message.type == "message" and message.role == "assistant" and message.model == MODEL
    assert [block.type for block in message.content] == ["text"] and message.content[0].text
    assert message.stop_reason == "end_turn"
    assert message.usage.input_tokens > 0 and message.usage.output_tokens > 0
    assert ask(claude, system="Answer with the sentiment.") == message  # deterministic


def test_a_forced_tool_call_answers_with_input_valid_against_its_schema(claude):
    message = ask(
        claude,
        "Review: awful, broke in a day.",
        tools=[{"name": "record_verdict", "description": "Record it.", "input_schema": VERDICT_SCHEMA}],
        tool_choice={"type": "tool", "name": "record_verdict"},
    )
    (block,) = message.content
    assert block.type == "tool_use" and block.name == "record_verdict" and block.id.startswith("toolu_")
    jsonschema.validate(block.input, VERDICT_SCHEMA)
    assert message.stop_reason == "tool_use"


def test_structured_output_through_output_config(claude):
    message = ask(claude, output_config={"format": {"type": "json_schema", "schema": VERDICT_SCHEMA}})
    jsonschema.validate(orjson.loads(message.content[0].text), VERDICT_SCHEMA)


def test_structured_output_through_the_sdk_parse_helper(claude):
    parsed = claude.messages.parse(
        model=MODEL,
        max_tokens=256,
        messages=[{"role": "user", "content": "Review: it is fine, I guess."}],
        output_format=Verdict,
    )
    assert isinstance(parsed.parsed_output, Verdict)


def test_a_short_max_tokens_cuts_the_answer(claude):
    message = ask(claude, "Tell me everything about this long review: " + "good " * 200, max_tokens=1)
    assert message.stop_reason == "max_tokens" and message.usage.output_tokens == 1


@pytest.mark.parametrize(
    ("params", "named"),
    [
        ({"max_tokens": 0}, "max_tokens"),
        ({"messages": []}, "messages"),
        ({"tool_choice": {"type": "tool", "name": "missing"}}, "tool_choice"),
        ({"output_config": {"format": {"type": "xml"}}}, "output_config"),
        ({"extra_body": {"no_such_param": 1}}, "no_such_param"),
    ],
)
def test_invalid_params_are_refused_in_anthropic_shape(claude, params, named):
    body = {"model": MODEL, "max_tokens": 16, "messages": [{"role": "user", "content": "Hi"}], **params}
    with pytest.raises(anthropic.BadRequestError) as refused:
        claude.messages.create(**body)
    assert refused.value.body["type"] == "error"
    assert refused.value.body["error"]["type"] == "invalid_request_error"
    assert named in refused.value.body["error"]["message"]


def test_the_upstream_engine_forwards_messages_and_message_batches(start_server):
    upstream = start_server(name="upstream", api_key="upstream-key")
    forwarder = start_server(
        "--engine",
        "upstream",
        "--upstream-base-url",
        upstream.base_url,
        name="forwarder",
        env={"LOCAL_BATCH_API_UPSTREAM_KEY": "upstream-key"},
    )
    direct = ask(anthropic_client(upstream))
    claude = anthropic_client(forwarder)
    assert ask(claude) == direct
    batch = claude.messages.batches.create(
        requests=[
            {
                "custom_id": "one",
                "params": {
                    "model": MODEL,
                    "max_tokens": 256,
                    "messages": [{"role": "user", "content": "Review: I love it, great value."}],
                },
            }
        ]
    )
    wait_for_message_batch(claude, batch.id)
    (result,) = claude.messages.batches.results(batch.id)
    assert result.result.message.content == direct.content
