"""The local engine, checked through the unmodified openai SDK with strict response validation."""

from __future__ import annotations

import asyncio
import base64
import json
import math
import random
from array import array

import httpx
import openai
import orjson
import pytest
from openai._models import validate_type
from openai.types import Completion, CreateEmbeddingResponse, ModerationCreateResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response
from vaderSentiment.vaderSentiment import BOOSTER_DICT, NEGATE, SPECIAL_CASES, SentimentIntensityAnalyzer

from local_batch_api.engines import SUPPORTED_ENDPOINTS, EngineReply, error_body
from local_batch_api.engines import sentiment as sentiment_module
from local_batch_api.engines.local import LocalEngine
from local_batch_api.engines.schema_answer import SchemaError, fill_schema
from local_batch_api.engines.tokens import embedding_input_tokens, messages_tokens, text_tokens

jsonschema = pytest.importorskip("jsonschema")

CHAT = "/v1/chat/completions"
POSITIVE = "I absolutely love this blender, works great!"
NEGATIVE = "Terrible, broke after two days, waste of money."
NEUTRAL = "The package arrived on Tuesday."

SENTIMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["positive", "negative", "neutral"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string"},
    },
    "required": ["label", "confidence", "reason"],
    "additionalProperties": False,
}

NESTED_SCHEMA = {
    "type": "object",
    "$defs": {
        "node": {
            "type": "object",
            "properties": {
                "name": {"type": "string", "minLength": 3, "maxLength": 12},
                "children": {"type": "array", "items": {"$ref": "#/$defs/node"}},
            },
            "required": ["name", "children"],
            "additionalProperties": False,
        },
        "aspect": {
            "type": "object",
            "properties": {
                "aspect": {"type": "string"},
                "sentiment": {"type": "string", "enum": ["Positive", "Negative", "Neutral", "Mixed"]},
                "score": {"type": "number", "minimum": -1, "maximum": 1},
            },
            "required": ["aspect", "sentiment", "score"],
            "additionalProperties": False,
        },
    },
    "properties": {
        "tree": {"$ref": "#/$defs/node"},
        "aspects": {"type": "array", "items": {"$ref": "#/$defs/aspect"}, "minItems": 1, "maxItems": 4},
        "keywords": {"type": "array", "items": {"type": "string"}, "minItems": 2, "maxItems": 5},
        "rating": {"type": "integer", "minimum": 1, "maximum": 5},
        "weight": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 0.5},
        "count": {"type": "integer", "exclusiveMinimum": 2, "maximum": 3},
        "maybe": {"anyOf": [{"type": "null"}, {"type": "string", "format": "date-time"}]},
        "either": {"anyOf": [{"type": "integer", "minimum": 10}, {"type": "boolean"}]},
        "note": {"type": ["string", "null"], "maxLength": 5},
        "kind": {"const": "review"},
        "is_positive": {"type": "boolean"},
        "id": {"type": "string", "format": "uuid"},
        "reason": {"type": "string", "maxLength": 30},
    },
    "required": [
        "tree",
        "aspects",
        "keywords",
        "rating",
        "weight",
        "count",
        "maybe",
        "either",
        "note",
        "kind",
        "is_positive",
        "id",
        "reason",
    ],
    "additionalProperties": False,
}


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine()


def _transport(engine: LocalEngine) -> httpx.MockTransport:
    def handle(request: httpx.Request) -> httpx.Response:
        reply = engine.answer(request.url.path, json.loads(request.content))
        return httpx.Response(
            reply.status_code, content=orjson.dumps(reply.body), headers={"content-type": "application/json"}
        )

    return httpx.MockTransport(handle)


@pytest.fixture(scope="module")
def client(engine: LocalEngine) -> openai.OpenAI:
    """The SDK as the pipeline uses it against the local server: strict validation on."""
    return openai.OpenAI(
        api_key="test",
        base_url="http://engine.test/v1",
        http_client=httpx.Client(transport=_transport(engine)),
        max_retries=0,
        _strict_response_validation=True,
    )


