"""Drives each batch through its lifecycle, resumably.

One asyncio task per active batch. Every step ends in one committed store update, and the
partial output and error files are truncated back to their committed sizes on resume, so a
server killed at any instant continues each batch without losing or repeating a request.
Bytes are synced before the store records them, and a published file is synced, renamed and
its directory synced before its record exists. A full disk pauses a batch until it can write.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson

from local_batch_api.dialects import DIALECTS, engine_url
from local_batch_api.engines import Engine, EngineReply, error_body
from local_batch_api.faults import CrashSwitch, Faults
from local_batch_api.settings import Settings
from local_batch_api.store import TERMINAL_STATUSES, FileRecord, Store, disk_full, fsync_dir, now
from local_batch_api.validation import batch_error, validate_input_file

log = logging.getLogger(__name__)

EXPIRED_ERROR = {
    "code": "batch_expired",
    "message": "This request could not be executed before the completion window expired.",
}
CANCELLED_ERROR = {
    "code": "batch_cancelled",
    "message": "This request was not executed because the batch was cancelled.",
}
_FAULT_ERRORS = {
    429: ("Rate limit reached for requests.", "requests", "rate_limit_exceeded"),
    400: ("The request was rejected (injected fault).", "invalid_request_error", None),
}


class BatchProcessor:
    def __init__(self, store: Store, settings: Settings, engine: Engine) -> None:
        self.store = store
        self.settings = settings
        self.engine = engine
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._wake: dict[str, asyncio.Event] = {}
        self._crash = CrashSwitch(settings.crash_at)

    async def start(self) -> None:
        """Resume every batch that was active when the server last stopped."""
        for batch_id in self.store.active_batch_ids():
            self.launch(batch_id)

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)

    def launch(self, batch_id: str) -> None:
        if batch_id in self._tasks:
            return
        self._wake[batch_id] = asyncio.Event()
        task = asyncio.create_task(self._run(batch_id), name=f"batch {batch_id}")
        self._tasks[batch_id] = task
        task.add_done_callback(lambda done: self._ended(batch_id, done))

    def _ended(self, batch_id: str, task: asyncio.Task[None]) -> None:
        self._tasks.pop(batch_id, None)
        self._wake.pop(batch_id, None)
        if not task.cancelled() and task.exception() is not None:  # said once, with its cause
            log.error(
                "batch %s stopped: it resumes when the server restarts", batch_id, exc_info=task.exception()
            )

    def notify(self, batch_id: str) -> None:
        """Wake the batch's task early, e.g. after a cancel request."""
        event = self._wake.get(batch_id)
        if event is not None:
            event.set()

    async def wait_idle(self) -> None:
        """Wait until no batch is being processed (used by tests and the demo)."""
        while self._tasks:
            await asyncio.gather(*list(self._tasks.values()), return_exceptions=True)

    # Lifecycle --------------------------------------------------------------------------------

    async def _run(self, batch_id: str) -> None:
        steps = {
            "validating": self._validate,
            "in_progress": self._process,
            "finalizing": self._finalize,
            "cancelling": self._cancel,
        }
        paused = False
        while True:
            try:
                batch = self.store.get_batch(batch_id)
                if batch is None or batch["status"] in TERMINAL_STATUSES:
                    return
                await steps[batch["status"]](batch)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                if not disk_full(exc):
                    log.exception("batch %s failed unexpectedly", batch_id)
                    await self._mark_failed(batch_id)
                    return
                if not paused:  # every step resumes from its last record: trying again is safe
                    log.warning("batch %s paused: the disk is full (%s); trying again", batch_id, exc)
                paused = True
                await self._nap(batch_id, now() + self.settings.disk_full_retry_seconds)
                continue
            if paused:
                log.warning("batch %s resumed: the disk has room again", batch_id)
                paused = False

    async def _mark_failed(self, batch_id: str) -> None:
        """Record the failure; on a full disk, once there is room, rather than never."""
        errors = _errors([batch_error("server_error", "The server failed to process this batch.")])
        while True:
            try:
                self.store.update_batch(batch_id, status="failed", failed_at=now(), errors=errors)
                return
            except Exception as exc:
                if not disk_full(exc):
                    raise
            await self._nap(batch_id, now() + self.settings.disk_full_retry_seconds)

    async def _nap(self, batch_id: str, until: float) -> None:
        """Sleep until a moment, or until woken by :meth:`notify`."""
        delay = until - now()
        event = self._wake[batch_id]
        if delay > 0:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(event.wait(), timeout=delay)
        event.clear()

    async def _validate(self, batch: dict[str, Any]) -> None:
        batch_id = batch["id"]
        await self._nap(batch_id, batch["created_at"] + self.settings.validating_seconds)
        faults = Faults(**batch["faults"])
        file = self.store.get_file(batch["input_file_id"])
        path = self.store.file_path(file.id) if file else None
        if path is None or not path.exists():
            self._fail(
                batch,
                batch_error(
                    "invalid_request",
                    f"Cannot find file {batch['input_file_id']}, or organization does not have access to it.",
                    param="file_id",
                ),
            )
            return
        if faults.fail_validation:
            self._fail(batch, batch_error("invalid_request", "The batch failed validation (injected fault)."))
            return
        result = await asyncio.to_thread(
            validate_input_file,
            path,
            batch["endpoint"],
            max_requests=self.settings.max_batch_requests,
            max_bytes=self.settings.max_batch_bytes,
        )
        if result.errors:
            self._fail(batch, *result.errors)
            return
        model = result.model or "text-moderation-latest"
        limit = self.settings.enqueued_token_limit
        over_limit = (
            limit is not None and self.store.enqueued_tokens(model, batch_id) + result.enqueued_tokens > limit
        )
        if faults.token_limit_exceeded or over_limit:
            shown = limit if limit is not None else result.enqueued_tokens
            self._fail(
                batch,
                batch_error(
                    "token_limit_exceeded",
                    f"Enqueued token limit reached for {model} in organization org-local. "
                    f"Limit: {shown:,} enqueued tokens. "
                    "Please try again once some in_progress batches have been completed.",
                ),
            )
            return
        self.store.update_batch(
            batch_id,
            only_if_status="validating",
            status="in_progress",
            in_progress_at=now(),
            total=result.total,
            model=model,
            enqueued_tokens=result.enqueued_tokens,
        )

    def _fail(self, batch: dict[str, Any], *errors: dict[str, Any]) -> None:
        self.store.update_batch(
            batch["id"],
            only_if_status="validating",
            status="failed",
            failed_at=now(),
            errors=_errors(list(errors)),
        )

    async def _process(self, batch: dict[str, Any]) -> None:
        batch_id = batch["id"]
        faults = Faults(**batch["faults"])
        if _expiry_due(batch, faults):  # before opening anything: publishing may be under way
            self._expire(batch)
            return
        output, errors = self._partials(batch)
        input_path = self._input_path(batch)
        state = {k: batch[k] for k in ("next_line", "next_offset", "completed", "failed")}
        state |= {k: batch[k] for k in ("input_tokens", "output_tokens", "reasoning_tokens")}
        with (
            input_path.open("rb") as source,
            _resumed(output, batch["output_bytes"]) as out,
            _resumed(errors, batch["error_bytes"]) as err,
        ):
            source.seek(batch["next_offset"])
            while True:
                current = self.store.get_batch(batch_id)
                if current is None or current["status"] != "in_progress":
                    return
                if _expiry_due(current, faults):
                    break
                if state["next_line"] >= current["total"]:
                    self.store.update_batch(
                        batch_id, only_if_status="in_progress", status="finalizing", finalizing_at=now()
                    )
                    return
                lines = _read_requests(source, self._chunk_size(faults, state["next_line"], current["total"]))
                if self.settings.request_seconds > 0:
                    await self._nap(batch_id, now() + self.settings.request_seconds * len(lines))
                    if self.store.get_batch(batch_id)["status"] != "in_progress":
                        return  # cancelled while these requests were "running": they did not finish
                replies = await self._answer(engine_url(batch["endpoint"]), lines, faults)
                _write_replies(batch_id, lines, replies, out, err, state)
                self._crash.reached("chunk.written")
                state["next_line"] += len(lines)
                state["next_offset"] = source.tell()
                self.store.update_batch(batch_id, output_bytes=out.tell(), error_bytes=err.tell(), **state)
                self._crash.reached("chunk.recorded")
        self._expire(self.store.get_batch(batch_id))

    def _chunk_size(self, faults: Faults, done: int, total: int) -> int:
        size = self.settings.chunk_requests
        if self.settings.request_seconds > 0:  # keep each simulated pause short, so cancel is prompt
            size = min(size, max(1, int(0.2 / self.settings.request_seconds)))
        if faults.expire_after_share is not None:
            threshold = int(faults.expire_after_share * total)
            if done < threshold:
                size = min(size, threshold - done)
        return size

    async def _answer(
        self, url: str, lines: list[tuple[str, dict[str, Any]]], faults: Faults
    ) -> list[EngineReply]:
        replies: list[EngineReply | None] = [None] * len(lines)
        to_engine = []
        for i, (custom_id, _) in enumerate(lines):
            if faults.line_fails(custom_id):
                replies[i] = _fault_reply(faults.line_failure_status)
            else:
                to_engine.append(i)
        if to_engine:
            answered = await self.engine.answer_many(url, [lines[i][1] for i in to_engine])
            for i, reply in zip(to_engine, answered, strict=True):
                replies[i] = reply
        return replies  # type: ignore[return-value]

    def _expire(self, batch: dict[str, Any]) -> None:
        """Finished responses stay; every unfinished request gets a ``batch_expired`` error line."""
        batch = self._close_unrun(batch, EXPIRED_ERROR, "expired")
        files = self._publish(batch)
        self.store.update_batch(
            batch["id"], only_if_status="in_progress", status="expired", expired_at=now(), **files
        )

    def _close_unrun(self, batch: dict[str, Any], error: dict[str, str], counter: str) -> dict[str, Any]:
        """Give every request not yet run an error line with ``error``, counted in ``counter``.

        They count among ``failed`` in the store and are told apart by ``counter`` (``expired``,
        ``cancelled``): the API's ``failed`` counts only requests that ran. The lines and the
        progress past them are recorded together before publishing, so a restart at any point of
        this writes none of them twice.
        """
        if batch["next_line"] >= batch["total"]:
            return batch
        _, errors = self._partials(batch)
        input_path = self._input_path(batch)
        failed, lines_read, unrun = batch["failed"], batch["next_line"], batch[counter]
        with input_path.open("rb") as source, _resumed(errors, batch["error_bytes"]) as err:
            source.seek(batch["next_offset"])
            while lines := _read_requests(source, 10_000):
                err.write(b"".join(_line(batch["id"], c, None, error) for c, _ in lines))
                failed += len(lines)
                unrun += len(lines)
                lines_read += len(lines)
            _sync(err)
            self._crash.reached("unrun.written")
            self.store.update_batch(
                batch["id"],
                error_bytes=err.tell(),
                next_line=lines_read,
                next_offset=source.tell(),
                failed=failed,
                **{counter: unrun},
            )
        self._crash.reached("unrun.recorded")
        return self.store.get_batch(batch["id"])

    async def _finalize(self, batch: dict[str, Any]) -> None:
        faults = Faults(**batch["faults"])
        until = batch["finalizing_at"] + self.settings.finalizing_seconds + faults.stall_finalizing_seconds
        await self._nap(batch["id"], until)
        batch = self.store.get_batch(batch["id"])
        if batch["status"] != "finalizing":
            return
        files = self._publish(batch)
        self.store.update_batch(
            batch["id"], only_if_status="finalizing", status="completed", completed_at=now(), **files
        )

    async def _cancel(self, batch: dict[str, Any]) -> None:
        """Finished responses stay; every request not run gets a ``batch_cancelled`` error line.

        A batch cancelled while ``validating`` never read its input: it ends with ``total`` 0
        and no files, and its requests are accounted for by the client, from its own input.
        """
        await self._nap(batch["id"], batch["cancelling_at"] + self.settings.cancelling_seconds)
        batch = self._close_unrun(batch, CANCELLED_ERROR, "cancelled")
        files = self._publish(batch)
        self.store.update_batch(
            batch["id"], only_if_status="cancelling", status="cancelled", cancelled_at=now(), **files
        )

    # Files ------------------------------------------------------------------------------------

    def _partials(self, batch: dict[str, Any]) -> tuple[Path, Path]:
        """Paths only: creating one here would stand an empty file in for a published one."""
        _, output, errors = self.store.work_paths(batch["id"])
        return output, errors

    def _input_path(self, batch: dict[str, Any]) -> Path:
        if DIALECTS[batch["dialect"]].inline_requests:
            return self.store.work_paths(batch["id"])[0]
        return self.store.file_path(batch["input_file_id"])

    def _publish(self, batch: dict[str, Any]) -> dict[str, str | None]:
        """Turn the partial files into output files; a restart at any step carries on from it.

        Each file goes: cut to its recorded size and synced, renamed into place, directory
        synced, recorded. A file in place without a record was renamed whole; a record means
        done. A partial shorter than its recorded size is a loss, reported, never padded.
        """
        if DIALECTS[batch["dialect"]].inline_requests:
            return {}  # served from the work files, cut to their recorded sizes, by the batch's route
        ids: dict[str, str | None] = {}
        committed = {"output": batch["output_bytes"], "error": batch["error_bytes"]}
        for kind, partial in zip(("output", "error"), self._partials(batch), strict=True):
            file_id = "file-" + hashlib.blake2b(f"{batch['id']}:{kind}".encode(), digest_size=12).hexdigest()
            size = committed[kind]
            ids[f"{kind}_file_id"] = file_id if size else None
            if size and self.store.get_file(file_id) is None:
                target = self.store.file_path(file_id)
                if not target.exists():
                    with _resumed(partial, size) as handle:
                        _sync(handle)
                    self._crash.reached("publish.synced")
                    os.replace(partial, target)
                    self._crash.reached("publish.renamed")
                if target.stat().st_size != size:
                    raise LostOutput(f"{target.name} has {target.stat().st_size} bytes, {size} recorded")
                fsync_dir(target.parent)
                self._crash.reached("publish.dir_synced")
                self.store.add_file(self._output_record(batch, file_id, kind, size))
                self._crash.reached("publish.recorded")
            partial.unlink(missing_ok=True)
        return ids

    @staticmethod
    def _output_record(batch: dict[str, Any], file_id: str, kind: str, size: int) -> FileRecord:
        created = int(now())
        expires = batch.get("output_expires_after") or {}
        return FileRecord(
            id=file_id,
            bytes=size,
            created_at=created,
            filename=f"{batch['id']}_{kind}.jsonl",
            purpose="batch_output",
            expires_at=created + int(expires["seconds"]) if expires.get("seconds") else None,
        )


