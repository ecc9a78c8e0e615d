"""Forced tool calls: the arguments are filled from the text like a strict JSON schema."""

from __future__ import annotations

import json

import httpx
import openai
import orjson
import pytest

from local_batch_api.engines.local import LocalEngine

jsonschema = pytest.importorskip("jsonschema")

CONTACT = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "price_usd": {"type": "number"},
        "urgent": {"type": "boolean"},
    },
    "required": ["email", "price_usd", "urgent"],
    "additionalProperties": False,
}
TOOLS = [
    {
        "type": "function",
        "function": {"name": "lookup_weather", "parameters": {"type": "object", "properties": {}}},
    },
    {"type": "function", "function": {"name": "record_contact", "parameters": CONTACT, "strict": True}},
]
MESSAGES = [
    {"role": "system", "content": "Record the customer's contact details."},
    {"role": "user", "content": "I paid $49.99 for the kettle; reach me at jane.doe@example.com."},
]


@pytest.fixture(scope="module")
def client() -> openai.OpenAI:
    engine = LocalEngine()

    def handle(request: httpx.Request) -> httpx.Response:
        reply = engine.answer(request.url.path, json.loads(request.content))
        return httpx.Response(
            reply.status_code, content=orjson.dumps(reply.body), headers={"content-type": "application/json"}
        )

    return openai.OpenAI(
        api_key="test",
        base_url="http://engine.test/v1",
        http_client=httpx.Client(transport=httpx.MockTransport(handle)),
        max_retries=0,
        _strict_response_validation=True,
    )


def test_a_named_tool_is_called_with_arguments_from_the_text(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=MESSAGES,
        tools=TOOLS,
        tool_choice={"type": "function", "function": {"name": "record_contact"}},
    )
    choice = completion.choices[0]
    assert choice.message.content is None and choice.finish_reason == "stop"
    (call,) = choice.message.tool_calls
    assert call.function.name == "record_contact" and call.id.startswith("call_")
    arguments = json.loads(call.function.arguments)
    jsonschema.validate(arguments, CONTACT)
    assert arguments["email"] == "jane.doe@example.com" and arguments["price_usd"] == 49.99
    assert completion.usage.completion_tokens > 0


def test_required_calls_the_first_tool_and_unknown_names_are_a_400(client: openai.OpenAI) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS, tool_choice="required"
    )
    assert completion.choices[0].finish_reason == "tool_calls"
    assert completion.choices[0].message.tool_calls[0].function.name == "lookup_weather"
    with pytest.raises(openai.BadRequestError) as caught:
        client.chat.completions.create(
            model="gpt-4o-mini",
            messages=MESSAGES,
            tools=TOOLS,
            tool_choice={"type": "function", "function": {"name": "missing"}},
        )
    assert caught.value.body["param"] == "tool_choice"
    auto = client.chat.completions.create(model="gpt-4o-mini", messages=MESSAGES, tools=TOOLS)
    assert auto.choices[0].message.content and auto.choices[0].message.tool_calls is None
