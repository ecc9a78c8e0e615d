"""Run a command with the wall clock of it and of every Python process it starts moved to a
time of day (UTC).

    python tests/e2e/at_clock.py 23:58 -- python -m pytest tests/e2e/test_local_stack.py

The end-to-end stacks run a real scheduler, so what a test sees depends on the time of day: a
run near midnight meets the scheduler creating the next night's run. This sets
``E2E_CLOCK_OFFSET_SECONDS`` and puts ``tests/e2e/chaos`` first on ``PYTHONPATH``, whose
``sitecustomize`` moves the wall clock of each Python process by that offset (time-machine), so
the test process, Airflow and the local Batch API server all agree on the time.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sys
from pathlib import Path

HOOKS = Path(__file__).resolve().parent / "chaos"


def offset_seconds(at: dt.time, now: dt.datetime) -> int:
    """Seconds to add to ``now`` to reach the next ``at`` (UTC), today or tomorrow."""
    target = dt.datetime.combine(now.date(), at, tzinfo=dt.UTC)
    if target <= now:
        target += dt.timedelta(days=1)
    return int((target - now).total_seconds())


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("at", type=dt.time.fromisoformat, help="time of day, UTC (HH:MM or HH:MM:SS)")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to run after --")
    offset = offset_seconds(args.at, dt.datetime.now(dt.UTC))
    path = [str(HOOKS), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    env = {**os.environ, "E2E_CLOCK_OFFSET_SECONDS": str(offset), "PYTHONPATH": os.pathsep.join(path)}
    print(f"clock moved by {offset} s: it now reads {args.at.isoformat()} UTC", file=sys.stderr, flush=True)
    os.execvpe(command[0], command, env)
    return 1


if __name__ == "__main__":
    sys.exit(main())