class LostOutput(RuntimeError):
    """A partial file holds less than its recorded size: never publish it padded."""


@contextlib.contextmanager
def _resumed(path: Path, committed: int) -> Iterator[BinaryIO]:
    """The partial file opened for writing at its recorded size, bytes past it dropped."""
    if committed == 0:
        path.touch(exist_ok=True)
    elif not path.exists():
        raise LostOutput(f"{path.name} is missing, {committed} bytes recorded")
    with path.open("r+b") as handle:
        size = handle.seek(0, os.SEEK_END)
        if size < committed:
            raise LostOutput(f"{path.name} has {size} bytes, {committed} recorded")
        handle.truncate(committed)
        handle.seek(committed)
        yield handle


def _sync(handle: BinaryIO) -> None:
    handle.flush()
    os.fsync(handle.fileno())


def _expiry_due(batch: dict[str, Any], faults: Faults) -> bool:
    return now() >= batch["expires_at"] or _share_reached(faults, batch["next_line"], batch["total"])


def _errors(data: list[dict[str, Any]]) -> dict[str, Any]:
    return {"object": "list", "data": data}


def _share_reached(faults: Faults, done: int, total: int) -> bool:
    return (
        faults.expire_after_share is not None and total > 0 and done >= int(faults.expire_after_share * total)
    )


