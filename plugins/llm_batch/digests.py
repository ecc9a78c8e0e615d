"""Digests that name things by their content: shard files, runs and submissions.

The same content always gives the same name, which is how a re-run finds the files and batches an
earlier try already made.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable


def content_digest(content: bytes) -> str:
    return hashlib.sha256(content).hexdigest()


def identity_digest(parts: Iterable[str]) -> str:
    """A short, stable key for an identity made of several parts (NUL-joined, so parts cannot blur)."""
    return hashlib.sha256("\x00".join(parts).encode()).hexdigest()[:40]