def _chat(engine: LocalEngine, content: str | list, **extra) -> EngineReply:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": content}], **extra}
    return engine.answer(CHAT, body)


def _schema_format(schema: dict, name: str = "answer") -> dict:
    return {"type": "json_schema", "json_schema": {"name": name, "schema": schema, "strict": True}}


def _assert_error(reply: EngineReply, status: int, param: str | None = None, code: str | None = None) -> dict:
    assert reply.status_code == status, reply.body
    error = reply.body["error"]
    assert set(error) == {"message", "type", "param", "code"}
    assert isinstance(error["message"], str) and error["message"]
    if param is not None:
        assert error["param"] == param
    if code is not None:
        assert error["code"] == code
    return error


# -- sentiment -------------------------------------------------------------------------------------


EXTRA_WORDS = "no but least at very kind of never so this without doubt or nor the lid :) :-( 😍 💔 !!! ??"


def test_vader_port_gives_vader_scores() -> None:
    """sentiment._score re-implements VADER's rules for speed; it must agree with the library."""
    vader = SentimentIntensityAnalyzer()
    vocab = [
        *list(vader.lexicon)[::40],
        *BOOSTER_DICT,
        *(w for key in SPECIAL_CASES for w in key.split()),
        *NEGATE,
        *EXTRA_WORDS.split(),
    ]
    rng = random.Random(20240601)
    for _ in range(3000):
        words = [rng.choice(vocab) for _ in range(rng.randint(0, 30))]
        words = [w.upper() if rng.random() < 0.15 else w for w in words]
        text = " ".join(w + rng.choice(["", "", ",", ".", "!", "?"]) for w in words)
        assert sentiment_module._score(text)[0] == vader.polarity_scores(text), text


@pytest.mark.parametrize(
    ("text", "label", "words"),
    [
        (POSITIVE, "positive", ["love", "great"]),
        (NEGATIVE, "negative", ["terrible", "broke", "waste"]),
        (NEUTRAL, "neutral", []),
        ("It is not good at all.", "negative", ["not good"]),
    ],
)
def test_sentiment_reads_like_a_person(text: str, label: str, words: list[str]) -> None:
    result = sentiment_module.analyze(text)
    assert result.label == label
    assert 0.5 <= result.confidence <= 1.0
    for word in words:
        assert word in result.reason
    if not words:
        assert result.reason == "no clearly positive or negative words"


# -- chat completions ------------------------------------------------------------------------------


def test_chat_json_schema_sentiment_through_the_sdk(client: openai.OpenAI) -> None:
    for review, label in ((POSITIVE, "positive"), (NEGATIVE, "negative"), (NEUTRAL, "neutral")):
        completion = client.chat.completions.create(
            model="gpt-4o-mini",
            messages=[
                {"role": "system", "content": "Classify the sentiment of the review."},
                {"role": "user", "content": f"Product: Terrible Blender 3000\nReview: {review}"},
            ],
            response_format=_schema_format(SENTIMENT_SCHEMA, "sentiment"),
        )
        assert completion.object == "chat.completion"
        assert completion.id.startswith("chatcmpl-")
        assert completion.model == "gpt-4o-mini"
        choice = completion.choices[0]
        assert choice.finish_reason == "stop"
        assert choice.message.role == "assistant" and choice.message.refusal is None
        answer = json.loads(choice.message.content)
        jsonschema.validate(answer, SENTIMENT_SCHEMA)
        assert answer["label"] == label, (review, answer)
        assert answer["reason"]
        usage = completion.usage
        assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
        assert usage.prompt_tokens_details.cached_tokens == 0


