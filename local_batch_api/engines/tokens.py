"""Cheap token estimates (about four characters a token) for ``usage`` and context-window checks.

Good enough for billing-shaped numbers without shipping a tokenizer; never below 1.
"""

from __future__ import annotations

import functools

IMAGE_PART_TOKENS = 85  # what a low-detail image costs on the real service
DEFAULT_CONTEXT_WINDOW = 128_000
EMBEDDING_INPUT_LIMIT = 8_192

_CONTEXT_WINDOWS = (  # first matching prefix wins
    ("gpt-4.1", 1_047_576),
    ("gpt-3.5-turbo-instruct", 4_096),
    ("davinci-002", 16_384),
    ("babbage-002", 16_384),
    ("gpt-5", 400_000),
    ("o1-mini", 128_000),
    ("o1", 200_000),
    ("o3", 200_000),
    ("o4", 200_000),
)


@functools.lru_cache(maxsize=256)
def context_window(model: str) -> int:
    """Prompt-token limit for a chat/responses model."""
    for prefix, window in _CONTEXT_WINDOWS:
        if model.startswith(prefix):
            return window
    return DEFAULT_CONTEXT_WINDOW


def text_tokens(text: str) -> int:
    """About four characters a token, at least one."""
    return (len(text) + 3) // 4 or 1


def _content_chars(content: object) -> tuple[int, int]:
    """(characters, image tokens) of a message content: a string or a list of parts."""
    if isinstance(content, str):
        return len(content), 0
    chars = images = 0
    if isinstance(content, list):
        for part in content:
            if isinstance(part, str):
                chars += len(part)
            elif isinstance(part, dict):
                text = part.get("text")
                if isinstance(text, str):
                    chars += len(text)
                elif part.get("type") in ("image_url", "input_image"):
                    images += IMAGE_PART_TOKENS
    return chars, images


def messages_tokens(messages: object) -> int:
    """Prompt tokens of chat ``messages`` or a responses ``input`` message list."""
    chars = images = 0
    if isinstance(messages, list):
        for message in messages:
            if isinstance(message, dict):
                c, i = _content_chars(message.get("content"))
                if not c and not i and message.get("type") == "function_call_output":
                    c, i = _content_chars(message.get("output"))
                chars += c
                images += i
    return ((chars + 3) // 4 or 1) + images


def responses_input_tokens(input_: object, instructions: object = None) -> int:
    """Prompt tokens of a responses request: ``input`` (string or items) plus ``instructions``."""
    extra = len(instructions) if isinstance(instructions, str) else 0
    if isinstance(input_, str):
        return (len(input_) + extra + 3) // 4 or 1
    return messages_tokens(input_) + (extra + 3) // 4


def embedding_input_tokens(input_: object) -> list[int]:
    """Tokens per embeddings input; token-id lists count one token per id."""
    if isinstance(input_, str):
        return [text_tokens(input_)]
    if isinstance(input_, list):
        if input_ and all(isinstance(x, int) for x in input_):
            return [len(input_)]
        return [
            text_tokens(x) if isinstance(x, str) else max(1, len(x)) if isinstance(x, list) else 1
            for x in input_
        ]
    return [1]
