"""Airflow plugin: the "Batch runs" page in the UI's navigation, served by the api-server.

The page's code lives in ``batch_runs_ui`` (left out of the plugin scan by ``.airflowignore``);
this file only mounts its app under ``/batch-runs`` and adds the page to the nav. Its JSON asks
for the same login as the rest of the UI, and reads the ``llm_warehouse`` connection read-only.
"""

from __future__ import annotations

import os

from airflow.plugins_manager import AirflowPlugin

URL_PREFIX = "/batch-runs"
WAREHOUSE_CONN_ID = os.environ.get("LLM_BATCH_WAREHOUSE_CONN_ID", "llm_warehouse")
OPENAI_CONN_ID = os.environ.get("LLM_BATCH_OPENAI_CONN_ID", "openai_default")


def _app():
    from airflow.api_fastapi.core_api.security import requires_access_dag
    from fastapi import Depends

    from batch_runs_ui.app import create_app
    from batch_runs_ui.live import provider_progress
    from batch_runs_ui.reading import PATIENCE_SECONDS
    from llm_batch.backends.openai_backend import OpenAIBatchBackend
    from llm_batch.warehouse import warehouse_for_conn_id

    return create_app(
        lambda: warehouse_for_conn_id(WAREHOUSE_CONN_ID, read_only=True, lock_wait_seconds=PATIENCE_SECONDS),
        batch_progress=provider_progress(lambda: OpenAIBatchBackend(OPENAI_CONN_ID)),
        dependencies=[Depends(requires_access_dag(method="GET"))],
    )


class BatchRunsPagePlugin(AirflowPlugin):
    name = "batch_runs_page"
    fastapi_apps = [{"app": _app(), "url_prefix": URL_PREFIX, "name": "Batch runs"}]
    external_views = [
        {
            "name": "Batch runs",
            "href": f"{URL_PREFIX}/",
            "url_route": "batch-runs",
            "icon": f"{URL_PREFIX}/static/icon.svg",
            "destination": "nav",
            "nav_top_level": True,
        }
    ]