def test_chat_reply_validates_as_the_sdk_model(engine: LocalEngine) -> None:
    reply = _chat(engine, POSITIVE, response_format=_schema_format(SENTIMENT_SCHEMA))
    assert reply.status_code == 200
    completion = validate_type(type_=ChatCompletion, value=reply.body)
    assert completion.service_tier == "default"
    assert completion.system_fingerprint
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0


def test_nested_schema_answers_are_valid(engine: LocalEngine) -> None:
    validator = jsonschema.Draft202012Validator(NESTED_SCHEMA, format_checker=jsonschema.FormatChecker())
    texts = [POSITIVE, NEGATIVE, NEUTRAL, "", "!!!", "word " * 80, "Great lid. Awful motor. Fine jar."]
    for text in texts:
        reply = _chat(engine, text or " ", response_format=_schema_format(NESTED_SCHEMA))
        assert reply.status_code == 200, reply.body
        value = json.loads(reply.body["choices"][0]["message"]["content"])
        errors = list(validator.iter_errors(value))
        assert not errors, (text, errors[0].message, value)
        assert value["kind"] == "review"
        assert value["tree"]["children"], "recursion should go a few levels deep, then stop"
    positive = json.loads(
        _chat(engine, POSITIVE, response_format=_schema_format(NESTED_SCHEMA)).body["choices"][0]["message"][
            "content"
        ]
    )
    assert positive["aspects"][0]["sentiment"] == "Positive"
    assert positive["is_positive"] is True
    assert positive["rating"] >= 4
    assert "blender" in positive["keywords"]


@pytest.mark.parametrize(
    "schema",
    [
        {"type": "object", "properties": {"x": {"type": "string", "minLength": 5, "maxLength": 2}}},
        {"type": "object", "properties": {"x": {"$ref": "#/$defs/missing"}}},
        {"type": "object", "properties": {"x": {"type": "tuple"}}},
        {"type": "object", "properties": {"x": {"type": "integer", "minimum": 5, "maximum": 1}}},
        {"$ref": "#"},
    ],
)
def test_unsatisfiable_schemas_are_a_400(engine: LocalEngine, schema: dict) -> None:
    reply = _chat(engine, POSITIVE, response_format=_schema_format(schema))
    _assert_error(reply, 400, param="response_format")


def test_schema_filler_is_deterministic_and_seeded() -> None:
    schema = {"type": "object", "properties": {"note": {"type": "string"}, "n": {"type": "integer"}}}
    text = "one two three four five six seven eight nine ten eleven twelve"
    assert fill_schema(schema, text, 7) == fill_schema(schema, text, 7)
    assert len({orjson.dumps(fill_schema(schema, text, seed)) for seed in range(20)}) > 1
    with pytest.raises(SchemaError):
        fill_schema({"type": "object", "properties": {"x": {"enum": []}}}, text, 1)


