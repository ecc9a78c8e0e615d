"""The typed records a batch backend speaks: what callers see of any provider's batches.

Callers (submission, the sensor and trigger, collect) read these and nothing of a provider's
SDK. ``BatchState`` serialises to the JSON summary that trigger events and XCom carry, and reads
back every summary written so far, so a wait deferred before an upgrade resumes after it.
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from llm_batch.handoffs import HandoffVersionError


class BatchStatus(enum.StrEnum):
    """Where a batch is in its life. Values are the wire names the summary keeps."""

    VALIDATING = "validating"
    IN_PROGRESS = "in_progress"
    FINALIZING = "finalizing"
    CANCELLING = "cancelling"
    COMPLETED = "completed"
    FAILED = "failed"
    EXPIRED = "expired"
    CANCELLED = "cancelled"

    @property
    def is_terminal(self) -> bool:
        """Nothing more will happen to the batch: its results (if any) can be collected."""
        return self in _TERMINAL


_TERMINAL = frozenset({BatchStatus.COMPLETED, BatchStatus.FAILED, BatchStatus.EXPIRED, BatchStatus.CANCELLED})
TERMINAL_STATUSES = frozenset(status.value for status in _TERMINAL)


# A state and its parts are named tuples: immutable, and cheap to build on every poll of a thousand waits.


class RequestCounts(NamedTuple):
    total: int = 0
    completed: int = 0
    failed: int = 0


class TokenUsage(NamedTuple):
    """Tokens the provider billed for the batch; cached and reasoning tokens are priced apart."""

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_tokens: int = 0
    reasoning_tokens: int = 0


class BatchProblem(NamedTuple):
    """Why a batch as a whole failed, e.g. one invalid input line or an exhausted quota."""

    code: str | None
    message: str | None
    param: str | None = None
    line: int | None = None


class BatchTimes(NamedTuple):
    """The provider's clock for each step of the batch, in epoch seconds (``None`` until reached)."""

    created_at: int | None = None
    in_progress_at: int | None = None
    finalizing_at: int | None = None
    completed_at: int | None = None
    failed_at: int | None = None
    expired_at: int | None = None
    cancelling_at: int | None = None
    cancelled_at: int | None = None

    @property
    def ended_at(self) -> int | None:
        """When the batch stopped running: its results date from then, however often collected."""
        return self.completed_at or self.expired_at or self.cancelled_at or self.finalizing_at


TIMESTAMP_FIELDS = BatchTimes._fields
SUMMARY_SCHEMA_VERSION = 1  # of ``BatchState.to_summary()``, the wait step's hand-off to collect


