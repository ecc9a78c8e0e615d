"""A data directory from before the dialect, expired and cancelled columns opens with them added."""

from __future__ import annotations

import sqlite3

from local_batch_api.store import Store


def test_a_store_without_the_added_columns_gains_them(tmp_path):
    Store(tmp_path).close()
    with sqlite3.connect(tmp_path / "state.sqlite3") as db:
        db.execute(
            "INSERT INTO batches (id, endpoint, input_file_id, completion_window, status, created_at, "
            "expires_at, faults) VALUES ('batch_0123456789', '/v1/chat/completions', 'file-0123456789', "
            "'24h', 'completed', 1, 2, '{}')"
        )
        db.execute("ALTER TABLE batches DROP COLUMN dialect")
        db.execute("ALTER TABLE batches DROP COLUMN expired")
        db.execute("ALTER TABLE batches DROP COLUMN cancelled")

    store = Store(tmp_path)
    try:
        batch = store.get_batch("batch_0123456789", dialect="openai")
        assert (
            batch is not None and batch["dialect"] == "openai" and batch["expired"] == batch["cancelled"] == 0
        )
        assert store.get_batch("batch_0123456789", dialect="anthropic") is None
    finally:
        store.close()