def test_loose_schemas_and_length_limits() -> None:
    loose = {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a", "b"]}
    value = fill_schema(loose, POSITIVE, 3)
    jsonschema.validate(value, loose)
    short = {"type": "object", "properties": {"reason": {"type": "string", "minLength": 4, "maxLength": 20}}}
    reason = fill_schema(short, NEGATIVE + " " + POSITIVE, 3)["reason"]
    assert 4 <= len(reason) <= 20 and not reason.endswith((" ", ","))
    padded = {"type": "object", "properties": {"title": {"type": "string", "minLength": 40}}}
    assert len(fill_schema(padded, "tiny", 1)["title"]) >= 40


def test_review_marker_and_content_parts(engine: LocalEngine) -> None:
    schema_format = _schema_format(SENTIMENT_SCHEMA)
    parts = [
        {"type": "text", "text": "Product: Awful Hater Toaster"},
        {"type": "text", "text": f"review: {POSITIVE}"},
    ]
    reply = _chat(engine, parts, response_format=schema_format)
    assert json.loads(reply.body["choices"][0]["message"]["content"])["label"] == "positive"
    # Only the last user message counts.
    body = {
        "model": "gpt-4o-mini",
        "messages": [
            {"role": "user", "content": NEGATIVE},
            {"role": "assistant", "content": "Noted."},
            {"role": "user", "content": POSITIVE},
        ],
        "response_format": schema_format,
    }
    reply = engine.answer(CHAT, body)
    assert json.loads(reply.body["choices"][0]["message"]["content"])["label"] == "positive"


def test_plain_text_answers(engine: LocalEngine) -> None:
    content = _chat(engine, f"What is the sentiment of this review?\n{NEGATIVE}").body["choices"][0][
        "message"
    ]
    assert content["content"].startswith("Negative.")
    assert "terrible" in content["content"]
    summary = _chat(engine, "The meeting moved to Friday. Bring the slides.").body["choices"][0]["message"]
    assert summary["content"] == "Summary: The meeting moved to Friday."


def test_json_object_mode(engine: LocalEngine) -> None:
    reply = _chat(engine, f"Give the sentiment as JSON: {POSITIVE}", response_format={"type": "json_object"})
    answer = json.loads(reply.body["choices"][0]["message"]["content"])
    assert answer["label"] == "positive" and 0 <= answer["confidence"] <= 1 and answer["reason"]
    reply = _chat(engine, "Summarize as json: The lid cracked.", response_format={"type": "json_object"})
    assert isinstance(json.loads(reply.body["choices"][0]["message"]["content"]), dict)
    # Like the service: json_object needs the word "json" in the messages.
    _assert_error(_chat(engine, POSITIVE, response_format={"type": "json_object"}), 400, param="messages")


def test_n_choices(engine: LocalEngine) -> None:
    reply = _chat(engine, "Tell me something about turtles and their long lives.", n=3)
    choices = reply.body["choices"]
    assert [c["index"] for c in choices] == [0, 1, 2]
    single = text_tokens(choices[0]["message"]["content"])
    assert reply.body["usage"]["completion_tokens"] == sum(
        text_tokens(c["message"]["content"]) for c in choices
    )
    assert single > 0
    _assert_error(_chat(engine, "x", n=0), 400, param="n")


def test_max_tokens_truncates(client: openai.OpenAI, engine: LocalEngine) -> None:
    completion = client.chat.completions.create(
        model="gpt-4o-mini",
        messages=[{"role": "user", "content": POSITIVE}],
        response_format=_schema_format(SENTIMENT_SCHEMA),
        max_completion_tokens=3,
    )
    assert completion.choices[0].finish_reason == "length"
    assert len(completion.choices[0].message.content) == 12
    assert completion.usage.completion_tokens == 3
    legacy = _chat(engine, POSITIVE, max_tokens=2).body["choices"][0]
    assert legacy["finish_reason"] == "length" and len(legacy["message"]["content"]) == 8


def test_same_request_same_bytes(engine: LocalEngine) -> None:
    body = {
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": POSITIVE}],
        "response_format": _schema_format(NESTED_SCHEMA),
        "n": 2,
    }
    first = orjson.dumps(engine.answer(CHAT, body).body)
    again = orjson.dumps(LocalEngine().answer(CHAT, json.loads(json.dumps(body))).body)
    reordered = orjson.dumps(engine.answer(CHAT, dict(reversed(list(body.items())))).body)
    assert first == again == reordered
    other = engine.answer(CHAT, {**body, "messages": [{"role": "user", "content": NEGATIVE}]}).body
    assert other["id"] != orjson.loads(first)["id"]


# -- responses -------------------------------------------------------------------------------------


def test_responses_with_text_format(client: openai.OpenAI) -> None:
    response = client.responses.create(
        model="gpt-5-mini",
        instructions="Classify the sentiment of the review.",
        input=f"Review: {NEGATIVE}",
        text={
            "format": {"type": "json_schema", "name": "sentiment", "schema": SENTIMENT_SCHEMA, "strict": True}
        },
    )
    assert response.object == "response" and response.status == "completed"
    assert response.id.startswith("resp_") and response.output[0].id.startswith("msg_")
    answer = json.loads(response.output_text)
    jsonschema.validate(answer, SENTIMENT_SCHEMA)
    assert answer["label"] == "negative"
    assert response.text.format.type == "json_schema"
    assert response.usage.total_tokens == response.usage.input_tokens + response.usage.output_tokens
    assert response.instructions == "Classify the sentiment of the review."


def test_responses_message_list_and_incomplete(engine: LocalEngine) -> None:
    body = {
        "model": "gpt-4.1-mini",
        "input": [
            {"role": "developer", "content": "Answer with the sentiment."},
            {"role": "user", "content": [{"type": "input_text", "text": POSITIVE}]},
        ],
    }
    reply = engine.answer("/v1/responses", body)
    response = validate_type(type_=Response, value=reply.body)
    assert response.output_text.startswith("Positive.")
    long = {
        "model": "gpt-4.1-mini",
        "input": "Turtles live long lives in warm seas and sleep underwater often.",
    }
    cut = validate_type(
        type_=Response, value=engine.answer("/v1/responses", {**long, "max_output_tokens": 16}).body
    )
    assert cut.status == "incomplete" and cut.incomplete_details.reason == "max_output_tokens"
    _assert_error(
        engine.answer("/v1/responses", {**body, "max_output_tokens": 5}), 400, param="max_output_tokens"
    )
    _assert_error(engine.answer("/v1/responses", {"model": "gpt-5"}), 400, param="input")


# -- embeddings ------------------------------------------------------------------------------------


def _norm(vector: list[float]) -> float:
    return math.sqrt(sum(float(x) * float(x) for x in array("f", vector)))


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True)) / (_norm(a) * _norm(b))


