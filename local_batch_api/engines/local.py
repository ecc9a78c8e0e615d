"""The offline engine: answers each endpoint the way the OpenAI service would, deterministically.

Replies are pure functions of (url, body): ids and seeds come from a hash of the request, so the
same request always yields a byte-identical body. Each prompt is split into instruction and
subject (``prompt_parts``), the instruction read for its task (``tasks``) and the task answered
from the subject alone (``text_answers``; ``schema_answer`` for JSON schemas, filled from the
facts ``extraction`` finds). Sentiment comes from VADER, embeddings are feature-hashed unit vectors.
"""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import itertools
import json
import logging
import math
import re
import sys
import zlib
from array import array
from collections.abc import Callable

import orjson

from . import EngineReply, error_body
from .prompt_parts import Prompt, from_parts
from .schema_answer import STOPWORDS, SchemaError, fill_schema
from .tasks import detect
from .text_answers import answer_object, answer_text
from .text_answers import grade as evaluation_grade
from .tokens import (
    EMBEDDING_INPUT_LIMIT,
    context_window,
    embedding_input_tokens,
    messages_tokens,
    responses_input_tokens,
    text_tokens,
)

log = logging.getLogger(__name__)

DEFAULT_CREATED = 1_735_689_600  # 2025-01-01T00:00:00Z: a fixed clock keeps replies byte-identical
_MASK = (1 << 64) - 1
_WORD_RE = re.compile(r"\w+")
_CHAT_ROLES = ("system", "developer", "user", "assistant", "tool", "function")
_RESPONSES_ROLES = ("system", "developer", "user", "assistant")
_TEXT_PART_TYPES = ("text", "input_text", "output_text")


class _BadRequest(Exception):
    """A 400 with OpenAI's error fields; raised by validation, turned into a reply in ``answer``."""

    def __init__(self, message: str, param: str | None = None, code: str | None = None) -> None:
        super().__init__(message)
        self.body = error_body(message, param=param, code=code)


# ---------------------------------------------------------------------------------------------
# validation helpers


