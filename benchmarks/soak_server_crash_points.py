"""Crash-point soak of the local Batch API server: kill it at every named step, many times.

For each crash point of ``local_batch_api.faults.CRASH_POINTS``, a server with its own data
directory is started with the point armed (at its 1st or 2nd arrival), given new work (batches
that complete with some failed lines, batches that expire part-way, files uploaded and
deleted), and left to exit there; then it is started again, armed again, and so on. Every restart also resumes the batches
the crashes interrupted, so crashes land in recovery too. At the end a clean start finishes
everything, and the script checks from the server's own state that:

- no acknowledged upload is lost or changed, and no deleted file is back (lost files),
- every published file has its recorded size, no NUL bytes and only whole JSON lines, and
  holds each request of its batch exactly once across output and error files (corrupt files),
- every batch ends in the status its faults call for (stuck batches: not ended, or wrong end).

Not part of ``make test``: it restarts the server hundreds of times.

    PYTHONPATH=.:plugins .venv/bin/python benchmarks/soak_server_crash_points.py [--crashes 20] [--points a,b]
"""

from __future__ import annotations

import argparse
import hashlib
import io
import json
import multiprocessing
import os
import random
import shutil
import sys
import tempfile
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import openai
import orjson

from include.batch_api_process import FAST_TIMINGS, TERMINAL, free_port
from local_batch_api.__main__ import main as serve
from local_batch_api.faults import CRASH_ENV, CRASH_EXIT_CODE, CRASH_POINTS, METADATA_KEY

API_KEY = "soak-key"
FORKS = multiprocessing.get_context("forkserver")
REQUESTS = 60  # two chunks a batch at the pace below
PACE = ("--request-seconds", "0.005")
SPARE = b"a file that is uploaded to be deleted\n" * 1000
SPARE_DIGEST = hashlib.sha256(SPARE).hexdigest()
CRASH_WAIT_SECONDS = 20.0
FINISH_SECONDS = 120.0
# What each batch of a round is asked to do, and the status that asks for.
KINDS = {
    "complete": ({"line_failure_share": 0.2, "seed": 11}, "completed"),
    "expire": ({"expire_after_share": 0.5, "seed": 12}, "expired"),
}


COLUMNS = ("crashes", "missed", "batches", "files", "lost", "corrupt", "stuck")


@dataclass
class PointResult:
    """The figures of one crash point; ``missed``: rounds in which the server never got there."""

    point: str
    counts: Counter[str] = field(default_factory=Counter)
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)


class ForkedServer:
    """The server as a child of a fork server that imported it once: a start costs a fork, not
    the second or more of CPU that importing FastAPI takes, hundreds of times over."""

    def __init__(self, data_dir: Path, log_path: Path) -> None:
        self.port = free_port()
        self.argv = ["--port", str(self.port), "--data-dir", str(data_dir), "--api-key", API_KEY]
        self.argv += [*FAST_TIMINGS, *PACE]
        self.log_path = log_path
        self.env: dict[str, str] = {}
        self.process: multiprocessing.process.BaseProcess | None = None

    def start(self, timeout: float = 60.0) -> None:
        self.process = FORKS.Process(target=_serve, args=(self.argv, dict(self.env), str(self.log_path)))
        self.process.start()
        deadline = time.monotonic() + timeout
        with httpx.Client(trust_env=False, timeout=1) as http:  # one client: no TLS setup per poll
            while time.monotonic() < deadline:
                if not self.process.is_alive():
                    raise RuntimeError(f"server exited with {self.process.exitcode}")
                try:
                    if http.get(f"http://127.0.0.1:{self.port}/_local/health").status_code == 200:
                        return
                except httpx.HTTPError:
                    time.sleep(0.05)
        raise TimeoutError(f"server did not start; see {self.log_path}")

    def wait(self, timeout: float) -> int | None:
        """The exit status, or ``None`` if it still runs after ``timeout`` (then it is killed)."""
        self.process.join(timeout)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()
            return None
        return self.process.exitcode

    def stop(self) -> None:
        self.process.terminate()
        self.process.join(10)
        if self.process.exitcode is None:
            self.process.kill()
            self.process.join()

    def client(self) -> openai.OpenAI:
        return openai.OpenAI(base_url=f"http://127.0.0.1:{self.port}/v1", api_key=API_KEY, max_retries=0)


