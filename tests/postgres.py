"""The PostgreSQL server the tests use: standard libpq variables, defaulting to this machine's."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Callable

from include.local_postgres import LOCAL_POSTGRES_DSN as TEST_DSN
from llm_batch.warehouse import postgres_warehouse

__all__ = ["TEST_DSN", "kill_mid_load"]


def kill_mid_load(dsn: str, loader: subprocess.Popen, ready: Callable[[], int]) -> None:
    """SIGKILL ``loader`` once ``ready()`` returns (the pid of its server session); wait until the
    server has ended that session, so its transaction is rolled back when this returns."""
    try:
        backend_pid = ready()
        os.kill(loader.pid, signal.SIGKILL)
        assert loader.wait(10) == -signal.SIGKILL
    finally:
        if loader.poll() is None:
            loader.kill()
            loader.wait()
    assert _backend_gone(dsn, backend_pid), "PostgreSQL still holds the killed loader's session"


def _backend_gone(dsn: str, pid: int, timeout: float = 30) -> bool:
    """Whether the server has ended the session of backend ``pid`` (a killed client's) within ``timeout`` s."""
    deadline = time.monotonic() + timeout
    with postgres_warehouse(dsn) as wh:
        while time.monotonic() < deadline:
            alive = wh.read_arrow("SELECT count(*) AS n FROM pg_stat_activity WHERE pid = :pid", {"pid": pid})
            if alive.column("n")[0].as_py() == 0:
                return True
            time.sleep(0.05)
    return False
