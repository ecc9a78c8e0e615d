"""Every DAG file imports cleanly and fast, does no work at parse time, and has the expected shape."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]
DAG_FILES = sorted((PROJECT / "dags").glob("*.py"))


@pytest.fixture(scope="module")
def dagbag():
    from airflow.dag_processing.dagbag import DagBag

    return DagBag(dag_folder=str(PROJECT / "dags"))


def test_dag_files_import_without_errors(dagbag):
    assert dagbag.import_errors == {}
    assert {"review_sentiment", "review_embeddings"} <= set(dagbag.dag_ids)


@pytest.mark.parametrize("path", DAG_FILES, ids=lambda p: p.name)
def test_dag_file_parses_fast_without_touching_anything(path, tmp_path):
    """Parse in a fresh interpreter with no connections: a parse-time query or request would fail."""
    code = (
        "import sys, time; sys.path[:0] = [sys.argv[2], sys.argv[3]]; started = time.perf_counter();"
        "import runpy; runpy.run_path(sys.argv[1]); print(time.perf_counter() - started)"
    )
    env = {**os.environ, "AIRFLOW_HOME": str(tmp_path), "LLM_BATCH_STORAGE_URL": "s3://nowhere/never"}
    started = time.perf_counter()
    result = subprocess.run(
        [sys.executable, "-c", code, str(path), str(PROJECT), str(PROJECT / "plugins")],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert list(tmp_path.iterdir()) == [] or all(p.name in {"logs"} for p in tmp_path.iterdir())
    print(
        f"{path.name}: parsed in {float(result.stdout.split()[-1]):.2f} s ({time.perf_counter() - started:.2f} s with start-up)"
    )


def test_a_dag_file_reusing_another_files_job_holds_only_its_own_dag(tmp_path):
    """Importing a DAG file for its job must not make its DAG the importer's too: two files
    would then define one dag_id, and which one runs would be left to chance."""
    from airflow.dag_processing.dagbag import DagBag

    (tmp_path / "reused.py").write_text(
        "# An Airflow DAG file (the DAG bag reads only files that say so).\n"
        "import dataclasses\n"
        "from dags.review_sentiment import JOB\n"
        "from llm_batch.dag_factory import build_batch_dag\n"
        "dag = build_batch_dag(dataclasses.replace(JOB, name='reused_sentiment'))\n"
    )
    bag = DagBag(dag_folder=str(tmp_path))

    assert bag.import_errors == {}
    assert set(bag.dag_ids) == {"reused_sentiment"}


def test_the_standard_tasks_are_wired_for_every_round(dagbag):
    dag = dagbag.dags["review_sentiment"]
    ids = set(dag.task_ids)
    assert {"build", "load", "report"} <= ids
    for round_ in (1, 2, 3):
        assert {f"round_{round_}.submit", f"round_{round_}.wait", f"round_{round_}.collect"} <= ids
    assert "round_3.next_round" not in ids
    wait = dag.get_task("round_1.wait")
    assert wait.operator_class.__name__ == "ShardWaitSensor"  # a deferrable BatchSensor that may submit first
    for task_id in ("build", "round_1.submit", "round_1.collect", "load", "report"):
        assert dag.get_task(task_id).pool == "llm_warehouse"
    assert dag.params["dry_run"] is False and "row_limit" in dag.params
    assert dag.get_task("load").outlets
    # A manual run may name another batch connection (another vendor); the wait follows it.
    assert dag.params["batch_conn_id"] is None
    assert wait.partial_kwargs["conn_id"] == "{{ params.batch_conn_id or 'openai_default' }}"


def test_schedule_is_nightly_over_the_previous_day(dagbag):
    dag = dagbag.dags["review_sentiment"]
    assert type(dag.timetable).__name__ == "CronDataIntervalTimetable"
    assert dag.catchup is False


def test_the_plugin_manager_leaves_the_library_alone():
    """Airflow runs every file of the plugins folder under its bare name (``base``, ``responses``);
    the library is imported by the DAGs instead, so its modules never shadow real ones."""
    from airflow._shared.module_loading import find_path_from_directory

    scanned = [Path(p) for p in find_path_from_directory(PROJECT / "plugins", ".airflowignore")]
    assert not [p for p in scanned if "llm_batch" in p.parts]


def test_the_project_plugins_load_without_errors(tmp_path):
    """The plugin manager finds the plugins' entries alone (not their packages) and logs no error loading them."""
    from airflow._shared.module_loading import find_path_from_directory

    scanned = [Path(p) for p in find_path_from_directory(PROJECT / "plugins", ".airflowignore")]
    assert sorted(p.name for p in scanned if p.suffix == ".py") == [
        "batch_runs_page.py",
        "llm_batch_run_notes.py",
    ]
    code = (
        "import json, logging, sys; sys.path[:0] = [sys.argv[1], sys.argv[2]];"
        "errors = []; handler = logging.Handler(logging.ERROR); handler.emit = errors.append;"
        "logging.getLogger().addHandler(handler);"
        "from airflow import plugins_manager as pm; plugins, import_errors = pm._get_plugins();"
        "apps, _ = pm.get_fastapi_plugins(); views, _ = pm._get_ui_plugins();"
        "print(json.dumps({'errors': [r.getMessage() for r in errors], 'import_errors': import_errors,"
        "'apps': [a['url_prefix'] for a in apps], 'views': views}))"
    )
    env = {
        **os.environ,
        "AIRFLOW_HOME": str(tmp_path),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(PROJECT / "plugins"),
    }
    result = subprocess.run(
        [sys.executable, "-c", code, str(PROJECT), str(PROJECT / "plugins")],
        capture_output=True,
        text=True,
        env=env,
        timeout=180,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert loaded["errors"] == [] and loaded["import_errors"] == {}
    assert "/batch-runs" in loaded["apps"]
    (view,) = [v for v in loaded["views"] if v["url_route"] == "batch-runs"]
    assert view["href"] == "/batch-runs/" and view["destination"] == "nav"
