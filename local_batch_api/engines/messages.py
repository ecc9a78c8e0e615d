"""Anthropic's Messages API on top of an engine that answers Chat Completions.

A ``/v1/messages`` body is checked as the Messages API checks it, turned into a chat request
(a forced tool's ``input_schema`` and ``output_config.format`` both become a JSON-schema
response format), answered by the wrapped engine, and the chat reply turned back into a
Message. Every other URL goes to the wrapped engine unchanged.
"""

from __future__ import annotations

import hashlib
from typing import Any

import orjson

from . import Engine, EngineReply

MESSAGES_URL = "/v1/messages"
_CHAT_URL = "/v1/chat/completions"
_KNOWN_PARAMS = frozenset(
    {
        "model",
        "max_tokens",
        "messages",
        "system",
        "tools",
        "tool_choice",
        "temperature",
        "top_p",
        "top_k",
        "stop_sequences",
        "metadata",
        "output_config",
        "service_tier",
        "thinking",
        "stream",
    }
)
_STOP_REASONS = {"stop": "end_turn", "length": "max_tokens", "content_filter": "refusal"}
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    529: "overloaded_error",
}


def anthropic_error(status: int, message: str, type: str | None = None) -> dict[str, Any]:
    """Anthropic's error envelope; the type follows the status unless given."""
    kind = type or _ERROR_TYPES.get(status, "api_error")
    return {"type": "error", "error": {"type": kind, "message": message}}


def as_anthropic_error(reply: EngineReply) -> dict[str, Any]:
    """An error reply of any dialect in Anthropic's shape (OpenAI's message kept)."""
    body = reply.body
    if body.get("type") == "error":
        return body
    error = body.get("error")
    message = error.get("message") if isinstance(error, dict) else None
    return anthropic_error(reply.status_code, message or "The request failed.")


class _Invalid(Exception):
    pass


class MessagesEngine:
    """Answers ``/v1/messages`` through the wrapped engine's Chat Completions."""

    def __init__(self, inner: Engine) -> None:
        self.inner = inner

    async def answer_many(self, url: str, bodies: list[dict]) -> list[EngineReply]:
        if url != MESSAGES_URL:
            return await self.inner.answer_many(url, bodies)
        replies: list[EngineReply | None] = [None] * len(bodies)
        chats: list[tuple[int, dict, _Request]] = []
        for i, body in enumerate(bodies):
            try:
                request = _Request.parse(body)
            except _Invalid as exc:
                replies[i] = EngineReply(400, anthropic_error(400, str(exc)))
                continue
            chats.append((i, body, request))
        if chats:
            answered = await self.inner.answer_many(_CHAT_URL, [r.chat_body() for _, _, r in chats])
            for (i, body, request), reply in zip(chats, answered, strict=True):
                if reply.status_code != 200:
                    replies[i] = EngineReply(reply.status_code, as_anthropic_error(reply))
                else:
                    replies[i] = EngineReply(200, request.message(body, reply.body))
        return replies  # type: ignore[return-value]

    async def aclose(self) -> None:
        await self.inner.aclose()