def _serve(argv: list[str], env: dict[str, str], log_path: str) -> None:
    """In the forked child: log to the file, take the crash point from ``env``, and serve."""
    with open(log_path, "ab") as log:
        os.dup2(log.fileno(), 1)
        os.dup2(log.fileno(), 2)
    os.environ.pop(CRASH_ENV, None)
    os.environ.update(env)
    serve(argv)


def soak_point(point: str, crashes: int, root: Path) -> PointResult:
    result = PointResult(point)
    started = time.monotonic()
    server = ForkedServer(root / point.replace(".", "_"), root / f"{point}.log")
    uploads: dict[str, str] = {}  # acknowledged uploads: id -> sha256 of their content
    deletes: dict[str, bool] = {}  # deletes asked for: id -> whether the answer came back
    rng = random.Random(point)
    rounds = 0
    while result.counts["crashes"] < crashes and rounds < crashes * 2:
        rounds += 1
        server.env[CRASH_ENV] = f"{point}@{rng.randint(1, 2)}"
        try:
            server.start()
        except RuntimeError:  # it crashed resuming the batches an earlier crash interrupted
            code = server.process.exitcode
        else:
            _add_load(server.client(), uploads, deletes, rounds)
            code = server.wait(CRASH_WAIT_SECONDS)
        outcome = "crashes" if code == CRASH_EXIT_CODE else "missed"
        result.counts[outcome] += 1
        print(f"{point} round {rounds}: {outcome} at {time.monotonic() - started:.0f} s", file=sys.stderr)
    del server.env[CRASH_ENV]
    server.start()
    try:
        _check(server.client(), uploads, deletes, result)
    finally:
        server.stop()
    result.seconds = time.monotonic() - started
    return result


def _add_load(client: openai.OpenAI, uploads: dict[str, str], deletes: dict[str, bool], round_: int) -> None:
    """Start two batches of each kind, then upload two spare files and delete them (with any
    a crash kept). Two of each, so that every point is reached at its 1st and its 2nd arrival.

    A crash may cut any call short, as it would.
    """
    try:
        for copy in range(2):
            for kind, (faults, expected) in KINDS.items():
                ids = [f"{kind}-{round_}.{copy}-{i:03d}" for i in range(REQUESTS)]
                content = b"".join(orjson.dumps(_request(custom_id)) + b"\n" for custom_id in ids)
                file = client.files.create(file=(f"{kind}.jsonl", io.BytesIO(content)), purpose="batch")
                uploads[file.id] = hashlib.sha256(content).hexdigest()
                client.batches.create(
                    input_file_id=file.id,
                    endpoint="/v1/chat/completions",
                    completion_window="24h",
                    metadata={METADATA_KEY: json.dumps(faults), "expect": expected},
                )
        for _ in range(2):
            spare = client.files.create(file=("spare.jsonl", io.BytesIO(SPARE)), purpose="batch")
            uploads[spare.id] = SPARE_DIGEST
        for file_id, digest in list(uploads.items()):
            if digest == SPARE_DIGEST and file_id not in deletes:
                deletes[file_id] = False
                client.files.delete(file_id)
                deletes[file_id] = True
    except openai.APIConnectionError:
        pass  # the server crashed under the call


def _request(custom_id: str) -> dict:
    body = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": f"Review {custom_id}: fine."}]}
    return {"custom_id": custom_id, "method": "POST", "url": "/v1/chat/completions", "body": body}


