"""Fault injection: deterministic failures that tests set per server or per batch.

Server-wide faults come from ``--fault KEY=VALUE`` flags or ``PUT /_local/faults``; a batch may
add its own through the metadata key :data:`METADATA_KEY` (a JSON object). A batch keeps the
faults it was created with, so changing the server's faults never rewrites a running batch.

A crash point is a fault of the process, not of a batch: the environment variable
:data:`CRASH_ENV` names a point of :data:`CRASH_POINTS` (``point`` or ``point@N`` for the Nth
time it is reached), and the server exits there at once, as a power cut or a SIGKILL would.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import random
from dataclasses import dataclass, fields
from typing import Any

import orjson

from local_batch_api.errors import invalid_request

METADATA_KEY = "local_batch_api_faults"
CRASH_ENV = "LOCAL_BATCH_API_CRASH_AT"
CRASH_EXIT_CODE = 97
# Each names the instant just after the step it names, in the order a batch reaches them.
CRASH_POINTS = (
    "chunk.written",  # replies written and synced, progress not yet recorded
    "chunk.recorded",  # progress recorded
    "unrun.written",  # error lines of requests never run (expired, cancelled) written and synced
    "unrun.recorded",  # their progress recorded, files not yet published
    "publish.synced",  # a partial file cut to its recorded size and synced, not yet renamed
    "publish.renamed",  # renamed into place, the directory not yet synced
    "publish.dir_synced",  # the directory synced, the file not yet recorded
    "publish.recorded",  # the file recorded, the batch not yet moved on
    "delete.freed",  # a deleted file's bytes freed (its tombstone left), its record not yet dropped
)


@dataclass(frozen=True)
class Faults:
    seed: int = 0
    # Validation: the batch moves to ``failed``.
    fail_validation: bool = False
    token_limit_exceeded: bool = False
    # Per-line failures: this share of requests goes to the error file with this status code.
    line_failure_share: float = 0.0
    line_failure_status: int = 500
    # Transient errors on API calls, answered before the call reaches its handler.
    api_error_share: float = 0.0
    api_error_status: int = 429
    retry_after_seconds: float = 1.0
    # Lifecycle: stay in ``finalizing`` this long; expire once this share of requests is done.
    stall_finalizing_seconds: float = 0.0
    expire_after_share: float | None = None
    # Lost answers: the next this many creates (uploads, cancels) take effect, then answer 500,
    # as when the service applied a call and its answer was lost. Server-wide only.
    lose_create_answers: int = 0
    lose_upload_answers: int = 0
    lose_cancel_answers: int = 0
    # Server-wide batch faults apply to this many batches created from now on, then stop
    # (e.g. 1: "the next batch expires half-way", while the follow-up batch runs clean).
    limit_batches: int | None = None

    @classmethod
    def from_mapping(cls, values: dict[str, Any], base: Faults | None = None) -> Faults:
        """Build faults from loosely typed values (flags, JSON), rejecting unknown keys."""
        known = {f.name: f for f in fields(cls)}
        changes: dict[str, Any] = {}
        for key, raw in values.items():
            if key not in known:
                raise invalid_request(f"Unknown fault {key!r}; known: {', '.join(sorted(known))}.")
            changes[key] = _coerce(key, known[key].type, raw)
        return dataclasses.replace(base or cls(), **changes)

    @classmethod
    def from_metadata(cls, metadata: dict[str, str] | None, base: Faults) -> Faults:
        if not metadata or METADATA_KEY not in metadata:
            return base
        try:
            values = orjson.loads(metadata[METADATA_KEY])
        except orjson.JSONDecodeError:
            raise invalid_request(
                f"metadata.{METADATA_KEY} must be a JSON object.", param="metadata"
            ) from None
        if not isinstance(values, dict):
            raise invalid_request(f"metadata.{METADATA_KEY} must be a JSON object.", param="metadata")
        return cls.from_mapping(values, base)

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def line_fails(self, custom_id: str) -> bool:
        """Whether this request fails; decided by its id, so order and restarts do not change it."""
        return self.line_failure_share > 0 and _unit(self.seed, "line", custom_id) < self.line_failure_share


class ApiFaultDice:
    """The server-wide faults: seeded draws for API calls, and the batches they still apply to."""

    def __init__(self, faults: Faults) -> None:
        self.faults = faults
        self._rng = random.Random(faults.seed)
        self._batches_faulted = 0
        self._answers_to_lose = {
            "create": faults.lose_create_answers,
            "upload": faults.lose_upload_answers,
            "cancel": faults.lose_cancel_answers,
        }

    def faults_for_new_batch(self) -> Faults:
        limit = self.faults.limit_batches
        if limit is not None:
            if self._batches_faulted >= limit:
                return Faults(seed=self.faults.seed)
            self._batches_faulted += 1
        return self.faults

    def roll(self) -> bool:
        return self.faults.api_error_share > 0 and self._rng.random() < self.faults.api_error_share

    def lose_answer(self, call: str) -> bool:
        """Whether this applied ``call`` (create, upload, cancel) answers as if its answer were lost."""
        left = self._answers_to_lose.get(call, 0)
        if left <= 0:
            return False
        self._answers_to_lose[call] = left - 1
        return True


@dataclass(frozen=True)
class CrashPoint:
    """Where the process exits on purpose (``name=None``: nowhere), and at which arrival there."""

    name: str | None = None
    arrival: int = 1

    @classmethod
    def from_env(cls, env: dict[str, str]) -> CrashPoint:
        raw = env.get(CRASH_ENV, "").strip()
        if not raw:
            return cls()
        name, _, arrival = raw.partition("@")
        if name not in CRASH_POINTS or (arrival and not arrival.isdigit()) or arrival == "0":
            raise SystemExit(
                f"{CRASH_ENV}={raw!r}: expected POINT or POINT@N (N >= 1); points: {', '.join(CRASH_POINTS)}"
            )
        return cls(name, int(arrival or 1))


class CrashSwitch:
    """Counts arrivals at the configured crash point and exits the process on the chosen one."""

    def __init__(self, point: CrashPoint) -> None:
        self.point = point
        self._arrivals = 0

    def reached(self, name: str) -> None:
        if name != self.point.name:
            return
        self._arrivals += 1
        if self._arrivals == self.point.arrival:
            os._exit(CRASH_EXIT_CODE)  # no cleanup, no flush: exactly what a crash leaves behind


def _unit(seed: int, *parts: str) -> float:
    digest = hashlib.blake2b("\x1f".join((str(seed), *parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def _coerce(key: str, type_name: Any, raw: Any) -> Any:
    text = str(type_name)
    try:
        if raw is None and "None" in text:
            return None
        if text.startswith("bool"):
            if isinstance(raw, str):
                if raw.lower() not in {"true", "false", "1", "0", "yes", "no"}:
                    raise ValueError(raw)
                return raw.lower() in {"true", "1", "yes"}
            return bool(raw)
        if text.startswith("int"):
            return int(raw)
        return float(raw)
    except (TypeError, ValueError):
        raise invalid_request(f"Fault {key!r} has an invalid value {raw!r}.") from None
