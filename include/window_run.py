"""One run of a job's window through the library's steps, in one process, as the DAG runs it.

build -> (submit -> wait -> collect) per round -> load: the same ``llm_batch.steps`` the DAG's
tasks call, without Airflow, for tests and the soak benchmark that overlap runs. Each step opens
the warehouse anew, as each task does. The wait polls from here instead of deferring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from llm_batch import steps
from llm_batch.backends import BatchBackend, BatchState, RetryPolicy
from llm_batch.capacity import AwaitingCapacity
from llm_batch.handoffs import BuildSummary, LoadCounts, RunReport, ShardOutcome, ShardSpec, Submission
from llm_batch.job import BatchJob
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import Warehouse

# A look that fails for a transient reason is tried again, as the trigger's poll would.
LOOK_RETRY = RetryPolicy(tries=8, base=0.1, cap=2.0)


@dataclass
class WindowRun:
    """A run of ``job`` over ``window``; ``open_warehouse`` gives a new warehouse object each call
    (it holds the source rows too)."""

    job: BatchJob
    window: RunWindow
    open_warehouse: Callable[[], Warehouse]
    backend: BatchBackend
    run_id: str
    summary: BuildSummary | None = None
    specs: list[ShardSpec] = field(default_factory=list)
    submitted: list[Submission] = field(default_factory=list)
    _sent_as: list[ShardSpec] = field(default_factory=list)  # the spec each submission was made from
    collected: list[ShardOutcome] = field(default_factory=list)

    @property
    def connections(self) -> steps.Connections:
        return steps.Connections(self.open_warehouse, self.open_warehouse, lambda: self.backend)

    def build(self, options: steps.RunOptions | None = None) -> WindowRun:
        built = steps.build(
            self.job,
            self.window,
            options or steps.RunOptions(),
            run_id=self.run_id,
            connections=self.connections,
        )
        self.summary, self.specs = built.summary, built.shards
        return self

    def submit(self) -> WindowRun:
        """Submit the shards in ``specs``; those the enqueued-token limit has no room for stay there."""
        self.submitted, self._sent_as, waiting = [], [], []
        for spec in self.specs:
            try:
                submitted = steps.submit(self.job, spec, run_id=self.run_id, connections=self.connections)
            except AwaitingCapacity:
                waiting.append(spec)
                continue
            if submitted.batch_id is not None:  # None: every request is in flight elsewhere
                self.submitted.append(submitted)
                self._sent_as.append(spec)
        self.specs = waiting
        return self

    def wait_and_collect(self, timeout: float = 300.0) -> WindowRun:
        """Wait for the batches and collect them; refused ones and the next round join ``specs``."""
        outcomes = []
        for spec, submitted in zip(self._sent_as, self.submitted, strict=True):
            summary = self._wait(submitted.batch_id, timeout)
            if BatchState.from_summary(
                summary
            ).refused_for_capacity:  # in a DAG, the wait step sends it again
                steps.refused_for_capacity(self.job, submitted, connections=self.connections)
                self.specs.append(spec)
                continue
            outcomes.append(steps.collect(self.job, submitted, summary, connections=self.connections))
        self.collected.extend(outcomes)
        self.specs += steps.next_round(outcomes)
        return self

    def load(self) -> LoadCounts:
        return steps.load(
            self.job,
            self.window,
            self.summary,
            self.collected,
            logical_date=self.window.start,
            connections=self.connections,
        )

    def report(self) -> RunReport:
        return steps.report(
            self.job, self.summary, self.collected, run_id=self.run_id, connections=self.connections
        )

    def run(self, timeout: float = 300.0) -> LoadCounts:
        """Every step, every round, in waves under the token limit; returns what load returns."""
        self.build()
        deadline = time.monotonic() + timeout
        while self.specs:
            self.submit()
            if not self.submitted:  # every shard waits for room that other runs' batches hold
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{len(self.specs)} shards found no room in {timeout:g} s")
                time.sleep(0.2)
            self.wait_and_collect(timeout)
        return self.load()

    def _wait(self, batch_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while not (state := self.backend.retrieve(batch_id, retry=LOOK_RETRY)).is_terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {state.status.value} after {timeout:g} s")
            time.sleep(0.1)
        return state.to_summary()