def _check(
    client: openai.OpenAI, uploads: dict[str, str], deletes: dict[str, bool], result: PointResult
) -> None:
    for file_id, digest in uploads.items():
        try:
            content = client.files.content(file_id).content
        except openai.NotFoundError:
            content = None
        if content is None and file_id in deletes:
            continue  # deleted: whether its answer came back or not, gone is right
        if deletes.get(file_id) or content is None or hashlib.sha256(content).hexdigest() != digest:
            result.counts["lost"] += 1
            result.problems.append(f"{file_id}: lost, changed, or back after its delete")
    batches = list(client.batches.list(limit=100))
    result.counts["batches"] = len(batches)
    deadline = time.monotonic() + FINISH_SECONDS
    for batch in batches:
        while batch.status not in TERMINAL and time.monotonic() < deadline:
            time.sleep(0.1)
            batch = client.batches.retrieve(batch.id)
        if batch.status != batch.metadata["expect"]:
            result.counts["stuck"] += 1
            result.problems.append(f"{batch.id} is {batch.status}, expected {batch.metadata['expect']}")
            continue
        _check_outputs(client, batch, result)


def _check_outputs(client: openai.OpenAI, batch, result: PointResult) -> None:
    wanted = sorted(
        orjson.loads(line)["custom_id"] for line in _lines(client.files.content(batch.input_file_id).content)
    )
    seen: list[str] = []
    for file_id in (batch.output_file_id, batch.error_file_id):
        if file_id is None:
            continue
        result.counts["files"] += 1
        content = client.files.content(file_id).content
        problem = None
        if (
            len(content) != client.files.retrieve(file_id).bytes
            or b"\0" in content
            or not content.endswith(b"\n")
        ):
            problem = "size, NUL bytes or a cut last line"
        else:
            try:
                seen += [orjson.loads(line)["custom_id"] for line in _lines(content)]
            except orjson.JSONDecodeError:
                problem = "a line that is not JSON"
        if problem:
            result.counts["corrupt"] += 1
            result.problems.append(f"{batch.id} {file_id}: {problem}")
    counts = batch.request_counts
    if (
        sorted(seen) != wanted
        or counts.total != len(wanted)
        or counts.completed + counts.failed != len(wanted)
    ):
        result.counts["corrupt"] += 1
        result.problems.append(f"{batch.id}: requests lost or repeated ({len(seen)} lines for {len(wanted)})")


def _lines(content: bytes) -> list[bytes]:
    return [line for line in content.split(b"\n") if line.strip()]


def print_table(results: list[PointResult]) -> None:
    header = ("crash point", *COLUMNS, "seconds")
    rows = [(r.point, *(r.counts[c] for c in COLUMNS), f"{r.seconds:.0f}") for r in results]
    slowest = max((r.seconds for r in results), default=0)
    total = ("all", *(sum(r.counts[c] for r in results) for c in COLUMNS), f"{slowest:.0f}")
    widths = [max(len(str(row[i])) for row in (header, *rows, total)) for i in range(len(header))]
    for row in (header, *rows, total):
        cells = [
            str(cell).rjust(width) if i else str(cell).ljust(width)
            for i, (cell, width) in enumerate(zip(row, widths, strict=True))
        ]
        print("  ".join(cells))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--crashes", type=int, default=20, help="crashes per point")
    parser.add_argument("--points", default=",".join(CRASH_POINTS), help="comma-separated crash points")
    parser.add_argument("--parallel", type=int, default=4, help="points soaked at once")
    parser.add_argument("--keep", action="store_true", help="keep the data directories and logs")
    args = parser.parse_args()
    points = [p for p in args.points.split(",") if p]
    FORKS.set_forkserver_preload(
        ["__main__", "local_batch_api.app", "local_batch_api.engines.local", "uvicorn"]
    )
    root = Path(tempfile.mkdtemp(prefix="soak-crash-"))
    try:
        with ThreadPoolExecutor(args.parallel) as pool:
            results = list(pool.map(lambda p: soak_point(p, args.crashes, root), points))
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print_table(results)
    for r in results:
        for problem in r.problems[:5]:
            print(f"{r.point}: {problem}")
    failed = any(r.counts[c] for r in results for c in ("missed", "lost", "corrupt", "stuck"))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
