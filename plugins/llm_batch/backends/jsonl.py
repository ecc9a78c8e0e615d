"""Lines of a JSONL stream, split on ``\\n`` alone.

JSON strings may hold U+2028, U+2029 and U+0085 unescaped; ``str.splitlines`` and httpx's
``iter_lines`` break a record there, so every JSONL reader goes through this one.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator


def jsonl_records(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """Each non-blank line of a byte stream cut anywhere, without its line end."""
    pending: list[bytes] = []  # the start of an unfinished line, kept as parts: joined once
    for chunk in chunks:
        if b"\n" not in chunk:
            pending.append(chunk)
            continue
        *lines, rest = b"".join([*pending, chunk]).split(b"\n")
        pending = [rest]
        yield from (line for line in lines if line.strip())
    last = b"".join(pending)
    if last.strip():
        yield last
