"""What the pipeline must know about models: context windows, enqueued-token limits, the token estimate."""

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
    return _by_family(CONTEXT_WINDOWS, model) or DEFAULT_CONTEXT_WINDOW


# What a request costs beyond its text: the chat format around messages (roles, separators), and
# rounding. It keeps the estimate at or above what a service counts, so waves never overfill.
REQUEST_OVERHEAD_TOKENS = 7


def request_tokens(prompt_text: str) -> int:
    """The input tokens of one request whose prompt is ``prompt_text``: its text and the overhead."""
    return estimate_tokens(prompt_text) + REQUEST_OVERHEAD_TOKENS


def estimate_tokens(text: str) -> int:
    """A tokenizer-free estimate: ~4 ASCII characters a token, ~1 token per other character."""
    ascii_count = len(text.encode("ascii", "ignore"))
    return max(1, ascii_count // 4 + (len(text) - ascii_count))


# The Batch API's enqueued-token limit per model (tokens of all of an organisation's running
# batches of that model), as OpenAI publishes it for usage tier 1 on ENQUEUED_LIMITS_CHECKED_ON.
# Higher tiers have more: declare yours in the batch connection's ``enqueued_token_limits``
# extra (per model, or per deployment on Azure) or in the job. Anthropic limits requests, not
# tokens, and publishes no per-model figure here.
ENQUEUED_LIMITS_CHECKED_ON = "2025-11-30"
ENQUEUED_TOKEN_LIMITS: dict[str, int] = {
    "gpt-5": 1_500_000,
    "gpt-5-mini": 5_000_000,
    "gpt-5-nano": 2_000_000,
    "gpt-4.1": 900_000,
    "gpt-4.1-mini": 2_000_000,
    "gpt-4.1-nano": 2_000_000,
    "gpt-4o": 90_000,
    "gpt-4o-mini": 2_000_000,
    "text-embedding-3-small": 3_000_000,
    "text-embedding-3-large": 3_000_000,
    "text-embedding-ada-002": 3_000_000,
}


def default_enqueued_token_limit(model: str) -> int | None:
    """The published tier-1 enqueued-token limit of a model or its snapshot's family; ``None`` if unknown."""
    return _by_family(ENQUEUED_TOKEN_LIMITS, model)


def _by_family(table: dict[str, int], model: str) -> int | None:
    """The value for ``model``: its exact name, else the longest family name its snapshot name extends."""
    families = [name for name in table if model == name or model.startswith(name + "-")]
    return table[max(families, key=len)] if families else None
