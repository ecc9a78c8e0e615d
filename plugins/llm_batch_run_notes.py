"""Writes each batch DAG run's report into the run's note, where Airflow's UI shows it.

A task cannot set its own run's note in Airflow 3 (tasks reach the metadata database only
through the execution API, which has no such call), so a listener does it. The scheduler calls
listeners with a detached copy of the run, inside its own open transaction; the note is written
from a short thread with its own session once that transaction has committed the run's end.
Runs without a ``report`` result (other DAGs, failed runs) and runs a person already annotated
are left alone.
"""

from __future__ import annotations

import logging
import threading
import time

from airflow.listeners import hookimpl
from airflow.plugins_manager import AirflowPlugin

log = logging.getLogger(__name__)

REPORT_TASK_ID = "report"
NOTE_MAX_CHARS = 1000  # the length of Airflow's dag_run_note.content column
WRITE_ATTEMPTS = 20


class RunNotes:
    """The listener: on a successful run, its report becomes the run's note."""

    @hookimpl
    def on_dag_run_success(self, dag_run, msg: str) -> None:
        # Not a daemon: a short ``airflow dags test`` process waits for the note before exiting.
        threading.Thread(
            target=write_note, args=(dag_run.dag_id, dag_run.run_id), name="llm-batch-run-note"
        ).start()


def write_note(dag_id: str, run_id: str) -> None:
    """Write the run's report as its note, once the run's success is committed; never raise."""
    from airflow.models.dagrun import DagRun
    from airflow.utils.session import create_session
    from airflow.utils.state import DagRunState
    from sqlalchemy import select

    for _ in range(WRITE_ATTEMPTS):
        try:
            with create_session() as session:
                run = session.scalar(select(DagRun).where(DagRun.dag_id == dag_id, DagRun.run_id == run_id))
                if run is not None and run.state == DagRunState.SUCCESS:
                    note = run_note(session, run)
                    if note is not None and not run.note:
                        run.note = note
                    return
        except Exception:  # a note is a courtesy: it must never disturb the scheduler
            log.debug("Writing the note of %s %s failed; trying again", dag_id, run_id, exc_info=True)
        time.sleep(0.5)
    log.warning("Could not write the run report into the note of %s %s", dag_id, run_id)


def run_note(session, run) -> str | None:
    """The run's report as Markdown, from its ``report`` task's XCom; ``None`` when it has none."""
    from airflow.models.xcom import XComModel

    query = XComModel.get_many(
        run_id=run.run_id, key="return_value", dag_ids=run.dag_id, task_ids=REPORT_TASK_ID, limit=1
    )
    row = session.scalars(query).first()
    value = None if row is None else XComModel.deserialize_value(row)
    if not isinstance(value, dict) or "rows_in" not in value:
        return None
    from llm_batch.handoffs import RunReport
    from llm_batch.report import describe

    lines = describe(RunReport.from_xcom(value)).splitlines()
    note = "\n".join([f"**{lines[0]}**", "", *(f"- {line.strip()}" for line in lines[1:])])
    return note[:NOTE_MAX_CHARS]


class RunNotesPlugin(AirflowPlugin):
    name = "llm_batch_run_notes"
    listeners = [RunNotes()]
