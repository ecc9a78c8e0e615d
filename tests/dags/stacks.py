"""The sentiment DAG's stack for whole runs under ``airflow dags test``: a local server, a
warehouse and a metadata database of its own, on the connection of one vendor."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pyarrow.compute as pc

from include.local_airflow import LocalAirflow
from include.sample_data.reviews import generate_reviews
from tests.llm_batch.vendors import MODELS, batch_ids_on

DAY = dt.date(2026, 11, 24)
LOGICAL_DATE = (DAY + dt.timedelta(days=1)).isoformat()  # the run for a day is dated the day after
SOURCE = generate_reviews(DAY - dt.timedelta(days=2), 3, per_day=(40, 40))


class Stack:
    def __init__(self, server, airflow: LocalAirflow) -> None:
        self.server = server
        self.airflow = airflow

    @property
    def vendor(self) -> str:
        return self.airflow.provider

    @property
    def model(self) -> str:
        return MODELS[self.vendor]

    def run(self, conf: dict | None = None, logical_date: str = LOGICAL_DATE) -> subprocess.CompletedProcess:
        return self.airflow.dags_test("review_sentiment", logical_date, conf, check=False)

    def start_run(self, log: Path, conf: dict | None = None) -> subprocess.Popen:
        """The run in the background, its output into ``log``: for tests that act while it waits."""
        command = [
            str(Path(sys.executable).parent / "airflow"),
            "dags",
            "test",
            "review_sentiment",
            LOGICAL_DATE,
        ]
        if conf:
            command += ["--conf", json.dumps(conf)]
        with log.open("w") as output:
            return subprocess.Popen(command, env=self.airflow.env(), stdout=output, stderr=subprocess.STDOUT)

    def query(self, sql: str, *params) -> list[tuple]:
        with duckdb.connect(str(self.airflow.warehouse_db), read_only=True) as db:
            return db.execute(sql, list(params)).fetchall()

    def batches(self) -> list:
        return list(self.server.client().batches.list(limit=100))

    def batch_ids(self) -> list[str]:
        """Every batch the vendor's API lists, newest first."""
        return batch_ids_on(self.vendor, self.server)

    def expected_rows(self, day: dt.date = DAY) -> set[str]:
        """Keys that can be answered: non-blank text, duplicates collapsed."""
        rows = SOURCE.filter(pc.equal(SOURCE["review_date"], day)).to_pylist()
        return {r["review_id"] for r in rows if r["review_text"] and r["review_text"].strip()}


def assert_succeeded(result: subprocess.CompletedProcess) -> None:
    """The run succeeded; if not, the message starts with its error lines, then the output's end."""
    output = (result.stdout or "") + (result.stderr or "")
    errors = [line for line in output.splitlines() if "[error" in line or "Error" in line][:40]
    assert result.returncode == 0, "\n".join(errors) + "\n...\n" + output[-3000:]


def landed(stack: Stack, day: dt.date = DAY) -> list[tuple]:
    return stack.query(
        "SELECT review_id, label, confidence, reason, request_fingerprint, batch_id FROM review_sentiment "
        "WHERE review_date = ? ORDER BY review_id",
        day,
    )