def test_embeddings_float_through_the_sdk(client: openai.OpenAI) -> None:
    result = client.embeddings.create(
        model="text-embedding-3-small",
        input=["The cat sat on the mat.", "A cat sat on a mat", "Quarterly revenue grew five percent."],
        encoding_format="float",
    )
    vectors = [d.embedding for d in result.data]
    assert [d.index for d in result.data] == [0, 1, 2]
    assert all(len(v) == 1536 for v in vectors)
    assert all(abs(_norm(v) - 1) < 1e-6 for v in vectors)
    assert _cosine(vectors[0], vectors[1]) > 0.5 > _cosine(vectors[0], vectors[2])
    assert result.usage.prompt_tokens == result.usage.total_tokens > 0


def test_embeddings_base64_default_of_the_sdk(engine: LocalEngine) -> None:
    """The SDK asks for base64 by default and decodes little-endian float32 itself."""
    lenient = openai.OpenAI(
        api_key="test",
        base_url="http://engine.test/v1",
        http_client=httpx.Client(transport=_transport(engine)),
    )
    result = lenient.embeddings.create(model="text-embedding-3-large", input="hello world", dimensions=256)
    vector = result.data[0].embedding
    assert len(vector) == 256 and abs(_norm(vector) - 1) < 1e-6
    as_float = engine.answer(
        "/v1/embeddings",
        {
            "model": "text-embedding-3-large",
            "input": "hello world",
            "dimensions": 256,
            "encoding_format": "float",
        },
    )
    assert as_float.body["data"][0]["embedding"] == vector
    raw = engine.answer(
        "/v1/embeddings", {"model": "text-embedding-3-large", "input": "hello", "encoding_format": "base64"}
    )
    assert len(base64.b64decode(raw.body["data"][0]["embedding"])) == 3072 * 4


