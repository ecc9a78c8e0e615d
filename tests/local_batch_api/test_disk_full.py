"""A full disk pauses a running batch, which completes (or expires) whole once there is room,
and files can still be deleted through the API to make that room."""

from __future__ import annotations

import errno
import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import openai
import pytest

from tests.batch_server import FAST_TIMINGS, ServerProcess, wait_for_batch
from tests.conftest import chat_line, upload

TOTAL = 150
IDS = [f"r{i:03d}" for i in range(TOTAL)]
TASK_DIED = ("Task exception was never retrieved", "failed unexpectedly", "Traceback")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 16 MiB tmpfs of its own, so filling it harms nothing else."""
    mount_point = tmp_path / "disk"
    mount_point.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount_point)], capture_output=True, text=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs is not permitted here: {mounted.stderr.strip()}")
    try:
        yield mount_point
    finally:
        subprocess.run(["umount", str(mount_point)], check=True)


@pytest.fixture
def server_on_small_disk(small_disk: Path, tmp_path: Path, request) -> Iterator[ServerProcess]:
    """A server with its state on the small disk and a "24h" of ``request.param`` seconds."""
    # The log stays off the small disk: a full disk must not hide what the server said.
    window = str(request.param)
    flags = ("--request-seconds", "0.01", "--window-seconds", window, "--disk-full-retry-seconds", "0.1")
    server = ServerProcess(small_disk / "server", *FAST_TIMINGS, *flags, log_path=tmp_path / "server.log")
    try:
        yield server.start()
    finally:
        server.stop()


def fill(disk: Path) -> Path:
    """Write a file until the disk has no room left."""
    filler = disk / "filler"
    with filler.open("wb") as out:
        try:
            while True:
                out.write(b"\xff" * 65536)
                out.flush()
        except OSError as exc:
            assert exc.errno == errno.ENOSPC
    return filler


def records(client, file_id: str) -> list[dict]:
    content = client.files.content(file_id).content
    assert len(content) == client.files.retrieve(file_id).bytes and b"\0" not in content
    return [json.loads(line) for line in content.split(b"\n") if line]


def start_batch(client):
    spare = upload(client, [chat_line("spare", "x" * 200_000)], name="spare.jsonl")  # room to win back
    file = upload(client, [chat_line(custom_id, f"review {custom_id}: fine") for custom_id in IDS])
    batch = client.batches.create(
        input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
    )
    while client.batches.retrieve(batch.id).request_counts.completed < 20:
        time.sleep(0.02)
    return batch, spare


def assert_paused(client, batch_id: str, server: ServerProcess) -> None:
    time.sleep(1.0)
    before = client.batches.retrieve(batch_id)
    time.sleep(0.5)
    after = client.batches.retrieve(batch_id)
    assert before.status == after.status == "in_progress"
    assert before.request_counts == after.request_counts  # not writing, and not giving up either
    assert server.process.poll() is None


@pytest.mark.parametrize("server_on_small_disk", [600], indirect=True)
def test_a_batch_pauses_while_the_disk_is_full_and_completes_after(small_disk, server_on_small_disk):
    server = server_on_small_disk
    client = server.client()
    batch, spare = start_batch(client)
    filler = fill(small_disk)

    assert_paused(client, batch.id, server)
    with pytest.raises(openai.InternalServerError) as caught:
        upload(client, [chat_line("late", "x" * 100_000)])
    assert caught.value.status_code == 507 and "disk is full" in caught.value.message
    assert client.files.delete(spare.id).deleted  # deleting works on a full disk
    filler.unlink()
    done = wait_for_batch(client, batch.id, timeout=30)

    log = server.log_path.read_text()
    assert not [marker for marker in TASK_DIED if marker in log], log[-3000:]
    assert done.status == "completed", done.errors
    answered = records(client, done.output_file_id)
    assert sorted(r["custom_id"] for r in answered) == IDS and done.request_counts.completed == TOTAL


@pytest.mark.parametrize("server_on_small_disk", [6], indirect=True)
def test_a_batch_whose_window_ends_while_the_disk_is_full_expires_once_there_is_room(
    small_disk, server_on_small_disk
):
    server = server_on_small_disk
    client = server.client()
    batch, _ = start_batch(client)
    filler = fill(small_disk)

    assert_paused(client, batch.id, server)
    while time.time() < batch.expires_at + 1:
        time.sleep(0.1)
    assert client.batches.retrieve(batch.id).status == "in_progress"  # cannot write the expiry yet
    filler.unlink()
    done = wait_for_batch(client, batch.id, timeout=30)

    assert done.status == "expired"
    answered, failed = records(client, done.output_file_id), records(client, done.error_file_id)
    assert {r["error"]["code"] for r in failed} == {"batch_expired"}
    assert sorted(r["custom_id"] for r in answered + failed) == IDS
    assert done.request_counts.model_dump() == {
        "total": TOTAL,
        "completed": len(answered),
        "failed": 0,  # every error line is an expired request, which did not run
    }
