"""A small client of Airflow's REST API (``/api/v2``), for the end-to-end tests and scripts."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx


class AirflowAPI:
    def __init__(
        self, base_url: str, username: str, password: str, on_poll: Callable[[], None] | None = None
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.on_poll = on_poll  # called at every poll of a wait; raise from it to stop waiting
        token = httpx.post(
            f"{self.base_url}/auth/token", json={"username": username, "password": password}, timeout=10
        )
        token.raise_for_status()
        self.client = httpx.Client(
            base_url=f"{self.base_url}/api/v2",
            headers={"Authorization": f"Bearer {token.json()['access_token']}"},
            timeout=30,
        )

    def get(self, path: str, **params: Any) -> httpx.Response:
        return self._while_database_busy(lambda: self.client.get(path, params=params or None))

    def post(self, path: str, body: dict[str, Any]) -> httpx.Response:
        return self._while_database_busy(lambda: self.client.post(path, json=body))

    @staticmethod
    def _while_database_busy(send: Callable[[], httpx.Response], tries: int = 10) -> httpx.Response:
        """On SQLite, the API answers 503, or 500 "Database error", while another process holds
        the database: ask again a little later."""
        for _ in range(tries - 1):
            response = send()
            busy = response.status_code == 503 or (
                response.status_code == 500 and "Database error" in response.text
            )
            if not busy:
                return response
            time.sleep(2)
        return send()

    def patch(self, path: str, body: dict[str, Any], **params: Any) -> httpx.Response:
        return self.client.patch(path, json=body, params=params or None)

    def json(self, response: httpx.Response) -> Any:
        if response.status_code >= 400:
            raise AssertionError(
                f"{response.request.method} {response.request.url}: {response.status_code} {response.text}"
            )
        return response.json()

    def unpause(self, dag_id: str) -> None:
        self.json(self.patch(f"/dags/{dag_id}", {"is_paused": False}))

    def trigger(
        self,
        dag_id: str,
        logical_date: str | None,
        conf: dict[str, Any] | None = None,
        run_id: str | None = None,
    ) -> dict:
        """Create a run. ``logical_date=None`` makes a run that no scheduled run can collide with."""
        body: dict[str, Any] = {"logical_date": logical_date, "conf": conf or {}}
        if run_id:
            body["dag_run_id"] = run_id
        response = self.post(f"/dags/{dag_id}/dagRuns", body)
        if response.status_code == 409 and run_id:  # an earlier try that answered busy made it
            return self.run(dag_id, run_id)
        return self.json(response)

    def run(self, dag_id: str, run_id: str) -> dict:
        return self.json(self.get(f"/dags/{dag_id}/dagRuns/{run_id}"))

    def wait_for_run(self, dag_id: str, run_id: str, timeout: float = 600) -> dict:
        deadline = time.monotonic() + timeout
        while True:
            if self.on_poll:
                self.on_poll()
            run = self.run(dag_id, run_id)
            if run["state"] in ("success", "failed"):
                return run
            if time.monotonic() > deadline:
                raise TimeoutError(f"{dag_id} {run_id} still {run['state']} after {timeout:.0f} s")
            time.sleep(2)

    def task_instances(self, dag_id: str, run_id: str) -> list[dict]:
        return self.json(self.get(f"/dags/{dag_id}/dagRuns/{run_id}/taskInstances", limit=1000))[
            "task_instances"
        ]
