"""Durable state: file and batch records in SQLite, file contents on disk.

SQLite in WAL mode survives a SIGKILL of the process; every state change is one committed
statement, so a restarted server sees exactly what the killed one had acknowledged.

A full disk must not lock the store: the store holds back a small reserve file, given up when
SQLite cannot write, and a delete frees a file's bytes before it changes the file's record.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson

from local_batch_api.faults import CrashPoint, CrashSwitch
from local_batch_api.ids import is_batch_id, is_file_id, is_message_batch_id

RESERVE_BYTES = 1024 * 1024  # room for a few SQLite transactions and a checkpoint
TERMINAL_STATUSES = frozenset({"completed", "failed", "expired", "cancelled"})
ACTIVE_STATUSES = frozenset({"validating", "in_progress", "finalizing", "cancelling"})

_SCHEMA = """
CREATE TABLE IF NOT EXISTS files (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    bytes INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    filename TEXT NOT NULL,
    purpose TEXT NOT NULL,
    expires_at INTEGER
);
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    -- Which API created the batch ('openai' or 'anthropic'): its routes see only their own.
    dialect TEXT NOT NULL DEFAULT 'openai',
    endpoint TEXT NOT NULL,
    input_file_id TEXT NOT NULL,
    completion_window TEXT NOT NULL,
    status TEXT NOT NULL,
    created_at REAL NOT NULL,
    expires_at REAL NOT NULL,
    model TEXT,
    errors TEXT,
    output_file_id TEXT,
    error_file_id TEXT,
    in_progress_at REAL,
    finalizing_at REAL,
    completed_at REAL,
    failed_at REAL,
    expired_at REAL,
    cancelling_at REAL,
    cancelled_at REAL,
    total INTEGER NOT NULL DEFAULT 0,
    completed INTEGER NOT NULL DEFAULT 0,
    failed INTEGER NOT NULL DEFAULT 0,
    expired INTEGER NOT NULL DEFAULT 0, -- of the failed, those the completion window cut off
    cancelled INTEGER NOT NULL DEFAULT 0, -- of the failed, those a cancel left unrun
    input_tokens INTEGER NOT NULL DEFAULT 0,
    output_tokens INTEGER NOT NULL DEFAULT 0,
    reasoning_tokens INTEGER NOT NULL DEFAULT 0,
    enqueued_tokens INTEGER NOT NULL DEFAULT 0,
    metadata TEXT,
    output_expires_after TEXT,
    faults TEXT NOT NULL,
    -- Progress checkpoint: the next input line and byte offset, and the committed sizes of
    -- the partial output and error files, so a restart resumes without loss or duplication.
    next_line INTEGER NOT NULL DEFAULT 0,
    next_offset INTEGER NOT NULL DEFAULT 0,
    output_bytes INTEGER NOT NULL DEFAULT 0,
    error_bytes INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS batches_status ON batches(status);