def test_embedding_inputs_and_defaults(engine: LocalEngine) -> None:
    def embed(**body) -> dict:
        reply = engine.answer(
            "/v1/embeddings", {"model": "text-embedding-3-small", "encoding_format": "float", **body}
        )
        assert reply.status_code == 200, reply.body
        return validate_type(type_=CreateEmbeddingResponse, value=reply.body).model_dump()

    tokens = embed(input=[15339, 1917])
    assert len(tokens["data"]) == 1 and tokens["usage"]["prompt_tokens"] == 2
    batches = embed(input=[[1, 2, 3], [4]])
    assert len(batches["data"]) == 2
    blank = embed(input="   ")["data"][0]["embedding"]
    assert abs(_norm(blank) - 1) < 1e-6
    ada = engine.answer(
        "/v1/embeddings", {"model": "text-embedding-ada-002", "input": "x", "encoding_format": "float"}
    )
    assert len(ada.body["data"][0]["embedding"]) == 1536
    assert embed(input="same text") == embed(input="same text")


@pytest.mark.parametrize(
    ("body", "param"),
    [
        ({"input": []}, "input"),
        ({"input": ""}, "input"),
        ({"input": ["ok", ""]}, "input"),
        ({"input": [[]]}, "input"),
        ({"input": {"text": "x"}}, "input"),
        ({"input": "x", "dimensions": 4000}, "dimensions"),
        ({"input": "x", "dimensions": 0}, "dimensions"),
        ({"input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"input": "word " * 9000}, "input"),
        ({"input": "x", "model": "text-embedding-ada-002", "dimensions": 256}, "dimensions"),
        ({"input": "x", "model": None}, "model"),
    ],
)
def test_embedding_errors(engine: LocalEngine, body: dict, param: str) -> None:
    _assert_error(
        engine.answer("/v1/embeddings", {"model": "text-embedding-3-small", **body}), 400, param=param
    )


# -- completions and moderations -------------------------------------------------------------------


def test_completions_and_moderations_through_the_sdk(client: openai.OpenAI) -> None:
    completion = client.completions.create(
        model="gpt-3.5-turbo-instruct", prompt=["Once upon a time", "Hi"], n=2
    )
    assert isinstance(completion, Completion)
    assert [c.index for c in completion.choices] == [0, 1, 2, 3]
    assert (
        completion.usage.total_tokens == completion.usage.prompt_tokens + completion.usage.completion_tokens
    )
    moderation = client.moderations.create(
        input=["I will kill you and bomb your house.", "Lovely weather today."]
    )
    assert isinstance(moderation, ModerationCreateResponse)
    flagged, calm = moderation.results
    assert flagged.flagged and flagged.categories.violence
    assert not calm.flagged and calm.category_scores.violence < 0.01


# -- errors and the async interface ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"messages": [{"role": "user", "content": "hi"}]}, "model", "missing_required_parameter"),
        ({"model": 5, "messages": []}, "model", "invalid_type"),
        ({"model": "gpt-4o"}, "messages", "missing_required_parameter"),
        ({"model": "gpt-4o", "messages": "hi"}, "messages", "invalid_type"),
        ({"model": "gpt-4o", "messages": []}, "messages", "empty_array"),
        ({"model": "gpt-4o", "messages": ["hi"]}, "messages[0]", "invalid_type"),
        (
            {"model": "gpt-4o", "messages": [{"content": "hi"}]},
            "messages[0].role",
            "missing_required_parameter",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "bot", "content": "hi"}]},
            "messages[0].role",
            "invalid_value",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": 3}]},
            "messages[0].content",
            "invalid_type",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": [3]}]},
            "messages[0].content[0]",
            "invalid_type",
        ),
        ({"model": "gpt-4o", "messages": [{"role": "user", "content": "x"}], "n": "2"}, "n", "invalid_type"),
        (
            {
                "model": "gpt-4o",
                "messages": [{"role": "user", "content": "x"}],
                "response_format": {"type": "xml"},
            },
            "response_format.type",
            "invalid_value",
        ),
        (
            {"model": "gpt-4o", "messages": [{"role": "user", "content": "a" * 600_000}]},
            "messages",
            "context_length_exceeded",
        ),
    ],
)
def test_chat_errors(engine: LocalEngine, body: dict, param: str, code: str) -> None:
    _assert_error(engine.answer(CHAT, body), 400, param=param, code=code)


