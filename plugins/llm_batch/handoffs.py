"""The records tasks hand each other: typed here, plain JSON in XCom, versioned across upgrades.

    build --ShardSpec*, BuildSummary--> submit --Submission--> wait --batch summary--> collect
    collect --ShardOutcome--> next round / load --LoadCounts--> report --RunReport

Each record is a frozen dataclass. ``to_xcom`` writes it as a JSON object with its
``schema_version``; ``from_xcom`` reads that version and every earlier one (version 0: written
before records were versioned), so a run started before an upgrade finishes after it. A record
from a newer version than this code fails at once instead of being misread. The wait step's
batch summary is the backend's ``BatchState.to_summary()``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar, Self

from llm_batch.digests import identity_digest
from llm_batch.retryable import PermanentError


class HandoffVersionError(PermanentError, ValueError):
    """A record written by a newer version of the library than the one reading it."""


@dataclass(frozen=True)
class Handoff:
    schema_version: ClassVar[int] = 1
    nested: ClassVar[Mapping[str, type[Handoff]]] = {}  # fields holding another record (or None)

    def to_xcom(self) -> dict[str, Any]:
        data: dict[str, Any] = {"schema_version": self.schema_version}
        for item in fields(self):
            value = getattr(self, item.name)
            data[item.name] = value.to_xcom() if isinstance(value, Handoff) else value
        return data

    @classmethod
    def from_xcom(cls, data: Mapping[str, Any] | Self) -> Self:
        if isinstance(data, cls):
            return data
        version = data.get("schema_version") or 0
        if version > cls.schema_version:
            raise HandoffVersionError(
                f"{cls.__name__} of schema version {version} was written by a newer version of "
                f"llm_batch than this one (which reads up to {cls.schema_version}); upgrade every "
                "worker and the triggerer to the same version"
            )
        values = {}
        for item in fields(cls):
            if item.name in data:
                value = data[item.name]
                kind = cls.nested.get(item.name)
                values[item.name] = kind.from_xcom(value) if kind and value is not None else value
        return cls(**values)


@dataclass(frozen=True)
class ShardSpec(Handoff):
    """One shard of one round: where its request lines are and what identifies its submission."""

    job: str
    interval_label: str
    shard: int
    attempt: int  # the follow-up round (1, 2, ...), not Airflow's try number
    path: str  # the JSONL file on the run's ObjectStoragePath
    index_path: str  # custom_id -> key, row date, request fingerprint of the shard's first round
    requests: int
    bytes: int
    estimated_tokens: int
    digest: str  # of the exact bytes sent
    identity_salt: str = ""  # set by forced runs, so they pay for fresh answers instead of re-attaching

    def submission_key_for(self, account: str) -> str:
        """The identity of this shard's submission through ``account`` (``BatchBackend.account``)."""
        return identity_digest([account, *self._identity()])

    @property
    def legacy_submission_key(self) -> str:
        """The identity as written before it named the account: ledger rows of earlier runs."""
        return identity_digest(self._identity())

    def _identity(self) -> list[str]:
        return [
            self.job,
            self.interval_label,
            str(self.shard),
            str(self.attempt),
            self.digest,
            self.identity_salt,
        ]


@dataclass(frozen=True)
class BuildSummary(Handoff):
    """What the build found and made: counts, rejections, estimates and where the run's files are."""

    window: str
    rows_in: int
    duplicates_collapsed: int
    already_settled: int
    rejected: int
    rejection_reasons: dict[str, int]
    requests: int
    shards: int
    estimated_input_tokens: int
    estimated_cost_usd: float | None  # None: the model is unpriced
    estimated_sync_cost_usd: float | None
    rejections_path: str
    run_dir: str
    dry_run: bool
    model: str = ""
    over_ceiling: str = ""  # why the estimate is over the run's max_cost_usd; such a run sends nothing


@dataclass(frozen=True)
class BuiltRun:
    """What ``build_run`` returns: the shards to submit and the summary (two XComs, not one record)."""

    shards: list[ShardSpec]
    summary: BuildSummary


@dataclass(frozen=True)
class Submission(Handoff):
    """The batch a shard's submission is tied to; ``reattached`` when an earlier try had made it.

    ``reused`` when another run made (and pays for) it: this run lands its answers at no new
    cost. ``spec`` is the shard as sent, which may hold fewer requests than the shard built.
    ``queued`` when the model's enqueued-token limit had no room yet: nothing was sent, and the
    wait step submits ``spec`` (the shard as built) once there is.
    """

    nested: ClassVar[Mapping[str, type[Handoff]]] = {"spec": ShardSpec}

    batch_id: str | None  # None: answered, in flight elsewhere, or queued; nothing was sent
    submission_key: str
    reattached: bool
    spec: ShardSpec
    reused: bool = False
    queued: bool = False

    @classmethod
    def queued_for(cls, spec: ShardSpec) -> Submission:
        """A shard waiting for room under its model's enqueued-token limit."""
        return cls(batch_id=None, submission_key="", reattached=False, spec=spec, queued=True)


@dataclass(frozen=True)
class ShardOutcome(Handoff):
    """One collected batch: its files of results and failures, counts, tokens, cost, next round."""

    nested: ClassVar[Mapping[str, type[Handoff]]] = {"retry_spec": ShardSpec}

    batch_id: str
    submission_key: str
    status: str
    shard: int
    attempt: int
    results_path: str
    failures_path: str
    results: int
    failures: int
    retries: int  # requests the next round sends again
    failure_reasons: dict[str, int]
    retry_reasons: dict[str, int]
    input_tokens: int
    output_tokens: int
    cost_usd: float | None  # None: the model is unpriced
    sync_cost_usd: float | None
    model: str
    retry_spec: ShardSpec | None = None
    reused: bool = False  # another run made this batch and carries its cost


@dataclass(frozen=True)
class LoadCounts(Handoff):
    """What the load landed: result rows, failure rows, and result rows that replaced earlier ones."""

    results: int
    failures: int
    replaced: int


@dataclass(frozen=True)
class RunReport(Handoff):
    """One run in figures, as logged, stored in the runs table and returned by the report task."""

    job: str
    window: str
    run_id: str
    dry_run: bool
    rows_in: int
    already_settled: int
    duplicates_collapsed: int
    rejected: int
    requests: int
    results: int
    failures: int
    failure_reasons: dict[str, int] = field(default_factory=dict)
    batches: int = 0  # made by this run, which pays for them
    rounds: int = 0
    input_tokens: int = 0
    output_tokens: int = 0
    cost_usd: float | None = 0.0  # new spend of this run; None: the model is unpriced
    sync_cost_usd: float | None = 0.0
    estimated_cost_usd: float | None = 0.0
    estimated_sync_cost_usd: float | None = 0.0
    failure_share: float = 0.0
    reused_batches: int = 0  # made and paid for by another run; their answers landed here too
    model: str = ""
    over_ceiling: str = ""  # why nothing was sent: the estimate was over the run's max_cost_usd
