"""Keep one process of a stack running, as ``restart: always`` does in a compose file.

    python -m include.supervise --name scheduler --events logs/restarts.jsonl [--owner-pid PID] -- CMD...

The supervisor runs ``CMD`` in its own process group, and when it exits without having been
told to stop, logs why, records the exit in the events file (one JSON line each, for whoever
watches the stack) and starts it again after a back-off (1 s, doubling to 30 s; reset once the
process has stayed up for a minute). SIGTERM or SIGINT to the supervisor stop the process (SIGTERM, then SIGKILL after 15 s) and then
the supervisor.
With ``--owner-pid``, the supervisor also stops when that process is gone, so that a test run
that is killed leaves no stack behind.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 30.0
STABLE_AFTER_SECONDS = 60.0
STOP_TIMEOUT_SECONDS = 15.0
CHECK_EVERY_SECONDS = 0.5


class Supervisor:
    def __init__(self, name: str, command: list[str], events: Path, owner_pid: int | None) -> None:
        self.name = name
        self.command = command
        self.events = events
        self.owner_pid = owner_pid
        self.stopping = False
        self.child: subprocess.Popen | None = None

    def request_stop(self, _signum: int, _frame) -> None:
        self.stopping = True  # the wait loop passes it on to the process, once

    def run(self) -> int:
        backoff = FIRST_BACKOFF_SECONDS
        restarts = 0
        while not self.stopping:
            started = time.monotonic()
            self.child = subprocess.Popen(self.command, stdin=subprocess.DEVNULL)
            code = self._wait_for_child()
            if self.stopping:
                break
            uptime = time.monotonic() - started
            if uptime >= STABLE_AFTER_SECONDS:
                backoff = FIRST_BACKOFF_SECONDS
            restarts += 1
            self._record_exit(code, uptime, restarts, backoff)
            if self._sleep(backoff):
                break
            backoff = min(backoff * 2, MAX_BACKOFF_SECONDS)
        return self._stop_child()

    def _wait_for_child(self) -> int:
        assert self.child is not None
        while True:
            try:
                return self.child.wait(timeout=CHECK_EVERY_SECONDS)
            except subprocess.TimeoutExpired:
                if self.stopping or self._owner_gone():
                    self.stopping = True
                    return self._stop_child()

    def _sleep(self, seconds: float) -> bool:
        """Sleep unless told to stop; True when told to stop."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if self.stopping or self._owner_gone():
                return True
            time.sleep(min(CHECK_EVERY_SECONDS, max(deadline - time.monotonic(), 0)))
        return self.stopping

    def _owner_gone(self) -> bool:
        if self.owner_pid is None:
            return False
        try:
            os.kill(self.owner_pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False

    def _record_exit(self, code: int, uptime: float, restarts: int, backoff: float) -> None:
        how = f"signal {-code}" if code < 0 else f"code {code}"
        print(
            f"[supervise] {self.name} exited with {how} after {uptime:.0f} s; "
            f"restart {restarts} in {backoff:.0f} s",
            file=sys.stderr,
            flush=True,
        )
        event = {
            "name": self.name,
            "exit_code": code,
            "uptime_seconds": round(uptime, 1),
            "restart": restarts,
            "at": dt.datetime.now(dt.UTC).isoformat(),
        }
        with self.events.open("a") as events:
            events.write(json.dumps(event) + "\n")

    def _stop_child(self) -> int:
        if self.child is None or self.child.poll() is not None:
            return 0
        self.child.send_signal(signal.SIGTERM)
        try:
            self.child.wait(timeout=STOP_TIMEOUT_SECONDS)
        except subprocess.TimeoutExpired:
            self.child.kill()
            self.child.wait()
        return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m include.supervise", description=__doc__)
    parser.add_argument("--name", required=True)
    parser.add_argument("--events", type=Path, required=True, help="JSON lines, one per unexpected exit")
    parser.add_argument("--owner-pid", type=int, help="stop when this process is gone")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("give the command to supervise after --")
    supervisor = Supervisor(args.name, command, args.events, args.owner_pid)
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, supervisor.request_stop)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
