"""One worker's share of a run, in a process of its own, as a task runs on its machine.

``python -m tests.llm_batch.storage.worker build|rounds|load OUT`` reads the hand-offs so far as
JSON on stdin and writes its own as JSON to the file ``OUT`` (stdout carries Airflow's logs), as
XCom carries them. Everything else it reaches
through Airflow connections in its environment: the warehouse (which holds the source rows),
the batch API and the object store of the run files (``LLM_BATCH_STORAGE_URL``). It keeps
nothing between calls, so each step may run on another machine.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

from include.window_run import WindowRun
from llm_batch.backends import batch_backend
from llm_batch.handoffs import BuildSummary, ShardOutcome, ShardSpec
from llm_batch.run_window import RunWindow
from llm_batch.warehouse import warehouse_for_conn_id
from tests.llm_batch.jobs import sentiment_job


def window_run(handoffs: dict[str, Any]) -> WindowRun:
    job = sentiment_job()  # run files under LLM_BATCH_STORAGE_URL, as every worker is configured
    window = RunWindow(dt.date.fromisoformat(handoffs["start"]), dt.date.fromisoformat(handoffs["end"]))
    run = WindowRun(
        job,
        window,
        lambda: warehouse_for_conn_id(job.warehouse_conn_id),
        batch_backend(job.openai_conn_id),
        handoffs["run_id"],
    )
    if "summary" in handoffs:
        run.summary = BuildSummary.from_xcom(handoffs["summary"])
        run.specs = [ShardSpec.from_xcom(spec) for spec in handoffs["shards"]]
        run.collected = [ShardOutcome.from_xcom(outcome) for outcome in handoffs.get("collected", ())]
    return run


def main(step: str) -> dict[str, Any]:
    run = window_run(json.load(sys.stdin))
    if step == "build":
        run.build()
        return {"summary": run.summary.to_xcom(), "shards": [spec.to_xcom() for spec in run.specs]}
    if step == "rounds":
        submitted = []
        while run.specs:
            run.submit()
            submitted += [submission.to_xcom() for submission in run.submitted]
            run.wait_and_collect()
        return {"submitted": submitted, "collected": [outcome.to_xcom() for outcome in run.collected]}
    if step == "load":
        return {"load": run.load().to_xcom(), "report": run.report().to_xcom()}
    raise SystemExit(f"unknown step {step!r}: build, rounds or load")


if __name__ == "__main__":
    step, out = sys.argv[1:]
    handoffs = main(step)
    with open(out, "w") as handle:
        json.dump(handoffs, handle)
