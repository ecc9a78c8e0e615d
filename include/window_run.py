"""One run of a job's window through the library's task functions, in one process, as the DAG runs it.

build -> (submit -> wait -> collect) per round -> load: the calls the tasks of
``llm_batch.dag_factory`` make, without Airflow, for tests and the soak benchmark that overlap
runs. Each step opens the warehouse anew, as each task does. The wait polls from here instead
of deferring.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from llm_batch import pipeline
from llm_batch.backends import BatchBackend
from llm_batch.collect import BatchFailedError, collect_shard
from llm_batch.job import BatchJob
from llm_batch.ledger import BatchLedger, utcnow
from llm_batch.submission import ShardSpec, submit_shard
from llm_batch.warehouse import Warehouse


@dataclass
class WindowRun:
    """A run of ``job`` over ``window``; ``open_warehouse`` gives a new warehouse object each call."""

    job: BatchJob
    window: pipeline.RunWindow
    open_warehouse: Callable[[], Warehouse]
    backend: BatchBackend
    run_id: str
    summary: dict[str, Any] = field(default_factory=dict)
    specs: list[dict[str, Any]] = field(default_factory=list)
    submitted: list[dict[str, Any]] = field(default_factory=list)
    collected: list[dict[str, Any]] = field(default_factory=list)

    def build(self) -> WindowRun:
        with self.open_warehouse() as warehouse:
            rows = pipeline.extract_rows(self.job, self.window, warehouse)
            rows = pipeline.drop_superseded(self.job, rows, warehouse)
            settled = pipeline.settled_requests(
                self.job, self.window, warehouse, rows=rows, run_id=self.run_id
            )
        built = pipeline.build_run(self.job, self.window, rows, settled)
        self.summary, self.specs = built["summary"], built["shards"]
        return self

    def submit(self) -> WindowRun:
        self.submitted = []
        for spec in self.specs:
            with self.open_warehouse() as warehouse:
                submitted = submit_shard(
                    self.backend,
                    BatchLedger(warehouse),
                    self.job,
                    ShardSpec.from_dict(spec),
                    run_id=self.run_id,
                )
            if submitted["batch_id"] is not None:  # None: every request is in flight elsewhere
                self.submitted.append(submitted)
        return self

    def wait_and_collect(self, timeout: float = 300.0) -> WindowRun:
        """Wait for the round's batches and collect them; the next round's shards become ``specs``."""
        self.specs = []
        for submitted in self.submitted:
            summary = self._wait(submitted["batch_id"], timeout)
            outcome = self._collect(submitted, summary)
            self.collected.append(outcome)
            if outcome["retry_spec"]:
                self.specs.append(outcome["retry_spec"])
        return self

    def load(self) -> dict[str, Any]:
        with self.open_warehouse() as warehouse:
            return pipeline.load_run(
                self.job,
                self.window,
                warehouse,
                self.collected,
                self.summary["rejections_path"],
                logical_date=self.window.start,
            )

    def run(self) -> dict[str, Any]:
        """Every step, every round; returns what load returns."""
        self.build()
        while self.specs:
            self.submit().wait_and_collect()
        return self.load()

    def _wait(self, batch_id: str, timeout: float) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while not (state := self.backend.retrieve(batch_id)).is_terminal:
            if time.monotonic() > deadline:
                raise TimeoutError(f"batch {batch_id} still {state.status.value} after {timeout:g} s")
            time.sleep(0.1)
        return state.to_summary()

    def _collect(self, submitted: dict[str, Any], summary: dict[str, Any]) -> dict[str, Any]:
        key = submitted["submission_key"]
        with self.open_warehouse() as warehouse:
            ledger = BatchLedger(warehouse)
            try:
                outcome = collect_shard(
                    self.backend,
                    self.job,
                    ShardSpec.from_dict(submitted["spec"]),
                    summary,
                    submission_key=key,
                )
            except BatchFailedError as exc:
                ledger.update(key, status="failed", error=str(exc)[:4000], finished_at=utcnow())
                raise
            ledger.record_collected(key, summary, outcome)
        return outcome
