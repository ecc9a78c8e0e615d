"""What the pipeline must know about models: context windows and the token estimate it checks against."""

from __future__ import annotations

CONTEXT_WINDOWS: dict[str, int] = {
    "gpt-5": 272_000,  # input tokens
    "gpt-4.1": 1_047_576,
    "gpt-4o": 128_000,
    "o4-mini": 200_000,
    "o3": 200_000,
    "text-embedding-3-small": 8_191,
    "text-embedding-3-large": 8_191,
    "text-embedding-ada-002": 8_191,
}
DEFAULT_CONTEXT_WINDOW = 128_000


def context_window(model: str) -> int:
    """The input limit of a model, by exact name or the longest family prefix of its snapshot name."""
    families = [name for name in CONTEXT_WINDOWS if model == name or model.startswith(name + "-")]
    return CONTEXT_WINDOWS[max(families, key=len)] if families else DEFAULT_CONTEXT_WINDOW


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~4 ASCII characters a token, ~1 token per other character."""
    ascii_count = len(text.encode("ascii", "ignore"))
    return max(1, ascii_count // 4 + (len(text) - ascii_count))