def _read_requests(source, limit: int) -> list[tuple[str, dict[str, Any]]]:
    """Read up to ``limit`` requests (validated already) as (custom_id, body) pairs."""
    lines = []
    while len(lines) < limit:
        raw = source.readline()
        if not raw:
            break
        if raw.strip():
            line = orjson.loads(raw)
            lines.append((line["custom_id"], line["body"]))
    return lines


def _fault_reply(status: int) -> EngineReply:
    message, type_, code = _FAULT_ERRORS.get(
        status, ("The server had an error while processing your request.", "server_error", None)
    )
    return EngineReply(status, error_body(message, type=type_, code=code))


def _write_replies(batch_id, lines, replies, out, err, state) -> None:
    out_chunks, err_chunks = [], []
    for (custom_id, _), reply in zip(lines, replies, strict=True):
        response = {
            "status_code": reply.status_code,
            "request_id": _request_id(batch_id, custom_id),
            "body": reply.body,
        }
        if reply.status_code == 200:
            out_chunks.append(_line(batch_id, custom_id, response, None))
            state["completed"] += 1
            _add_usage(state, reply.body.get("usage") or {})
        else:
            err_chunks.append(_line(batch_id, custom_id, response, None))
            state["failed"] += 1
    out.write(b"".join(out_chunks))
    err.write(b"".join(err_chunks))
    _sync(out)
    _sync(err)


def _line(batch_id: str, custom_id: str, response: dict | None, error: dict | None) -> bytes:
    request_hash = hashlib.blake2b(f"{batch_id}:{custom_id}".encode(), digest_size=12).hexdigest()
    return (
        orjson.dumps(
            {"id": f"batch_req_{request_hash}", "custom_id": custom_id, "response": response, "error": error}
        )
        + b"\n"
    )


def _request_id(batch_id: str, custom_id: str) -> str:
    return "req_" + hashlib.blake2b(f"req:{batch_id}:{custom_id}".encode(), digest_size=16).hexdigest()


def _add_usage(state: dict[str, int], usage: dict[str, Any]) -> None:
    state["input_tokens"] += int(usage.get("prompt_tokens", usage.get("input_tokens", 0)) or 0)
    state["output_tokens"] += int(usage.get("completion_tokens", usage.get("output_tokens", 0)) or 0)
    details = usage.get("completion_tokens_details") or usage.get("output_tokens_details") or {}
    state["reasoning_tokens"] += int(details.get("reasoning_tokens", 0) or 0)
