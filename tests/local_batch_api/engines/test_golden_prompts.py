"""The golden prompts through the local engine: every answer must be one a person would accept."""

from __future__ import annotations

import json
import math
from collections import Counter

import orjson
import pytest
from openai._models import validate_type
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion
from openai.types.responses import Response

from local_batch_api.engines.local import LocalEngine

from .golden_prompts import (
    CHAT,
    CHAT_GOLDEN,
    EMBEDDINGS,
    EMBEDDINGS_CASES,
    RESPONSES,
    Golden,
    GoldenEmbedding,
)

jsonschema = pytest.importorskip("jsonschema")


@pytest.fixture(scope="module")
def engine() -> LocalEngine:
    return LocalEngine()


def _answer_text(golden: Golden, body: dict) -> str:
    if golden.endpoint == CHAT:
        return validate_type(type_=ChatCompletion, value=body).choices[0].message.content
    assert golden.endpoint == RESPONSES
    return validate_type(type_=Response, value=body).output_text


def test_eight_prompts_per_use_case() -> None:
    counts = Counter(g.use_case for g in CHAT_GOLDEN)
    assert counts == {"sentiment": 8, "generation": 8, "evaluation": 8, "extraction": 8}
    assert len(EMBEDDINGS_CASES) == 8
    assert len({g.name for g in CHAT_GOLDEN}) == len(CHAT_GOLDEN)


@pytest.mark.parametrize("golden", CHAT_GOLDEN, ids=lambda g: f"{g.use_case}-{g.name}")
def test_golden_answer_is_plausible(engine: LocalEngine, golden: Golden) -> None:
    reply = engine.answer(golden.endpoint, golden.body)
    assert reply.status_code == 200, reply.body
    text = _answer_text(golden, reply.body)
    context = f"{golden.plausible}\nanswer: {text!r}"
    wants_json = golden.schema is not None or golden.fields or golden.within
    if wants_json:
        value = json.loads(text)
        if golden.schema is not None:
            jsonschema.validate(value, golden.schema)
        for key, expected in golden.fields.items():
            assert value.get(key) == expected, f"{key}: {context}"
        for key, (low, high) in golden.within.items():
            assert isinstance(value.get(key), int | float) and low <= value[key] <= high, f"{key}: {context}"
    lower = text.lower()
    for part in golden.contains:
        assert part.lower() in lower, f"missing {part!r}: {context}"
    for part in golden.excludes:
        assert part.lower() not in lower, f"should not contain {part!r}: {context}"
    if golden.one_of:
        assert text.strip().rstrip(".") in golden.one_of, context
    if golden.max_words is not None:
        assert len(text.split()) <= golden.max_words, context
    if golden.min_lines is not None:
        assert len([line for line in text.splitlines() if line.strip()]) >= golden.min_lines, context
    again = LocalEngine().answer(golden.endpoint, json.loads(json.dumps(golden.body)))
    assert orjson.dumps(again.body) == orjson.dumps(reply.body), "same body, same answer"


def _vectors(engine: LocalEngine, inputs: list[str], dimensions: int | None) -> list[list[float]]:
    body = {"model": "text-embedding-3-small", "input": inputs, "encoding_format": "float"}
    if dimensions is not None:
        body["dimensions"] = dimensions
    reply = engine.answer(EMBEDDINGS, body)
    assert reply.status_code == 200, reply.body
    result = validate_type(type_=CreateEmbeddingResponse, value=reply.body)
    return [d.embedding for d in sorted(result.data, key=lambda d: d.index)]


def _cosine(a: list[float], b: list[float]) -> float:
    return sum(x * y for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize("golden", EMBEDDINGS_CASES, ids=lambda g: g.name)
def test_golden_embeddings(engine: LocalEngine, golden: GoldenEmbedding) -> None:
    inputs = list(golden.inputs)
    vectors = _vectors(engine, inputs, golden.dimensions)
    assert all(len(v) == (golden.dimensions or 1536) for v in vectors)
    assert all(abs(math.sqrt(_cosine(v, v)) - 1) < 1e-5 for v in vectors), golden.plausible
    for anchor, near, far in golden.closer:
        assert _cosine(vectors[anchor], vectors[near]) > _cosine(vectors[anchor], vectors[far]), (
            f"{golden.plausible}: {inputs[anchor]!r} should be closer to {inputs[near]!r} than to {inputs[far]!r}"
        )
    for a, b, minimum in golden.min_similarity:
        assert _cosine(vectors[a], vectors[b]) >= minimum, golden.plausible
    assert _vectors(LocalEngine(), inputs, golden.dimensions) == vectors, "same input, same vectors"
    assert _vectors(engine, inputs[:1], golden.dimensions)[0] == vectors[0], (
        "a text's vector ignores its batch"
    )
