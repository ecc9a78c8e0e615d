"""``make report`` prints the last runs and the batches in flight from a warehouse the library wrote."""

from __future__ import annotations

import datetime as dt

from include.batch_runs_report import main
from include.sample_data.run_history import PastRun, write_in_flight, write_run
from llm_batch.warehouse import duckdb_warehouse
from tests.llm_batch.jobs import sentiment_job

JOB = sentiment_job()


def test_the_report_lists_each_run_its_money_and_the_batches_in_flight(tmp_path, capsys):
    path = tmp_path / "warehouse.duckdb"
    now = dt.datetime.now(dt.UTC).replace(tzinfo=None)
    with duckdb_warehouse(path) as warehouse:
        written = [
            write_run(
                warehouse,
                tmp_path / "files",
                JOB,
                PastRun(
                    day=(now - dt.timedelta(days=n)).date(),
                    run_id=f"manual__report_{n}",
                    reported_at=now - dt.timedelta(days=n, hours=-1),
                    shard_results=(25 + n,),
                    failure_reasons={"server_error": n},
                ),
            ).report
            for n in (1, 2)
        ]
        batch_id = write_in_flight(
            warehouse, JOB, run_id="manual__waiting", day=now.date(), shard=0, requests=40,
            submitted_at=now - dt.timedelta(hours=3),
        )  # fmt: skip

    capsys.readouterr()  # the seeding's log
    assert main(["--warehouse", str(path)]) == 0
    printed = capsys.readouterr().out
    jobs_part = printed.split("Last ")[0]

    results = sum(r.results for r in written)
    saved = sum(r.sync_cost_usd - r.cost_usd for r in written)
    (job_line,) = [line for line in jobs_part.splitlines() if line.strip().startswith(JOB.name + " ")]
    assert job_line.split()[1:5] == ["2", f"{sum(r.rows_in for r in written):,}", f"{results:,}", "3"]
    assert job_line.split()[-1] == f"{saved:.4f}"
    assert "server_error 3" in printed
    assert printed.index("manual__report_1") < printed.index("manual__report_2")  # newest first
    assert batch_id in printed and "3.0 h of 24 h" in printed


def test_without_a_warehouse_the_report_says_what_to_do(tmp_path, capsys):
    assert main(["--root", str(tmp_path)]) == 1
    assert "make up" in capsys.readouterr().out
    assert not (tmp_path / "warehouse.duckdb").exists()
