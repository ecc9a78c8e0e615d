"""The supervisor of a stack's processes: restarts what crashes, stops what it is told to stop,
and goes away with its owner, so that a killed test run leaves nothing behind."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

PROJECT = Path(__file__).resolve().parents[2]


def start(tmp_path: Path, *, owner_pid: int | None = None) -> subprocess.Popen:
    command = [sys.executable, "-m", "include.supervise", "--name", "sleeper", "--events"]
    command += [str(tmp_path / "restarts.jsonl")]
    if owner_pid is not None:
        command += ["--owner-pid", str(owner_pid)]
    log = (tmp_path / "sleeper.log").open("ab")
    return subprocess.Popen(
        [*command, "--", sys.executable, "-c", "import time; time.sleep(600)"],
        cwd=PROJECT,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def child_of(supervisor: subprocess.Popen, timeout: float = 10) -> int:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        path = Path(f"/proc/{supervisor.pid}/task/{supervisor.pid}/children")
        children = path.read_text().split() if path.exists() else []
        if children:
            return int(children[0])
        time.sleep(0.05)
    raise TimeoutError("the supervisor started no process")


def gone(pid: int, timeout: float = 10) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
            state = Path(f"/proc/{pid}/stat").read_text().split()[2]
            if state == "Z":
                return True
        except (ProcessLookupError, FileNotFoundError):
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def cleanup():
    started: list[subprocess.Popen] = []
    yield started.append
    for process in started:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_a_crashed_process_is_restarted_and_its_exit_recorded(tmp_path: Path, cleanup) -> None:
    supervisor = start(tmp_path)
    cleanup(supervisor)
    first = child_of(supervisor)
    os.kill(first, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while (second := child_of(supervisor)) == first and time.monotonic() < deadline:
        time.sleep(0.1)
    assert second != first
    (event,) = [json.loads(line) for line in (tmp_path / "restarts.jsonl").read_text().splitlines()]
    assert (event["name"], event["exit_code"], event["restart"]) == ("sleeper", -signal.SIGKILL, 1)
    log = (tmp_path / "sleeper.log").read_text()
    assert "sleeper exited with signal 9" in log and "restart 1 in 1 s" in log


def test_sigterm_stops_the_process_and_the_supervisor_without_a_restart(tmp_path: Path, cleanup) -> None:
    supervisor = start(tmp_path)
    cleanup(supervisor)
    child = child_of(supervisor)
    supervisor.send_signal(signal.SIGTERM)
    assert supervisor.wait(timeout=20) == 0
    assert gone(child)
    assert not (tmp_path / "restarts.jsonl").exists()


def test_the_supervisor_and_its_process_go_when_the_owner_is_gone(tmp_path: Path, cleanup) -> None:
    owner = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
    supervisor = start(tmp_path, owner_pid=owner.pid)
    cleanup(supervisor)
    child = child_of(supervisor)
    owner.kill()
    owner.wait()
    assert supervisor.wait(timeout=20) == 0
    assert gone(child)
