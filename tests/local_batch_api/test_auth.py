"""With an API key set, nothing but the health check answers without it: not even the schema."""

from __future__ import annotations

import httpx
import pytest


@pytest.mark.parametrize("path", ["/openapi.json", "/docs", "/redoc", "/docs/oauth2-redirect", "/"])
def test_every_path_but_health_needs_the_key(shared_server, path):
    root = f"http://127.0.0.1:{shared_server.port}"
    response = httpx.get(root + path)
    assert response.status_code == 401, response.text[:200]
    assert response.json()["error"]["code"] == "invalid_api_key"
    assert httpx.get(f"{root}/_local/health").status_code == 200


def test_the_schema_is_served_with_the_key(shared_server):
    response = httpx.get(
        f"http://127.0.0.1:{shared_server.port}/openapi.json",
        headers={"authorization": f"Bearer {shared_server.api_key}"},
    )
    assert response.status_code == 200 and "/v1/batches" in response.json()["paths"]


def test_without_a_key_configured_the_schema_is_open(start_server):
    server = start_server(api_key="")
    assert httpx.get(f"http://127.0.0.1:{server.port}/openapi.json").status_code == 200
