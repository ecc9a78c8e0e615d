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
from llm_batch.backends import BatchBackend, RetryPolicy
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
    collected: list[ShardOutcome] = field(default_factory=list)

    @property
    def connections(self) -> steps.Connections:
        return steps.Connections(self.open_warehouse, self.open_warehouse, lambda: self.backend)

    def build(self) -> WindowRun:
        built = steps.build(
            self.job, self.window, steps.RunOptions(), run_id=self.run_id, connections=self.connections
        )
        self.summary, self.specs = built.summary, built.shards
        return self

    def submit(self) -> WindowRun:
        self.submitted = []
        for spec in self.specs:
            submitted = steps.submit(self.job, spec, run_id=self.run_id, connections=self.connections)
            if submitted.batch_id is not None:  # None: every request is in flight elsewhere
                self.submitted.append(submitted)
        return self

    def wait_and_collect(self, timeout: float = 300.0) -> WindowRun:
        """Wait for the round's batches and collect them; the next round's shards become ``specs``."""
        outcomes = [
            steps.collect(
                self.job, submitted, self._wait(submitted.batch_id, timeout), connections=self.connections
            )
            for submitted in self.submitted
        ]
        self.collected.extend(outcomes)
        self.specs = steps.next_round(outcomes)
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

    def run(self) -> LoadCounts:
        """Every step, every round; returns what load returns."""
        self.build()
        while self.specs:
            self.submit().wait_and_collect()
        return self.load()

    def _wait(self, batch_id: str, timeout: float) -> dict:
        deadline = time.monotonic() + timeout
        while not (state := self.backend.retrieve(batch_id, retry=LOOK_RETRY)).is_terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {state.status.value} after {timeout:g} s")
            time.sleep(0.1)
        return state.to_summary()