class _Request:
    """A checked Messages body: the chat request it becomes, and the tool its answer goes to."""

    def __init__(self, body: dict, messages: list[dict], tool: dict | None, schema: dict | None) -> None:
        self.body = body
        self.chat_messages = messages
        self.tool = tool
        self.schema = schema

    @classmethod
    def parse(cls, body: dict) -> _Request:
        extra = sorted(set(body) - _KNOWN_PARAMS)
        if extra:
            raise _Invalid(f"{extra[0]}: Extra inputs are not permitted")
        if body.get("stream"):
            raise _Invalid("stream: streaming is not supported by this server")
        model = body.get("model")
        if not isinstance(model, str) or not model:
            raise _Invalid(
                "model: Field required" if model is None else "model: Input should be a valid string"
            )
        max_tokens = body.get("max_tokens")
        if max_tokens is None:
            raise _Invalid("max_tokens: Field required")
        if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
            raise _Invalid("max_tokens: Input should be an integer greater than or equal to 1")
        chat = [{"role": "system", "content": _system_text(body.get("system"))}] if body.get("system") else []
        messages = body.get("messages")
        if not isinstance(messages, list) or not messages:
            raise _Invalid("messages: at least one message is required")
        for n, message in enumerate(messages):
            if not isinstance(message, dict) or message.get("role") not in ("user", "assistant"):
                raise _Invalid(f"messages.{n}.role: Input should be 'user' or 'assistant'")
            chat.append({"role": message["role"], "content": _content_text(message.get("content"), n)})
        tools = body.get("tools") or []
        if not isinstance(tools, list):
            raise _Invalid("tools: Input should be a valid list")
        by_name = {}
        for n, tool in enumerate(tools):
            if not isinstance(tool, dict) or not isinstance(tool.get("name"), str):
                raise _Invalid(f"tools.{n}.name: Field required")
            if "input_schema" in tool and not isinstance(tool["input_schema"], dict):
                raise _Invalid(f"tools.{n}.input_schema: Input should be a valid dictionary")
            by_name[tool["name"]] = tool
        tool = _forced_tool(body.get("tool_choice"), tools, by_name)
        schema = _output_schema(body.get("output_config"))
        if tool is not None and schema is not None:
            raise _Invalid("output_config.format cannot be combined with a forced tool call")
        return cls(body, chat, tool, schema)

    def chat_body(self) -> dict[str, Any]:
        chat: dict[str, Any] = {
            "model": self.body["model"],
            "messages": self.chat_messages,
            "max_completion_tokens": self.body["max_tokens"],
        }
        schema = self.tool.get("input_schema", {"type": "object"}) if self.tool else self.schema
        if schema is not None:
            name = self.tool["name"] if self.tool else "output"
            chat["response_format"] = {"type": "json_schema", "json_schema": {"name": name, "schema": schema}}
        for key in ("temperature", "top_p"):
            if key in self.body:
                chat[key] = self.body[key]
        return chat

    def message(self, body: dict, chat_reply: dict) -> dict[str, Any]:
        choice = chat_reply["choices"][0]
        text = choice["message"].get("content") or ""
        stop_reason = _STOP_REASONS.get(choice.get("finish_reason"), "end_turn")
        digest = hashlib.blake2b(str(chat_reply.get("id")).encode(), digest_size=12).hexdigest()
        content: list[dict[str, Any]] = [{"type": "text", "text": text, "citations": None}]
        if self.tool is not None and stop_reason == "end_turn":
            try:
                arguments = orjson.loads(text)
            except orjson.JSONDecodeError:
                arguments = None
            if isinstance(arguments, dict):
                tool_block = {"type": "tool_use", "id": f"toolu_{digest}", "name": self.tool["name"]}
                content = [{**tool_block, "input": arguments, "caller": {"type": "direct"}}]
                stop_reason = "tool_use"
        usage = chat_reply.get("usage") or {}
        return {
            "id": f"msg_{digest}",
            "type": "message",
            "role": "assistant",
            "model": body["model"],
            "content": content,
            "stop_reason": stop_reason,
            "stop_sequence": None,
            "usage": {
                "input_tokens": int(usage.get("prompt_tokens", 0)),
                "output_tokens": int(usage.get("completion_tokens", 0)),
                "cache_creation_input_tokens": 0,
                "cache_read_input_tokens": 0,
                "service_tier": "standard",
            },
        }


def _system_text(system: object) -> str:
    if isinstance(system, str):
        return system
    if isinstance(system, list) and all(isinstance(b, dict) and b.get("type") == "text" for b in system):
        return "\n".join(str(b.get("text", "")) for b in system)
    raise _Invalid("system: Input should be a valid string or a list of text blocks")


def _content_text(content: object, n: int) -> str:
    """The text of a message; blocks other than text are reduced to what a prompt can carry."""
    if isinstance(content, str):
        return content
    if not isinstance(content, list) or not content:
        raise _Invalid(f"messages.{n}.content: Input should be a valid string or a non-empty list of blocks")
    parts = []
    for block in content:
        kind = block.get("type") if isinstance(block, dict) else None
        if kind == "text" and isinstance(block.get("text"), str):
            parts.append(block["text"])
        elif kind == "tool_use":
            parts.append(orjson.dumps(block.get("input", {})).decode())
        elif kind == "tool_result":
            inner = block.get("content", "")
            parts.append(inner if isinstance(inner, str) else _content_text(inner, n) if inner else "")
        elif kind in ("image", "document"):
            parts.append(f"[{kind}]")
        else:
            raise _Invalid(f"messages.{n}.content: unsupported block type {kind!r}")
    return "\n".join(parts)


def _forced_tool(choice: object, tools: list, by_name: dict[str, dict]) -> dict | None:
    """The tool a ``tool_choice`` forces, if any (``any`` with tools forces the first one)."""
    if choice is None:
        return None
    kind = choice.get("type") if isinstance(choice, dict) else None
    if kind in ("auto", "none"):
        return None
    if kind == "any":
        if not tools:
            raise _Invalid("tool_choice: 'any' requires at least one tool")
        return tools[0]
    if kind == "tool":
        name = choice.get("name")
        if name not in by_name:
            raise _Invalid(f"tool_choice.name: tool {name!r} is not in 'tools'")
        return by_name[name]
    raise _Invalid("tool_choice.type: Input should be 'auto', 'any', 'tool' or 'none'")


def _output_schema(config: object) -> dict | None:
    if config is None:
        return None
    if not isinstance(config, dict):
        raise _Invalid("output_config: Input should be a valid dictionary")
    fmt = config.get("format")
    if fmt is None:
        return None
    if not isinstance(fmt, dict) or fmt.get("type") != "json_schema":
        raise _Invalid("output_config.format.type: Input should be 'json_schema'")
    if not isinstance(fmt.get("schema"), dict):
        raise _Invalid("output_config.format.schema: Field required")
    return fmt["schema"]