def _json_type(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a decimal"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "an array"
    return "an object"


def _missing(param: str) -> _BadRequest:
    return _BadRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")


def _wrong_type(param: str, expected: str, value: object) -> _BadRequest:
    return _BadRequest(
        f"Invalid type for '{param}': expected {expected}, but got {_json_type(value)} instead.",
        param,
        "invalid_type",
    )


def _require_model(body: dict) -> str:
    model = body.get("model")
    if model is None or model == "":
        raise _missing("model")
    if not isinstance(model, str):
        raise _wrong_type("model", "a string", model)
    return model


def _optional_int(body: dict, key: str, minimum: int, maximum: int | None = None) -> int | None:
    value = body.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise _wrong_type(key, "an integer", value)
    if value < minimum:
        raise _BadRequest(
            f"Invalid '{key}': integer below minimum value. Expected a value >= {minimum}, but got {value} instead.",
            key,
            "integer_below_min_value",
        )
    if maximum is not None and value > maximum:
        raise _BadRequest(
            f"Invalid '{key}': integer above maximum value. Expected a value <= {maximum}, but got {value} instead.",
            key,
            "integer_above_max_value",
        )
    return value


def _content_text(content: object) -> str:
    """Text of a message content: a string, or the text parts of a list of parts."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        texts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") in _TEXT_PART_TYPES]
        return "\n".join(t for t in texts if isinstance(t, str))
    return ""


def _check_content(content: object, param: str, allow_null: bool) -> None:
    if isinstance(content, str) or (content is None and allow_null):
        return
    if not isinstance(content, list):
        raise _wrong_type(param, "one of a string or array of objects", content)
    for j, part in enumerate(content):
        if not isinstance(part, dict):
            raise _wrong_type(f"{param}[{j}]", "an object", part)
        if "type" not in part:
            raise _missing(f"{param}[{j}].type")
        if part["type"] in _TEXT_PART_TYPES and not isinstance(part.get("text"), str):
            raise _wrong_type(f"{param}[{j}].text", "a string", part.get("text"))


def _check_messages(messages: object, param: str, roles: tuple[str, ...], typed_items: bool) -> list:
    if messages is None:
        raise _missing(param)
    if not isinstance(messages, list):
        raise _wrong_type(param, "an array", messages)
    if not messages:
        raise _BadRequest(
            f"Invalid '{param}': empty array. Expected an array with minimum length 1, but got an empty array instead.",
            param,
            "empty_array",
        )
    for i, message in enumerate(messages):
        where = f"{param}[{i}]"
        if not isinstance(message, dict):
            raise _wrong_type(where, "an object", message)
        if typed_items and message.get("type", "message") != "message":
            continue  # function_call_output, reasoning, ... items: accepted as they are
        role = message.get("role")
        if role is None:
            raise _missing(f"{where}.role")
        if role not in roles:
            supported = ", ".join(f"'{r}'" for r in roles)
            raise _BadRequest(
                f"Invalid value: '{role}'. Supported values are: {supported}.",
                f"{where}.role",
                "invalid_value",
            )
        if "content" not in message and not (role == "assistant" and not typed_items):
            raise _missing(f"{where}.content")
        _check_content(message.get("content"), f"{where}.content", allow_null=role == "assistant")
    return messages


def _prompt(messages: list, *context: object) -> Prompt:
    """Instruction and subject of a message list: system/developer messages (and ``context``, the
    responses ``instructions``) instruct; the last user message holds the text, maybe behind a lead-in."""
    lead = [c for c in context if isinstance(c, str)]
    user = None
    for message in messages:
        if not isinstance(message, dict):
            continue
        if message.get("role") in ("system", "developer"):
            lead.append(_content_text(message.get("content")))
        elif message.get("role") == "user":
            user = message
    if user is None:
        user = messages[-1] if messages and isinstance(messages[-1], dict) else {}
    return from_parts(lead, _content_text(user.get("content")))


def _all_text(messages: list, *extra: object) -> str:
    parts = [_content_text(m.get("content")) for m in messages if isinstance(m, dict)]
    parts.extend(x for x in extra if isinstance(x, str))
    return "\n".join(parts)


def _format_spec(fmt: object, param: str, nested: bool) -> tuple[str, dict | None, str]:
    """(kind, schema, name) from chat ``response_format`` (nested) or responses ``text.format``."""
    if fmt is None:
        return "text", None, ""
    if not isinstance(fmt, dict):
        raise _wrong_type(param, "an object", fmt)
    kind = fmt.get("type")
    if kind is None:
        raise _missing(f"{param}.type")
    if kind not in ("text", "json_object", "json_schema"):
        raise _BadRequest(
            f"Invalid value: '{kind}'. Supported values are: 'text', 'json_object', and 'json_schema'.",
            f"{param}.type",
            "invalid_value",
        )
    if kind != "json_schema":
        return kind, None, ""
    spec_param = f"{param}.json_schema" if nested else param
    spec = fmt.get("json_schema") if nested else fmt
    if spec is None:
        raise _missing(spec_param)
    if not isinstance(spec, dict):
        raise _wrong_type(spec_param, "an object", spec)
    name = spec.get("name")
    if name is None:
        raise _missing(f"{spec_param}.name")
    if not isinstance(name, str):
        raise _wrong_type(f"{spec_param}.name", "a string", name)
    schema = spec.get("schema")
    if schema is None and not nested:
        raise _missing(f"{spec_param}.schema")
    if schema is not None and not isinstance(schema, dict):
        raise _wrong_type(f"{spec_param}.schema", "an object", schema)
    return kind, schema, name


# ---------------------------------------------------------------------------------------------
# answers


def _answer(kind: str, schema: dict | None, name: str, prompt: Prompt, seed: int) -> str:
    """The assistant's text for one choice."""
    task = detect(prompt.instruction)
    if kind == "json_schema" and schema is not None:
        graded = evaluation_grade(prompt) if task.kind == "evaluate" else None
        try:
            value = fill_schema(schema, prompt.subject, seed, graded)
        except SchemaError as exc:
            raise _BadRequest(
                f"Invalid schema for response_format '{name}': {exc}.", "response_format"
            ) from exc
        return orjson.dumps(value).decode()
    if kind != "text":  # json_object, or json_schema without a schema
        return orjson.dumps(answer_object(task, prompt, seed)).decode()
    return answer_text(task, prompt, seed)


def _forced_tool(tools: object, tool_choice: object) -> tuple[str, dict, bool] | None:
    """(name, parameters schema, named) of the function a chat request forces the model to call:
    ``tool_choice`` naming one, or ``"required"`` (the first tool). None when the model may answer."""
    if not isinstance(tools, list) or not tools or tool_choice in (None, "auto", "none"):
        return None
    functions = {}
    for i, tool in enumerate(tools):
        function = tool.get("function") if isinstance(tool, dict) else None
        if not isinstance(function, dict) or not isinstance(function.get("name"), str):
            raise _missing(f"tools[{i}].function.name")
        parameters = function.get("parameters")
        functions.setdefault(
            function["name"], parameters if isinstance(parameters, dict) else {"type": "object"}
        )
    if tool_choice == "required":
        first = next(iter(functions))
        return first, functions[first], False
    if isinstance(tool_choice, dict):
        wanted = (
            (tool_choice.get("function") or {}).get("name")
            if isinstance(tool_choice.get("function"), dict)
            else None
        )
        if wanted not in functions:
            raise _BadRequest(
                f"Invalid value for 'tool_choice': tool_choice '{wanted}' not found in 'tools' parameter.",
                "tool_choice",
            )
        return wanted, functions[wanted], True
    return None


def _tool_call_choice(index: int, forced: tuple[str, dict, bool], prompt: Prompt, seed: int) -> dict:
    """A choice that calls the forced function, its arguments filled from the subject like a schema."""
    name, parameters, named = forced
    task = detect(prompt.instruction)
    graded = evaluation_grade(prompt) if task.kind == "evaluate" else None
    try:
        arguments = fill_schema(parameters, prompt.subject, seed, graded)
    except SchemaError as exc:
        raise _BadRequest(f"Invalid schema for function '{name}': {exc}.", "tools") from exc
    call = {
        "id": f"call_{seed:016x}{index:08x}",
        "type": "function",
        "function": {"name": name, "arguments": orjson.dumps(arguments).decode()},
    }
    return {
        "index": index,
        "message": {
            "role": "assistant",
            "content": None,
            "refusal": None,
            "annotations": [],
            "tool_calls": [call],
        },
        "logprobs": None,
        "finish_reason": "stop" if named else "tool_calls",
    }


def _limit(content: str, max_tokens: int | None) -> tuple[str, int, bool]:
    """(content, completion tokens, truncated) under a max-tokens budget."""
    tokens = text_tokens(content)
    if max_tokens is None or tokens <= max_tokens:
        return content, tokens, False
    return content[: max_tokens * 4], max_tokens, True


def _choice_seed(seed: int, index: int) -> int:
    if not index:
        return seed
    x = (seed + index * 0x9E3779B97F4A7C15) & _MASK
    return ((x ^ (x >> 31)) * 0xBF58476D1CE4E5B9) & _MASK


@functools.lru_cache(maxsize=256)
def _fingerprint(model: str) -> str:
    return "fp_" + hashlib.blake2b(model.encode(), digest_size=5).hexdigest()


def _digest(url: str, body: dict) -> bytes:
    try:
        raw = orjson.dumps(body, option=orjson.OPT_SORT_KEYS)
    except TypeError:  # integers beyond 64 bits, non-string keys
        try:
            raw = json.dumps(body, sort_keys=True, default=str).encode()
        except (TypeError, ValueError):
            raw = repr(body).encode()
    return hashlib.blake2b(url.encode() + b"\0" + raw, digest_size=16).digest()


# ---------------------------------------------------------------------------------------------
# embeddings


_EMBEDDING_DIMENSIONS = {"text-embedding-3-large": 3072}
_DEFAULT_DIMENSIONS = 1536


def _features(item: str | list[int]) -> list[tuple[str, float]]:
    """Signed-hashing features: lower-cased words (or token ids) and, at half weight, their bigrams.

    Function words weigh a quarter, so texts sharing content words end up close.
    """
    if isinstance(item, list):
        tokens = [f"#{t}" for t in item]
        weights = [1.0] * len(tokens)
    else:
        tokens = _WORD_RE.findall(item.lower())
        weights = [0.25 if t in STOPWORDS else 1.0 for t in tokens]
    feats = list(zip(tokens, weights, strict=True))
    feats.extend(
        (f"{a} {b}", 0.5 * min(wa, wb)) for (a, wa), (b, wb) in itertools.pairwise(feats[: len(tokens)])
    )
    if not feats:  # punctuation only, whitespace: still a valid, text-specific unit vector
        feats.append((f"\0{item}", 1.0))
    return feats


def _embed(item: str | list[int], dims: int) -> array:
    sparse: dict[int, float] = {}
    for feature, weight in _features(item):
        h = zlib.crc32(feature.encode())
        h = ((h ^ (h >> 15)) * 0x2C1B3C6D) & 0xFFFFFFFF  # spread crc32 bits before taking a bucket
        bucket = h % dims
        sparse[bucket] = sparse.get(bucket, 0.0) + (weight if h & 0x80000000 else -weight)
    norm = math.sqrt(sum(v * v for v in sparse.values()))
    if norm == 0.0:  # features cancelled out exactly
        sparse, norm = {zlib.crc32(str(item).encode()) % dims: 1.0}, 1.0
    vector = array("f", bytes(4 * dims))
    for bucket, value in sparse.items():
        vector[bucket] = value / norm
    return vector


def _encode(vector: array, encoding: str) -> list[float] | str:
    if encoding == "float":
        return vector.tolist()
    if sys.byteorder != "little":
        vector = array("f", vector)
        vector.byteswap()
    return base64.b64encode(vector.tobytes()).decode()


def _embedding_inputs(value: object) -> list[str | list[int]]:
    """The inputs of an embeddings request, validated like the service does."""
    if value is None:
        raise _missing("input")
    if isinstance(value, str):
        items: list = [value]
    elif isinstance(value, list):
        if not value:
            raise _BadRequest(
                "'$.input' is invalid: it must not be an empty array.", "input", "invalid_value"
            )
        items = [value] if all(isinstance(x, int) and not isinstance(x, bool) for x in value) else value
        if len(items) > 2048:
            raise _BadRequest(
                f"Invalid 'input': array too long. Expected an array with maximum length 2048, "
                f"but got an array with length {len(items)} instead.",
                "input",
                "array_above_max_length",
            )
    else:
        raise _wrong_type("input", "one of a string or array", value)
    for i, item in enumerate(items):
        where = "input" if len(items) == 1 and not isinstance(value, list) else f"input[{i}]"
        if isinstance(item, str):
            if not item:
                raise _BadRequest(
                    f"'$.{where}' is invalid: it must not be an empty string.", "input", "invalid_value"
                )
        elif isinstance(item, list):
            if not item or not all(isinstance(t, int) and not isinstance(t, bool) and t >= 0 for t in item):
                raise _BadRequest(
                    f"'$.{where}' is invalid: token arrays must be non-empty lists of non-negative integers.",
                    "input",
                    "invalid_value",
                )
        else:
            raise _wrong_type(where, "a string or an array of integers", item)
    return items


# ---------------------------------------------------------------------------------------------
# moderation


_VIOLENT_TEXT = """kill killing killed murder murdering shoot shooting stab stabbing bomb bombing massacre
    slaughter behead strangle torture assault attack"""
_VIOLENT_WORDS = frozenset(_VIOLENT_TEXT.split())
_SELF_HARM_PHRASES = ("kill myself", "end my life", "hurt myself", "suicide")
_MODERATION_CATEGORIES = (
    "harassment",
    "harassment/threatening",
    "hate",
    "hate/threatening",
    "illicit",
    "illicit/violent",
    "self-harm",
    "self-harm/instructions",
    "self-harm/intent",
    "sexual",
    "sexual/minors",
    "violence",
    "violence/graphic",
)
_IMAGE_CATEGORIES = frozenset(
    ("self-harm", "self-harm/instructions", "self-harm/intent", "sexual", "violence", "violence/graphic")
)


def _moderation_result(text: str, has_image: bool) -> dict:
    lower = text.lower()
    violent = sum(1 for w in _WORD_RE.findall(lower) if w in _VIOLENT_WORDS)
    self_harm = any(p in lower for p in _SELF_HARM_PHRASES)
    base = (zlib.crc32(text.encode()) % 1000) / 1e6  # tiny, text-specific background score
    scores = dict.fromkeys(_MODERATION_CATEGORIES, base)
    if violent:
        scores["violence"] = min(0.99, 0.6 + 0.15 * violent)
        scores["harassment/threatening"] = min(0.9, 0.2 + 0.1 * violent)
    if self_harm:
        scores["self-harm"] = scores["self-harm/intent"] = 0.9
    flags = {k: v >= 0.5 for k, v in scores.items()}
    applied = {k: ["text", "image"] if has_image and k in _IMAGE_CATEGORIES else ["text"] for k in scores}
    return {
        "flagged": any(flags.values()),
        "categories": flags,
        "category_scores": scores,
        "category_applied_input_types": applied,
    }


# ---------------------------------------------------------------------------------------------
# the engine


class LocalEngine:
    """Answers requests offline. ``created`` fixes the timestamps so replies stay reproducible."""

    def __init__(self, *, created: int = DEFAULT_CREATED) -> None:
        self.created = created
        self._routes: dict[str, Callable[[dict, bytes], dict]] = {
            "/v1/chat/completions": self._chat,
            "/v1/responses": self._responses,
            "/v1/embeddings": self._embeddings,
            "/v1/completions": self._completions,
            "/v1/moderations": self._moderations,
        }

    async def answer_many(self, url: str, bodies: list[dict]) -> list[EngineReply]:
        """All bodies in one worker thread, so the event loop stays free while the CPU works."""
        if not bodies:
            return []
        return await asyncio.to_thread(self._answer_list, url, bodies)

    async def aclose(self) -> None:
        return None

    def _answer_list(self, url: str, bodies: list[dict]) -> list[EngineReply]:
        answer = self.answer
        return [answer(url, body) for body in bodies]

    def answer(self, url: str, body: dict) -> EngineReply:
        """One reply for one request; never raises."""
        route = self._routes.get(url)
        if route is None:
            return EngineReply(404, error_body(f"Invalid URL (POST {url})"))
        if not isinstance(body, dict):
            message = f"The request body must be a JSON object, but got {_json_type(body)} instead."
            return EngineReply(400, error_body(message))
        try:
            return EngineReply(200, route(body, _digest(url, body)))
        except _BadRequest as exc:
            return EngineReply(400, exc.body)
        except Exception:
            log.exception("local engine failed on a %s request", url)
            message = "The server had an error while processing your request. Sorry about that!"
            return EngineReply(500, error_body(message, type="server_error"))

    # -- chat completions ------------------------------------------------------------------------

    def _chat(self, body: dict, digest: bytes) -> dict:
        model = _require_model(body)
        messages = _check_messages(body.get("messages"), "messages", _CHAT_ROLES, typed_items=False)
        n = _optional_int(body, "n", 1, 128) or 1
        max_tokens = _optional_int(body, "max_completion_tokens", 1)
        if max_tokens is None:
            max_tokens = _optional_int(body, "max_tokens", 1)
        kind, schema, name = _format_spec(body.get("response_format"), "response_format", nested=True)
        prompt_tokens = messages_tokens(messages)
        window = context_window(model)
        if prompt_tokens > window:
            raise _BadRequest(
                f"This model's maximum context length is {window} tokens. However, your messages resulted in "
                f"{prompt_tokens} tokens. Please reduce the length of the messages.",
                "messages",
                "context_length_exceeded",
            )
        prompt = _all_text(messages)
        if kind == "json_object" and "json" not in prompt.lower():
            raise _BadRequest(
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
                "messages",
            )
        parts = _prompt(messages)
        forced = _forced_tool(body.get("tools"), body.get("tool_choice"))
        seed = int.from_bytes(digest[:8], "little")
        choices, completion_tokens = [], 0
        for i in range(n):
            if forced is not None:
                choice = _tool_call_choice(i, forced, parts, _choice_seed(seed, i))
                completion_tokens += text_tokens(choice["message"]["tool_calls"][0]["function"]["arguments"])
                choices.append(choice)
                continue
            content, tokens, cut = _limit(
                _answer(kind, schema, name, parts, _choice_seed(seed, i)), max_tokens
            )
            completion_tokens += tokens
            choices.append(
                {
                    "index": i,
                    "message": {"role": "assistant", "content": content, "refusal": None, "annotations": []},
                    "logprobs": None,
                    "finish_reason": "length" if cut else "stop",
                }
            )
        return {
            "id": f"chatcmpl-{digest.hex()}",
            "object": "chat.completion",
            "created": self.created,
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
                "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                "completion_tokens_details": {
                    "reasoning_tokens": 0,
                    "audio_tokens": 0,
                    "accepted_prediction_tokens": 0,
                    "rejected_prediction_tokens": 0,
                },
            },
            "service_tier": "default",
            "system_fingerprint": _fingerprint(model),
        }

    # -- responses -------------------------------------------------------------------------------

    def _responses(self, body: dict, digest: bytes) -> dict:
        model = _require_model(body)
        input_ = body.get("input")
        instructions = body.get("instructions")
        if instructions is not None and not isinstance(instructions, str):
            raise _wrong_type("instructions", "a string", instructions)
        if input_ is None:
            raise _missing("input")
        if isinstance(input_, str):
            parts, prompt = from_parts([instructions or ""], input_), input_
        else:
            items = _check_messages(input_, "input", _RESPONSES_ROLES, typed_items=True)
            parts, prompt = _prompt(items, instructions), _all_text(items)
        prompt = f"{instructions}\n{prompt}" if instructions else prompt
        max_tokens = _optional_int(body, "max_output_tokens", 16)
        text_cfg = body.get("text")
        if text_cfg is not None and not isinstance(text_cfg, dict):
            raise _wrong_type("text", "an object", text_cfg)
        fmt = (text_cfg or {}).get("format")
        kind, schema, name = _format_spec(fmt, "text.format", nested=False)
        prompt_tokens = responses_input_tokens(input_, instructions)
        if prompt_tokens > context_window(model):
            raise _BadRequest(
                "Your input exceeds the context window of this model. Please adjust your input and try again.",
                "input",
                "context_length_exceeded",
            )
        if kind == "json_object" and "json" not in prompt.lower():
            raise _BadRequest(
                "Response input messages must contain the word 'json' in some form to use 'text.format' of "
                "type 'json_object'.",
                "input",
            )
        seed = int.from_bytes(digest[:8], "little")
        try:
            answer = _answer(kind, schema, name, parts, seed)
        except _BadRequest as exc:
            exc.body["error"]["message"] = exc.body["error"]["message"].replace(
                "response_format", "text.format"
            )
            exc.body["error"]["param"] = "text.format"
            raise
        content, output_tokens, cut = _limit(answer, max_tokens)
        status = "incomplete" if cut else "completed"
        tool_choice = body.get("tool_choice", "auto")
        return {
            "id": f"resp_{digest.hex()}",
            "object": "response",
            "created_at": self.created,
            "status": status,
            "background": False,
            "completed_at": None if cut else self.created,
            "error": None,
            "incomplete_details": {"reason": "max_output_tokens"} if cut else None,
            "instructions": instructions,
            "max_output_tokens": max_tokens,
            "max_tool_calls": None,
            "model": model,
            "output": [
                {
                    "id": f"msg_{digest[::-1].hex()}",
                    "type": "message",
                    "status": status,
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": content, "annotations": [], "logprobs": []}],
                }
            ],
            "parallel_tool_calls": body.get("parallel_tool_calls") is not False,
            "previous_response_id": body.get("previous_response_id"),
            "reasoning": {"effort": None, "summary": None},
            "service_tier": "default",
            "store": body.get("store") is not False,
            "temperature": _number_or(body.get("temperature"), 1.0),
            "text": {"format": _format_echo(kind, fmt, name, schema), "verbosity": "medium"},
            "tool_choice": tool_choice if isinstance(tool_choice, str | dict) else "auto",
            "tools": body.get("tools") if isinstance(body.get("tools"), list) else [],
            "top_logprobs": 0,
            "top_p": _number_or(body.get("top_p"), 1.0),
            "truncation": "disabled",
            "usage": {
                "input_tokens": prompt_tokens,
                "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
                "output_tokens": output_tokens,
                "output_tokens_details": {"reasoning_tokens": 0},
                "total_tokens": prompt_tokens + output_tokens,
            },
            "user": None,
            "metadata": body.get("metadata") if isinstance(body.get("metadata"), dict) else {},
        }

    # -- legacy completions ----------------------------------------------------------------------

    def _completions(self, body: dict, digest: bytes) -> dict:
        model = _require_model(body)
        prompt = body.get("prompt")
        if prompt is None:
            raise _missing("prompt")
        if isinstance(prompt, str) or _is_token_list(prompt):
            prompts = [prompt]
        elif (
            isinstance(prompt, list)
            and prompt
            and all(isinstance(p, str) or _is_token_list(p) for p in prompt)
        ):
            prompts = prompt
        else:
            raise _wrong_type("prompt", "a string, an array of strings or an array of token arrays", prompt)
        n = _optional_int(body, "n", 1, 128) or 1
        max_tokens = _optional_int(body, "max_tokens", 0)
        max_tokens = 16 if max_tokens is None else max_tokens
        echo = body.get("echo") is True
        seed = int.from_bytes(digest[:8], "little")
        window = context_window(model)
        choices, prompt_tokens, completion_tokens = [], 0, 0
        for p_index, p in enumerate(prompts):
            text = p if isinstance(p, str) else ""
            tokens = text_tokens(p) if isinstance(p, str) else max(1, len(p))
            if tokens + max_tokens > window:
                raise _BadRequest(
                    f"This model's maximum context length is {window} tokens, however you requested "
                    f"{tokens + max_tokens} tokens ({tokens} in your prompt; {max_tokens} for the completion). "
                    "Please reduce your prompt; or completion length.",
                    "prompt" if tokens > window else "max_tokens",
                    "context_length_exceeded",
                )
            prompt_tokens += tokens
            parts = from_parts([], text)
            for j in range(n):
                raw = _answer("text", None, "", parts, _choice_seed(seed, p_index * n + j))
                content, used, cut = _limit(" " + raw, max_tokens) if max_tokens else ("", 0, True)
                completion_tokens += used
                choices.append(
                    {
                        "index": p_index * n + j,
                        "text": (text + content) if echo else content,
                        "logprobs": None,
                        "finish_reason": "length" if cut else "stop",
                    }
                )
        return {
            "id": f"cmpl-{digest.hex()}",
            "object": "text_completion",
            "created": self.created,
            "model": model,
            "choices": choices,
            "usage": {
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
                "total_tokens": prompt_tokens + completion_tokens,
            },
            "system_fingerprint": _fingerprint(model),
        }

    # -- embeddings ------------------------------------------------------------------------------

    def _embeddings(self, body: dict, digest: bytes) -> dict:
        model = _require_model(body)
        items = _embedding_inputs(body.get("input"))
        native = _EMBEDDING_DIMENSIONS.get(model, _DEFAULT_DIMENSIONS)
        dims = _optional_int(body, "dimensions", 1, native)
        if dims is not None and dims != native and model == "text-embedding-ada-002":
            raise _BadRequest(
                "This model does not support specifying dimensions.", "dimensions", "invalid_value"
            )
        dims = dims or native
        encoding = body.get("encoding_format", "float")
        if encoding not in ("float", "base64"):
            raise _BadRequest(
                f"Invalid value: '{encoding}'. Supported values are: 'float' and 'base64'.",
                "encoding_format",
                "invalid_value",
            )
        counts = embedding_input_tokens(items)
        for i, count in enumerate(counts):
            if count > EMBEDDING_INPUT_LIMIT:
                raise _BadRequest(
                    f"This model's maximum context length is {EMBEDDING_INPUT_LIMIT} tokens, however you requested "
                    f"{count} tokens ({count} in your prompt; 0 for the completion) for input {i}. "
                    "Please reduce your prompt; or completion length.",
                    "input",
                    "context_length_exceeded",
                )
        data = [
            {"object": "embedding", "index": i, "embedding": _encode(_embed(item, dims), encoding)}
            for i, item in enumerate(items)
        ]
        total = sum(counts)
        return {
            "object": "list",
            "data": data,
            "model": model,
            "usage": {"prompt_tokens": total, "total_tokens": total},
        }

    # -- moderations -----------------------------------------------------------------------------

    def _moderations(self, body: dict, digest: bytes) -> dict:
        model = body.get("model") or "omni-moderation-latest"
        if not isinstance(model, str):
            raise _wrong_type("model", "a string", model)
        value = body.get("input")
        if value is None:
            raise _missing("input")
        if isinstance(value, str):
            results = [_moderation_result(value, False)]
        elif isinstance(value, list) and value and all(isinstance(x, str) for x in value):
            results = [_moderation_result(x, False) for x in value]
        elif isinstance(value, list) and value and all(isinstance(x, dict) for x in value):
            has_image = any(x.get("type") == "image_url" for x in value)
            results = [_moderation_result(_content_text(value), has_image)]
        else:
            raise _wrong_type("input", "a string, an array of strings or an array of content parts", value)
        return {"id": f"modr-{digest.hex()}", "model": model, "results": results}


def _number_or(value: object, default: float) -> float:
    return value if isinstance(value, int | float) and not isinstance(value, bool) else default


def _is_token_list(value: object) -> bool:
    return isinstance(value, list) and bool(value) and all(type(t) is int for t in value)


def _format_echo(kind: str, fmt: object, name: str, schema: dict | None) -> dict:
    """``text.format`` as the service echoes it back."""
    if kind != "json_schema" or not isinstance(fmt, dict):
        return {"type": kind}
    return {
        "type": "json_schema",
        "description": fmt.get("description"),
        "name": name,
        "schema": schema,
        "strict": fmt.get("strict") is True,
    }
