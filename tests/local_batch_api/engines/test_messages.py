"""Messages bodies answered through the offline engine's Chat Completions, and back."""

from __future__ import annotations

import asyncio

import jsonschema
import pytest

from local_batch_api.engines.local import LocalEngine
from local_batch_api.engines.messages import MESSAGES_URL, MessagesEngine

SCHEMA = {
    "type": "object",
    "properties": {"label": {"type": "string", "enum": ["yes", "no"]}, "n": {"type": "integer"}},
    "required": ["label", "n"],
}


def answer(*bodies: dict, url: str = MESSAGES_URL):
    return asyncio.run(MessagesEngine(LocalEngine()).answer_many(url, list(bodies)))


def body(**changes) -> dict:
    return {
        "model": "claude-haiku-4-5",
        "max_tokens": 128,
        "messages": [{"role": "user", "content": "Hi"}],
    } | changes


def test_blocks_of_every_kind_become_one_prompt():
    (reply,) = answer(
        body(
            system=[{"type": "text", "text": "Be brief."}],
            messages=[
                {"role": "user", "content": [{"type": "text", "text": "Review: great"}]},
                {
                    "role": "assistant",
                    "content": [{"type": "tool_use", "id": "t", "name": "f", "input": {"a": 1}}],
                },
                {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "t", "content": "ok"}]},
            ],
        )
    )
    assert reply.status_code == 200 and reply.body["content"][0]["type"] == "text"
    assert reply.body["usage"]["input_tokens"] > 0


def test_tool_choice_any_forces_the_first_tool():
    tools = [
        {"name": "first", "input_schema": SCHEMA},
        {"name": "second", "input_schema": {"type": "object"}},
    ]
    (reply,) = answer(body(tools=tools, tool_choice={"type": "any"}))
    (block,) = reply.body["content"]
    assert block["name"] == "first" and reply.body["stop_reason"] == "tool_use"
    jsonschema.validate(block["input"], SCHEMA)


def test_auto_tool_choice_answers_in_text():
    (reply,) = answer(body(tools=[{"name": "f", "input_schema": SCHEMA}], tool_choice={"type": "auto"}))
    assert [b["type"] for b in reply.body["content"]] == ["text"] and reply.body["stop_reason"] == "end_turn"


def test_the_inner_engines_refusals_come_back_in_anthropic_shape():
    (reply,) = answer(body(messages=[{"role": "user", "content": "word " * 600_000}]))
    assert reply.status_code == 400
    assert reply.body["type"] == "error" and reply.body["error"]["type"] == "invalid_request_error"
    assert "context length" in reply.body["error"]["message"]


@pytest.mark.parametrize(
    "bad",
    [
        {"messages": [{"role": "system", "content": "x"}]},
        {"messages": [{"role": "user", "content": [{"type": "video"}]}]},
        {"system": 5},
        {"tool_choice": {"type": "any"}},
        {
            "tools": [{"name": "f", "input_schema": SCHEMA}],
            "tool_choice": {"type": "tool", "name": "f"},
            "output_config": {"format": {"type": "json_schema", "schema": SCHEMA}},
        },
        {"model": 5},
        {"stream": True},
    ],
)
def test_invalid_bodies_are_refused_one_by_one(bad):
    good, refused = answer(body(), body(**bad))
    assert good.status_code == 200
    assert refused.status_code == 400 and refused.body["error"]["type"] == "invalid_request_error"


def test_other_urls_go_to_the_wrapped_engine_unchanged():
    chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}
    (reply,) = answer(chat, url="/v1/chat/completions")
    assert reply.body["object"] == "chat.completion"