class BatchState(NamedTuple):
    """One look at a batch. ``input_ref``, ``output_ref`` and ``error_ref`` are the provider's
    handles of the batch's input, answers and failed requests (file ids where the provider keeps
    files); only the backend that wrote them reads them."""

    id: str
    status: BatchStatus
    endpoint: str | None = None
    model: str | None = None
    counts: RequestCounts = RequestCounts()
    usage: TokenUsage = TokenUsage()
    problems: tuple[BatchProblem, ...] = ()
    times: BatchTimes = BatchTimes()
    input_ref: str | None = None
    output_ref: str | None = None
    error_ref: str | None = None

    @property
    def is_terminal(self) -> bool:
        return self.status.is_terminal

    @property
    def refused_for_capacity(self) -> bool:
        """Failed only because the model's enqueued-token limit was reached: the same bytes fit later."""
        return self.status is BatchStatus.FAILED and self.problem_codes == {"token_limit_exceeded"}

    @property
    def progress(self) -> tuple[str, int, int, int]:
        """Status and counts: what a waiting log line reports, once per change."""
        return (self.status.value, self.counts.completed, self.counts.failed, self.counts.total)

    def progress_line(self, now: float) -> str:
        """The waiting log's line: status, share done, counts and the time since the batch was
        created (``now`` in epoch seconds), which the provider's 24 h window counts from."""
        done, total = self.counts.completed + self.counts.failed, self.counts.total
        share = f"{done / total:.0%}" if total else "0%"
        line = (
            f"Batch {self.id} is {self.status.value}: {done:,} of {total:,} done ({share}; "
            f"{self.counts.completed:,} completed, {self.counts.failed:,} failed)"
        )
        if self.times.created_at is not None:
            line += f", {_duration(max(0.0, now - self.times.created_at))} since created"
        return line

    @property
    def problem_codes(self) -> frozenset[str]:
        return frozenset(problem.code or "unknown" for problem in self.problems)

    def to_summary(self) -> dict[str, Any]:
        """The JSON-safe summary trigger events and XCom carry (ids, counts, usage, errors; no secret)."""
        usage = self.usage
        return {
            "schema_version": SUMMARY_SCHEMA_VERSION,
            "id": self.id,
            "status": self.status.value,
            "endpoint": self.endpoint,
            "model": self.model,
            "input_file_id": self.input_ref,
            "output_file_id": self.output_ref,
            "error_file_id": self.error_ref,
            "request_counts": {
                "total": self.counts.total,
                "completed": self.counts.completed,
                "failed": self.counts.failed,
            },
            "usage": {
                "input_tokens": usage.input_tokens,
                "output_tokens": usage.output_tokens,
                "total_tokens": usage.total_tokens,
                "cached_tokens": usage.cached_tokens,
                "reasoning_tokens": usage.reasoning_tokens,
            },
            "errors": [
                {"code": p.code, "message": p.message, "param": p.param, "line": p.line}
                for p in self.problems
            ],
            **{name: getattr(self.times, name) for name in TIMESTAMP_FIELDS},
        }

    @classmethod
    def from_summary(cls, summary: Mapping[str, Any]) -> BatchState:
        """Read a summary back, including those written before this record existed (no version)."""
        if summary.get("schema_version", 0) > SUMMARY_SCHEMA_VERSION:
            raise HandoffVersionError(
                f"a batch summary of schema version {summary['schema_version']} was written by a newer "
                f"version of llm_batch than this one (which reads up to {SUMMARY_SCHEMA_VERSION}); upgrade "
                "every worker and the triggerer to the same version"
            )
        counts = summary.get("request_counts") or {}
        usage = summary.get("usage") or {}
        return cls(
            id=summary["id"],
            status=BatchStatus(summary["status"]),
            endpoint=summary.get("endpoint"),
            model=summary.get("model"),
            counts=RequestCounts(**{k: counts.get(k) or 0 for k in RequestCounts._fields}),
            usage=TokenUsage(**{k: usage.get(k) or 0 for k in TokenUsage._fields}),
            problems=tuple(
                BatchProblem(e.get("code"), e.get("message"), e.get("param"), e.get("line"))
                for e in summary.get("errors") or []
            ),
            times=BatchTimes(**{name: summary.get(name) for name in TIMESTAMP_FIELDS}),
            input_ref=summary.get("input_file_id"),
            output_ref=summary.get("output_file_id"),
            error_ref=summary.get("error_file_id"),
        )


@dataclass(frozen=True)
class BatchInput:
    """The request lines of one shard, as the provider receives them (JSONL, one request a line)."""

    name: str  # for providers that keep uploads as named files
    endpoint: str
    requests: int
    read: Callable[[], bytes]  # read lazily: a retry that re-attaches never reads the shard


@dataclass(frozen=True)
class SubmissionTag:
    """What a backend keeps with a batch to find it again: the submission key and which try of it
    (``generation``), plus descriptive ``labels`` (job, interval, shard) where the provider allows."""

    key: str
    generation: int
    labels: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class SubmitResult:
    """The batch a create made. ``recovered``: the create's answer was lost, and the batch it had
    made anyway was found by its submission key instead of being created twice."""

    state: BatchState
    recovered: bool


class LineOutcome(enum.StrEnum):
    """What became of one request of a finished batch."""

    ANSWERED = "answered"  # the provider returned a response body to read the answer from
    FAILED = "failed"  # the request itself failed; ``status_code`` and ``error_code`` say how
    EXPIRED = "expired"  # never run before the batch's window closed
    CANCELLED = "cancelled"  # never run because the batch was cancelled


class ResultLine(NamedTuple):
    """One request's result line, as the provider streamed it (a tuple: there are many)."""

    custom_id: str | None
    outcome: LineOutcome
    body: dict[str, Any] | None = None  # the response body of an answered request
    status_code: int | None = None  # the HTTP status of a failed request, if the provider gave one
    error_code: str | None = None
    error_message: str | None = None


def _duration(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h {minutes:02d}m" if hours else f"{minutes}m {secs:02d}s"
