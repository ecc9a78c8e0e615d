"""The Batch runs page: a static page and the JSON it draws, read from the warehouse in one short read each.

``/`` is the page; ``/api/overview`` the runs and money per job over time, ``/api/inflight`` the
batches the ledger has not seen finish (with live progress from the provider), ``/api/run`` one
run's shards, batches, rounds, tokens, cost, sample results and failures by reason.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import orjson
from fastapi import FastAPI, HTTPException, Query
from fastapi.params import Depends
from fastapi.responses import FileResponse, Response
from fastapi.staticfiles import StaticFiles

from batch_runs_ui import queries
from batch_runs_ui.live import BatchProgress
from batch_runs_ui.reading import NoWarehouseYet, WarehouseBusy, WarehouseOpener, read_briefly

STATIC = Path(__file__).resolve().parent / "static"
BATCH_WINDOW = dt.timedelta(hours=24)
# A submission left unfinished longer than the window and the time to land it was abandoned.
IN_FLIGHT_HORIZON = dt.timedelta(hours=27)
LIVE_LOOKUPS = 50  # batches asked of the provider per request; the rest show the ledger's view


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)


def create_app(
    open_warehouse: WarehouseOpener,
    *,
    batch_progress: BatchProgress | None = None,
    dependencies: Sequence[Depends] = (),
    clock: Callable[[], dt.datetime] = utcnow,
) -> FastAPI:
    """The page's app. ``dependencies`` guard every JSON endpoint (Airflow's login, in the plugin)."""
    app = FastAPI(title="Batch runs", dependencies=list(dependencies))
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    def read(reads: Callable[[Any], Any], empty: Any) -> Any:
        try:
            return read_briefly(open_warehouse, reads)
        except NoWarehouseYet:
            return empty
        except WarehouseBusy as exc:
            raise HTTPException(status_code=503, detail=str(exc), headers={"Retry-After": "2"}) from exc

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", headers={"Cache-Control": "no-cache"})

    @app.get("/api/overview")
    def overview(days: int = Query(90, ge=1, le=3660), limit: int = Query(100, ge=1, le=5000)) -> Response:
        since = clock() - dt.timedelta(days=days)
        read_runs = read(lambda wh: queries.runs_since(wh, queries.existing_tables(wh), since), None)
        runs = queries.run_rows(read_runs) if read_runs is not None else []  # read after the file is closed
        return _json(
            {
                "since": since,
                "run_count": len(runs),
                "jobs": queries.jobs_over_time(runs),
                "runs": runs[:limit],
            }
        )

    @app.get("/api/inflight")
    def inflight() -> Response:
        now = clock()
        rows = read(
            lambda wh: queries.batches_in_flight(wh, queries.existing_tables(wh), now - IN_FLIGHT_HORIZON), []
        )
        # After the warehouse is closed: the provider may take a moment to answer.
        asked = [r["batch_id"] for r in rows if r["batch_id"]][:LIVE_LOOKUPS]
        live = batch_progress(asked) if batch_progress else {}
        return _json(
            {"now": now, "batches": [_in_flight(row, live.get(row["batch_id"]), now) for row in rows]}
        )

    @app.get("/api/run")
    def run(job: str, run_id: str, sample: int = Query(10, ge=0, le=100)) -> Response:
        def reads(wh: Any) -> dict[str, Any]:
            tables = queries.existing_tables(wh)
            reports = queries.run_reports(wh, tables, job, run_id)
            batches = queries.run_batches(wh, tables, job, run_id)
            batch_ids = sorted({b["batch_id"] for b in batches if b["batch_id"]})
            windows = [w for w in map(queries.window_of, {b["interval_label"] for b in batches}) if w] or [
                w for w in (queries.window_of(r["window"]) for r in reports) if w
            ]
            window = (min(w[0] for w in windows), max(w[1] for w in windows)) if windows else None
            return {
                "reports": reports,
                "batches": batches,
                "results_sample": queries.sample_results(wh, batch_ids, sample),
                "failures": queries.failures_by_reason(wh, tables, job, batch_ids, window),
            }

        found = read(reads, None)
        if not found or not (found["reports"] or found["batches"]):
            raise HTTPException(status_code=404, detail=f"no run {run_id!r} of job {job!r} in the warehouse")
        batches = found["batches"]
        return _json(
            {
                "job": job,
                "run_id": run_id,
                "dag_run_path": _dag_run_path(job, run_id),
                "shards": len({(b["interval_label"], b["shard"]) for b in batches if b["attempt"] == 1}),
                "batch_count": len({b["batch_id"] for b in batches if b["batch_id"]}),
                "rounds": max((b["attempt"] for b in batches), default=0),
                **found,
            }
        )

    return app


def _in_flight(row: dict[str, Any], live: dict[str, Any] | None, now: dt.datetime) -> dict[str, Any]:
    started = row["submitted_at"] or row["intent_at"]
    age = (now - started).total_seconds()
    return {
        **row,
        "live": live is not None,
        "status": live["status"] if live else row["status"],
        "completed": live["completed"] if live else row["completed"] or 0,
        "failed": live["failed"] if live else row["failed"] or 0,
        "total": (live["total"] if live else 0) or row["requests"],
        "age_seconds": round(age),
        "window_share": round(age / BATCH_WINDOW.total_seconds(), 4),
        "dag_run_path": _dag_run_path(row["job"], row["run_id"]),
        "task_path": _dag_run_path(row["job"], row["run_id"], f"tasks/round_{row['attempt']}.wait/mapped"),
    }


def _dag_run_path(job: str, run_id: str | None, rest: str = "") -> str | None:
    """Where Airflow's UI shows the run (the DAG id is the job's name), relative to the UI's root."""
    from urllib.parse import quote

    if not run_id:
        return None
    path = f"dags/{quote(job, safe='')}/runs/{quote(run_id, safe='')}"
    return f"{path}/{rest}" if rest else path


def _json(payload: dict[str, Any]) -> Response:
    # orjson writes dates and datetimes itself, many times faster than jsonable_encoder.
    body = orjson.dumps(payload, default=str, option=orjson.OPT_NON_STR_KEYS)
    return Response(body, media_type="application/json", headers={"Cache-Control": "no-store"})
