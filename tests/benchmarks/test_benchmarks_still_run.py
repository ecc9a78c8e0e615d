"""Every benchmark still runs, at a toy size: a refactor that breaks one is found here, not later.

The figures at this size mean nothing; ``make bench`` runs the real sizes.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
TOY_SIZES = {
    "bench_batch_runs_page.py": ["--runs", "6", "--repeat", "2"],
    "bench_scale.py": ["--sizes", "300", "--wave-rows", "300"],
    "bench_build_memory.py": ["--rows", "300", "600"],
    "bench_task_memory.py": ["--sizes", "2000", "4000", "--shard", "1000", "--piece", "1000"],
    "bench_pipeline.py": ["--rows", "600", "--repeat", "1", "--baseline-rows", "200"],
    "bench_local_batch_api.py": ["--requests", "200", "--baseline-requests", "50"],
    "bench_trigger_waits.py": [
        "--waits",
        "20",
        "--baseline-waits",
        "5",
        "--seconds",
        "3",
        "--poll-interval",
        "0.5",
    ],
    "bench_warehouse_load.py": ["--rows", "2000", "--baseline-rows", "200", "--repeats", "1"],
}


def test_every_benchmark_has_a_toy_size():
    assert sorted(TOY_SIZES) == sorted(p.name for p in (ROOT / "benchmarks").glob("bench_*.py"))


@pytest.mark.slow
@pytest.mark.needs_postgres  # bench_warehouse_load compares DuckDB with PostgreSQL
@pytest.mark.parametrize("script", sorted(TOY_SIZES))
def test_the_benchmark_runs_and_prints_its_figures(script):
    env = {**os.environ, "PYTHONPATH": f"{ROOT}:{ROOT / 'plugins'}"}
    result = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / script), *TOY_SIZES[script]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
    assert result.stdout.count("\n") > 5