def test_context_windows_depend_on_the_model(engine: LocalEngine) -> None:
    long = "a" * 600_000  # ~150k tokens: over 128k, under gpt-4.1's and gpt-5's windows
    assert _chat(engine, long).status_code == 400
    for model in ("gpt-4.1-mini", "gpt-5-nano"):
        reply = engine.answer(CHAT, {"model": model, "messages": [{"role": "user", "content": long}]})
        assert reply.status_code == 200
    reply = engine.answer("/v1/responses", {"model": "gpt-4o", "input": long})
    _assert_error(reply, 400, param="input", code="context_length_exceeded")


def test_bad_bodies_never_raise(engine: LocalEngine) -> None:
    weird: list = [
        None,
        [],
        "x",
        3,
        {},
        {"model": None},
        {"model": "m", "messages": [None]},
        {"model": "m", "input": 5},
    ]
    weird += [
        {"model": "m", "prompt": {"a": 1}},
        {"model": "m", "input": [None]},
        {"model": "m", "text": "x", "input": "y"},
    ]
    weird += [
        {"model": "m", "input": "y", "text": {"format": {"type": "json_schema"}}},
        {"input": [1, "a"], "model": "m"},
    ]
    for url in SUPPORTED_ENDPOINTS:
        for body in weird:
            reply = engine.answer(url, body)
            assert reply.status_code in (200, 400), (url, body, reply)
            if reply.status_code == 400 or body in weird[:5]:
                _assert_error(reply, 400)
    _assert_error(engine.answer("/v1/images/generations", {"model": "x"}), 404)


def test_error_body_shape() -> None:
    assert error_body("nope") == {
        "error": {"message": "nope", "type": "invalid_request_error", "param": None, "code": None}
    }


async def test_answer_many_uses_one_thread_hop(engine: LocalEngine, monkeypatch: pytest.MonkeyPatch) -> None:
    hops = []
    real = asyncio.to_thread

    async def counting(func, /, *args, **kwargs):
        hops.append(func)
        return await real(func, *args, **kwargs)

    monkeypatch.setattr(asyncio, "to_thread", counting)
    bodies = [
        {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": text}]}
        for text in (POSITIVE, NEGATIVE, NEUTRAL)
    ] + [{"model": "gpt-4o-mini"}]
    replies = await engine.answer_many(CHAT, bodies)
    assert len(hops) == 1
    assert [r.status_code for r in replies] == [200, 200, 200, 400]
    assert replies[0] == engine.answer(CHAT, bodies[0])
    assert await engine.answer_many(CHAT, []) == []
    await engine.aclose()


def test_token_estimates() -> None:
    assert text_tokens("") == 1 and text_tokens("abcd") == 1 and text_tokens("abcde") == 2
    parts = [
        {
            "role": "user",
            "content": [{"type": "text", "text": "a" * 8}, {"type": "image_url", "image_url": {}}],
        }
    ]
    assert messages_tokens(parts) == 2 + 85
    assert embedding_input_tokens([[1, 2, 3], "abcdefgh"]) == [3, 2]
    assert embedding_input_tokens([7, 8]) == [2]


def test_negation_does_not_cross_sentences_and_review_words_count() -> None:
    """VADER alone reads "never answered. Total waste" as "not waste"; reviews need better."""
    result = sentiment_module.analyze(
        "Stopped working after a week. Customer service never answered. Total waste of money."
    )
    assert result.label == "negative"
    assert "waste" in result.negative_words
    assert sentiment_module.analyze("Flimsy junk, returning it for a refund.").label == "negative"
    assert sentiment_module.analyze("Sturdy and durable, exactly as described.").label == "positive"
