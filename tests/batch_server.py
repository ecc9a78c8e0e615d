"""Test helpers around the server process, under the names the tests import."""

from __future__ import annotations

from include.batch_api_process import FAST_TIMINGS, TERMINAL, ServerProcess, free_port, wait_for_batch

__all__ = ["FAST_TIMINGS", "TERMINAL", "ServerProcess", "free_port", "wait_for_batch"]
