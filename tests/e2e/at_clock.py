"""Run a command with the clock of it and every process it starts moved to a time of day (UTC).

    python tests/e2e/at_clock.py 23:58 -- python -m pytest tests/e2e

The end-to-end stacks run a real scheduler, so what a test sees depends on the time of day: a
run near midnight meets the scheduler creating the next night's run. This moves the clock of
the test process, the stack's processes and their tasks by one offset (libfaketime, Debian's
``faketime`` package), so ``date``, Airflow, SQLite and the local Batch API server all agree.
Monotonic clocks and file times stay real.
"""

from __future__ import annotations

import argparse
import datetime as dt
import glob
import os
import sys

LIBRARIES = ("/usr/lib/*/faketime/libfaketime.so.1", "/usr/lib/faketime/libfaketime.so.1")


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
    libraries = [path for pattern in LIBRARIES for path in glob.glob(pattern)]
    if not libraries or not command:
        parser.error("needs libfaketime (apt-get install faketime) and a command after --")
    offset = offset_seconds(args.at, dt.datetime.now(dt.UTC))
    env = {
        **os.environ,
        "LD_PRELOAD": libraries[0],
        "FAKETIME": f"+{offset}",
        "FAKETIME_DONT_FAKE_MONOTONIC": "1",
        "NO_FAKE_STAT": "1",
        "FAKETIME_NO_CACHE": "1",
    }
    print(f"clock moved by {offset} s: it now reads {args.at.isoformat()} UTC", file=sys.stderr, flush=True)
    os.execvpe(command[0], command, env)
    return 1


if __name__ == "__main__":
    sys.exit(main())