"""
# Columns added since the first release, for data directories created before them.
_ADDED_COLUMNS = {
    "dialect": "TEXT NOT NULL DEFAULT 'openai'",
    "expired": "INTEGER NOT NULL DEFAULT 0",
    "cancelled": "INTEGER NOT NULL DEFAULT 0",
}

_TIMESTAMPS = (
    "in_progress_at",
    "finalizing_at",
    "completed_at",
    "failed_at",
    "expired_at",
    "cancelling_at",
    "cancelled_at",
)


@dataclass(frozen=True)
class FileRecord:
    id: str
    bytes: int
    created_at: int
    filename: str
    purpose: str
    expires_at: int | None

    def to_api(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "status_details": None,
        }
        if self.expires_at is not None:
            body["expires_at"] = self.expires_at
        return body


class Store:
    """All reads and writes of durable state. Used from one thread (the server's event loop)."""

    def __init__(self, data_dir: Path, crash_at: CrashPoint | None = None) -> None:
        self.data_dir = data_dir
        self._crash = CrashSwitch(crash_at or CrashPoint())
        self.files_dir = data_dir / "files"
        self.work_dir = data_dir / "work"
        self.files_dir.mkdir(parents=True, exist_ok=True)
        self.work_dir.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(data_dir / "state.sqlite3", isolation_level=None, check_same_thread=False)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(_SCHEMA)
        present = {row["name"] for row in self._db.execute("PRAGMA table_info(batches)")}
        for name, definition in _ADDED_COLUMNS.items():
            if name not in present:
                self._db.execute(f"ALTER TABLE batches ADD COLUMN {name} {definition}")
        self._reserve = data_dir / "reserve"
        for tombstone in self.files_dir.glob("*.deleted"):  # deletes a crash interrupted
            self._db.execute("DELETE FROM files WHERE id = ?", (tombstone.stem,))
            tombstone.unlink()
        for partial in self.files_dir.glob("*.partial"):  # uploads a crash cut short, never acknowledged
            partial.unlink()
        for partial in self.work_dir.glob("*.partial"):  # Message Batch creates a crash cut short
            partial.unlink()
        self.keep_reserve()

    def close(self) -> None:
        self._db.close()

    # Files ------------------------------------------------------------------------------------

    def file_path(self, file_id: str) -> Path:
        if not is_file_id(file_id):  # never build a path from an unchecked id
            raise ValueError(f"not a file id: {file_id!r}")
        return self.files_dir / file_id

    def add_file(self, record: FileRecord) -> None:
        self._db.execute(
            "INSERT INTO files (id, bytes, created_at, filename, purpose, expires_at) VALUES (?, ?, ?, ?, ?, ?)",
            (record.id, record.bytes, record.created_at, record.filename, record.purpose, record.expires_at),
        )

    def get_file(self, file_id: str) -> FileRecord | None:
        if not is_file_id(file_id):
            return None
        row = self._db.execute(
            "SELECT id, bytes, created_at, filename, purpose, expires_at FROM files WHERE id = ?", (file_id,)
        ).fetchone()
        return FileRecord(**dict(row)) if row else None

    def delete_file(self, file_id: str) -> bool:
        """Free the file's bytes, then drop its record: so it works on a full disk, too.

        The file is first renamed to a tombstone (which takes no room), so a crash before the
        record is gone leaves a mark that the next start finishes the delete by.
        """
        path = self.file_path(file_id)
        tombstone = path.with_suffix(".deleted")
        if path.exists():
            os.replace(path, tombstone)
            fsync_dir(self.files_dir)
        if tombstone.exists():
            os.truncate(tombstone, 0)
        self._crash.reached("delete.freed")
        try:
            deleted = self._delete_record(file_id)
        except sqlite3.Error as exc:
            if not disk_full(exc) or not self._give_up_reserve():
                raise
            deleted = self._delete_record(file_id)
        tombstone.unlink(missing_ok=True)
        self.keep_reserve()
        return deleted

    def _delete_record(self, file_id: str) -> bool:
        return self._db.execute("DELETE FROM files WHERE id = ?", (file_id,)).rowcount > 0

    def keep_reserve(self) -> None:
        """Hold :data:`RESERVE_BYTES` back while the disk has room; a full disk just leaves none."""
        try:
            with self._reserve.open("ab") as handle:
                if os.fstat(handle.fileno()).st_size < RESERVE_BYTES:
                    os.posix_fallocate(handle.fileno(), 0, RESERVE_BYTES)
        except OSError as exc:
            if not disk_full(exc):
                raise
            self._reserve.unlink(missing_ok=True)  # a part of it would only mislead the next check

    def _give_up_reserve(self) -> bool:
        """Free the reserve for a change that must go through; whether there was one to free."""
        if not self._reserve.exists() or self._reserve.stat().st_size == 0:
            return False
        self._reserve.unlink()
        return True

    def list_files(
        self, *, purpose: str | None, after: str | None, limit: int, ascending: bool
    ) -> tuple[list[FileRecord], bool]:
        clauses, params = [], []
        if purpose:
            clauses.append("purpose = ?")
            params.append(purpose)
        if after:
            cursor = self._db.execute("SELECT seq FROM files WHERE id = ?", (after,)).fetchone()
            if cursor is not None:
                clauses.append("seq > ?" if ascending else "seq < ?")
                params.append(cursor["seq"])
        where = f"WHERE {' AND '.join(clauses)}" if clauses else ""
        order = "ASC" if ascending else "DESC"
        rows = self._db.execute(
            f"SELECT id, bytes, created_at, filename, purpose, expires_at FROM files {where} "
            f"ORDER BY seq {order} LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        return [FileRecord(**dict(r)) for r in rows[:limit]], len(rows) > limit

    # Batches ----------------------------------------------------------------------------------

    def work_paths(self, batch_id: str) -> tuple[Path, Path, Path]:
        """A batch's inline requests, and its partial output and error files, by their paths only."""
        if not (is_batch_id(batch_id) or is_message_batch_id(batch_id)):
            raise ValueError(f"not a batch id: {batch_id!r}")
        return tuple(self.work_dir / f"{batch_id}.{kind}.jsonl" for kind in ("input", "output", "error"))

    def add_batch(self, batch: dict[str, Any]) -> None:
        row = _encode(batch)
        names = ", ".join(row)
        marks = ", ".join("?" for _ in row)
        self._db.execute(f"INSERT INTO batches ({names}) VALUES ({marks})", tuple(row.values()))

    def get_batch(self, batch_id: str, *, dialect: str | None = None) -> dict[str, Any] | None:
        """The batch, if it exists (and, with ``dialect``, was created through that API)."""
        if not (is_batch_id(batch_id) or is_message_batch_id(batch_id)):
            return None
        row = self._db.execute("SELECT * FROM batches WHERE id = ?", (batch_id,)).fetchone()
        if row is None or (dialect is not None and row["dialect"] != dialect):
            return None
        return _decode(row)

    def delete_batch(self, batch_id: str) -> bool:
        return self._db.execute("DELETE FROM batches WHERE id = ?", (batch_id,)).rowcount > 0

    def update_batch(self, batch_id: str, *, only_if_status: str | None = None, **changes: Any) -> bool:
        """Apply changes in one statement; with ``only_if_status`` the change is a compare-and-set."""
        row = _encode(changes)
        sets = ", ".join(f"{k} = ?" for k in row)
        sql = f"UPDATE batches SET {sets} WHERE id = ?"
        params: list[Any] = [*row.values(), batch_id]
        if only_if_status is not None:
            sql += " AND status = ?"
            params.append(only_if_status)
        return self._db.execute(sql, params).rowcount > 0

    def list_batches(
        self, *, dialect: str, after: str | None, limit: int, before: str | None = None
    ) -> tuple[list[dict[str, Any]], bool]:
        """A page, newest first: older than ``after``, or the newest ones just newer than ``before``.

        ``has_more`` says whether more lie beyond the page in the direction of travel.
        """
        clauses, params = ["dialect = ?"], [dialect]
        newer = before is not None and after is None
        cursor_id = before if newer else after
        if cursor_id:
            cursor = self._db.execute("SELECT seq FROM batches WHERE id = ?", (cursor_id,)).fetchone()
            if cursor is not None:
                clauses.append("seq > ?" if newer else "seq < ?")
                params.append(cursor["seq"])
        rows = self._db.execute(
            f"SELECT * FROM batches WHERE {' AND '.join(clauses)} "
            f"ORDER BY seq {'ASC' if newer else 'DESC'} LIMIT ?",
            (*params, limit + 1),
        ).fetchall()
        page = [_decode(r) for r in rows[:limit]]
        return (page[::-1] if newer else page), len(rows) > limit

    def active_batch_ids(self) -> list[str]:
        marks = ", ".join("?" for _ in ACTIVE_STATUSES)
        rows = self._db.execute(
            f"SELECT id FROM batches WHERE status IN ({marks}) ORDER BY seq", tuple(ACTIVE_STATUSES)
        ).fetchall()
        return [r["id"] for r in rows]

    def enqueued_tokens(self, model: str, excluding: str) -> int:
        row = self._db.execute(
            "SELECT COALESCE(SUM(enqueued_tokens), 0) AS n FROM batches "
            "WHERE model = ? AND id != ? AND status IN ('in_progress', 'finalizing')",
            (model, excluding),
        ).fetchone()
        return int(row["n"])


def batch_to_api(batch: dict[str, Any]) -> dict[str, Any]:
    """The Batch object as the service returns it (timestamps as whole seconds)."""

    def ts(name: str) -> int | None:
        value = batch.get(name)
        return None if value is None else int(value)

    input_tokens, output_tokens = batch["input_tokens"], batch["output_tokens"]
    return {
        "id": batch["id"],
        "object": "batch",
        "endpoint": batch["endpoint"],
        "model": batch["model"],
        "errors": batch["errors"],
        "input_file_id": batch["input_file_id"],
        "completion_window": batch["completion_window"],
        "status": batch["status"],
        "output_file_id": batch["output_file_id"],
        "error_file_id": batch["error_file_id"],
        "created_at": int(batch["created_at"]),
        "expires_at": ts("expires_at"),
        **{name: ts(name) for name in _TIMESTAMPS},
        "request_counts": {
            "total": batch["total"],
            "completed": batch["completed"],
            # Requests that ran and failed: expired and cancelled ones are total - completed -
            # failed, as the service reports them (each has its batch_expired or batch_cancelled
            # line in the error file all the same).
            "failed": batch["failed"] - batch["expired"] - batch["cancelled"],
        },
        "usage": {
            "input_tokens": input_tokens,
            "input_tokens_details": {"cached_tokens": 0},
            "output_tokens": output_tokens,
            "output_tokens_details": {"reasoning_tokens": batch["reasoning_tokens"]},
            "total_tokens": input_tokens + output_tokens,
        },
        "metadata": batch["metadata"],
    }


_JSON_COLUMNS = ("errors", "metadata", "output_expires_after", "faults")


def _encode(values: dict[str, Any]) -> dict[str, Any]:
    return {
        k: (orjson.dumps(v).decode() if k in _JSON_COLUMNS and v is not None else v)
        for k, v in values.items()
    }


def _decode(row: sqlite3.Row) -> dict[str, Any]:
    batch = dict(row)
    for k in _JSON_COLUMNS:
        if batch[k] is not None:
            batch[k] = orjson.loads(batch[k])
    return batch


def now() -> float:
    return time.time()


def disk_full(exc: BaseException) -> bool:
    """Whether an error is the disk (or quota) running out, from a file write or from SQLite."""
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    return isinstance(exc, sqlite3.Error) and getattr(exc, "sqlite_errorcode", None) == sqlite3.SQLITE_FULL


def fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
