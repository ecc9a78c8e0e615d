"""Fixtures of the S3 server the tests of run files on object storage use (``include.object_store``)."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest

from include.object_store import MotoServer, ObjectStore


@pytest.fixture(scope="session")
def object_store(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ObjectStore]:
    """One S3 server and bucket for the session; its connection is set for the whole session."""
    server = MotoServer(tmp_path_factory.mktemp("object_store") / "moto.log").start()
    store = ObjectStore(server.endpoint_url)
    try:
        store.client().create_bucket(Bucket=store.bucket)
        with pytest.MonkeyPatch.context() as patch:
            for name, value in store.connection_env().items():
                patch.setenv(name, value)
            yield store
    finally:
        server.stop()


@pytest.fixture
def s3_prefix(object_store: ObjectStore) -> str:
    """A prefix of the bucket no other test writes under."""
    return f"runs-{uuid.uuid4().hex[:12]}"
