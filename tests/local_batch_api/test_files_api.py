"""The Files API, and bad input that must get OpenAI's error shape without harming state."""

from __future__ import annotations

import io

import httpx
import openai
import pytest

from tests.conftest import chat_line, jsonl, upload


def test_upload_retrieve_download_delete(client):
    content = jsonl([chat_line("a", "hello")])
    file = client.files.create(file=("in.jsonl", io.BytesIO(content)), purpose="batch")
    assert file.id.startswith("file-") and file.object == "file"
    assert file.bytes == len(content) and file.filename == "in.jsonl" and file.purpose == "batch"
    assert file.status == "processed"
    assert file.expires_at == file.created_at + 30 * 24 * 3600  # batch files expire after 30 days

    assert client.files.retrieve(file.id) == file
    assert client.files.content(file.id).content == content
    deleted = client.files.delete(file.id)
    assert deleted.id == file.id and deleted.deleted is True
    with pytest.raises(openai.NotFoundError) as caught:
        client.files.retrieve(file.id)
    assert caught.value.body == {
        "message": f"No such File object: {file.id}",
        "type": "invalid_request_error",
        "param": "id",
        "code": None,
    }


def test_expires_after_is_honoured(client):
    file = client.files.create(
        file=("in.jsonl", io.BytesIO(b"{}\n")),
        purpose="batch",
        expires_after={"anchor": "created_at", "seconds": 7200},
    )
    assert file.expires_at == file.created_at + 7200
    with pytest.raises(openai.BadRequestError):
        client.files.create(
            file=("in.jsonl", io.BytesIO(b"{}\n")),
            purpose="batch",
            expires_after={"anchor": "created_at", "seconds": 60},
        )


def test_list_files_paginates_and_filters(start_server):
    client = start_server().client()
    ids = [upload(client, [chat_line(str(i), "x")]).id for i in range(5)]
    client.files.create(file=("notes.txt", io.BytesIO(b"x")), purpose="user_data")
    page = client.files.list(purpose="batch", limit=2, order="asc")
    assert [f.id for f in page.data] == ids[:2] and page.has_more
    assert [f.id for f in client.files.list(purpose="batch", limit=2, order="asc")] == ids
    assert [f.id for f in client.files.list(purpose="batch")] == ids[::-1]
    with pytest.raises(openai.BadRequestError):
        client.files.list(limit=0)


def test_batch_uploads_must_be_jsonl_and_purpose_must_be_known(client):
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("input.csv", io.BytesIO(b"a,b\n")), purpose="batch")
    assert "Must be .jsonl" in caught.value.body["message"]
    with pytest.raises(openai.BadRequestError) as caught:
        client.files.create(file=("x.jsonl", io.BytesIO(b"{}")), purpose="nonsense")  # type: ignore[arg-type]
    assert caught.value.body["param"] == "purpose"


@pytest.mark.parametrize(
    "bad_id", ["..%2F..%2Fstate.sqlite3", "file-..", "file-abc%2F..%2F..", "%2Fetc%2Fpasswd", "x" * 300]
)
def test_path_like_and_unknown_ids_are_404(shared_server, bad_id):
    headers = {"authorization": f"Bearer {shared_server.api_key}"}
    for suffix in ("", "/content"):
        response = httpx.get(f"{shared_server.base_url}/files/{bad_id}{suffix}", headers=headers)
        assert response.status_code == 404
        assert set(response.json()["error"]) == {"message", "type", "param", "code"}


def test_oversized_upload_is_rejected_and_leaves_nothing_behind(start_server):
    server = start_server("--max-upload-bytes", "1000")
    client = server.client()
    with pytest.raises(openai.APIStatusError) as caught:
        client.files.create(file=("big.jsonl", io.BytesIO(b"x" * 5000)), purpose="batch")
    assert caught.value.status_code == 413
    assert caught.value.body["param"] == "file"
    assert list(client.files.list()) == []
    assert [p.name for p in (server.data_dir / "files").iterdir()] == []


@pytest.mark.parametrize(
    ("content_type", "body"),
    [
        ("application/json", b'{"file": "x"}'),
        ("multipart/form-data; boundary=zzz", b"--zzz\r\nnot a real part"),
        ("multipart/form-data; boundary=zzz", b"\x00\xff" * 100),
    ],
)
def test_malformed_uploads_get_a_400_in_openai_shape(shared_server, content_type, body):
    response = httpx.post(
        f"{shared_server.base_url}/files",
        content=body,
        headers={"authorization": f"Bearer {shared_server.api_key}", "content-type": content_type},
    )
    assert response.status_code == 400
    assert response.json()["error"]["type"] == "invalid_request_error"


def test_requests_without_the_api_key_get_401(shared_server):
    wrong = openai.OpenAI(base_url=shared_server.base_url, api_key="wrong", max_retries=0)
    with pytest.raises(openai.AuthenticationError) as caught:
        wrong.files.list()
    assert caught.value.body["code"] == "invalid_api_key"
    assert "wrong" not in caught.value.body["message"]
    assert httpx.get(f"{shared_server.base_url}/batches").status_code == 401


def test_unknown_routes_and_bad_json_bodies_use_the_error_shape(shared_server):
    headers = {"authorization": f"Bearer {shared_server.api_key}"}
    missing = httpx.get(f"{shared_server.base_url}/nothing-here", headers=headers)
    assert (
        missing.status_code == 404
        and missing.json()["error"]["message"] == "Invalid URL (GET /v1/nothing-here)"
    )
    for body in (b"{", b"[]", b"\xff\xfe", b"{" * 5000 + b"}" * 5000):
        response = httpx.post(f"{shared_server.base_url}/batches", content=body, headers=headers)
        assert response.status_code == 400, body[:10]
        assert response.json()["error"]["type"] == "invalid_request_error"
