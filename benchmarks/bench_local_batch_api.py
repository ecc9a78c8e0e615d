"""Speed and memory of the local Batch API server on a full-size chat batch.

Pushes one 50,000-request sentiment-classification batch (the service's per-batch maximum)
through a real server process with the offline ``local`` engine, driven by the unmodified
``openai`` SDK, and prints upload, validation, processing and download times, throughput and
the server's memory. A second server process first runs a 5,000-request baseline batch, so the
two peak RSS figures side by side show that memory stays flat while the input file grows tenfold
(the server streams files and works in fixed-size chunks). The target is processing < 10 s.

    PYTHONPATH=. .venv/bin/python benchmarks/bench_local_batch_api.py [--requests N] [--baseline-requests N] [--keep]
"""

from __future__ import annotations

import argparse
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import orjson

from include.batch_api_process import ServerProcess

TARGET_PROCESSING_SECONDS = 10.0
POLL_SECONDS = 0.05
BATCH_TIMEOUT_SECONDS = 900.0
TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})
# No artificial pauses: the figures are the server's own work.
TIMINGS = ("--validating-seconds", "0", "--finalizing-seconds", "0", "--cancelling-seconds", "0")
SEED = 20_250_101
MB = 1024 * 1024

SYSTEM_PROMPT = (
    "You are a sentiment classifier for product reviews. Classify the overall sentiment of the "
    "customer review as positive, neutral or negative, give your confidence between 0 and 1, and "
    "a one-sentence reason. Answer only with JSON matching the schema."
)
SENTIMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string"},
    },
    "required": ["label", "confidence", "reason"],
    "additionalProperties": False,
}

# Word lists the review sentences are assembled from.
ITEMS = [
    "blender",
    "pair of headphones",
    "backpack",
    "kettle",
    "phone case",
    "desk lamp",
    "keyboard",
    "rain jacket",
    "tent",
    "vacuum",
    "charger",
    "coffee grinder",
]
ASPECTS = [
    "battery",
    "sound quality",
    "build quality",
    "fit",
    "price",
    "packaging",
    "screen",
    "zipper",
    "handle",
    "motor",
    "instruction manual",
]
PEOPLE = ["wife", "husband", "son", "daughter", "dad", "mom", "roommate", "colleague"]
PLACES = ["office", "kitchen", "garage", "living room", "car", "dorm"]
DURATIONS = ["two days", "a week", "three weeks", "a month", "ten days", "two months"]
POSITIVE = [
    "great",
    "excellent",
    "amazing",
    "perfect",
    "fantastic",
    "wonderful",
    "solid",
    "sturdy",
    "brilliant",
    "superb",
    "lovely",
]
NEGATIVE = [
    "terrible",
    "awful",
    "flimsy",
    "useless",
    "disappointing",
    "cheap",
    "broken",
    "horrible",
    "poor",
    "defective",
]
NEUTRAL = ["okay", "average", "fine", "standard", "acceptable", "ordinary", "decent"]
POSITIVE_VERBS = ["love", "adore", "recommend", "enjoy", "appreciate"]
NEGATIVE_EVENTS = ["broke", "stopped working", "cracked", "fell apart", "overheated", "died"]
POSITIVE_TAILS = [
    "would definitely buy again",
    "worth every penny",
    "exceeded my expectations",
    "five stars from me",
    "my whole family is happy with it",
]
NEGATIVE_TAILS = [
    "total waste of money",
    "I want a refund",
    "customer service never answered",
    "returning it tomorrow",
    "do not buy this",
]


def _pick(rng: random.Random, words: list[str]) -> str:
    return words[rng.randrange(len(words))]


def _sentence(rng: random.Random, tone: str) -> str:
    item, aspect = _pick(rng, ITEMS), _pick(rng, ASPECTS)
    if tone == "positive":
        choices = (
            f"The {aspect} is {_pick(rng, POSITIVE)}",
            f"I {_pick(rng, POSITIVE_VERBS)} this {item}, {_pick(rng, POSITIVE_TAILS)}!",
            f"Really {_pick(rng, POSITIVE)} {aspect}, and the {item} itself is {_pick(rng, POSITIVE)}",
            f"Bought it for my {_pick(rng, PEOPLE)} and it is {_pick(rng, POSITIVE)}",
        )
    elif tone == "negative":
        choices = (
            f"The {aspect} is {_pick(rng, NEGATIVE)}",
            f"It {_pick(rng, NEGATIVE_EVENTS)} after {_pick(rng, DURATIONS)}, {_pick(rng, NEGATIVE_TAILS)}",
            f"This {item} is {_pick(rng, NEGATIVE)}, the {aspect} is not good at all",
            f"Bought it for my {_pick(rng, PEOPLE)} and it was {_pick(rng, NEGATIVE)}",
        )
    else:
        choices = (
            f"The {aspect} is {_pick(rng, NEUTRAL)}",
            f"The {item} does what it says, nothing more",
            f"Delivery took {_pick(rng, DURATIONS)} and the {aspect} is {_pick(rng, NEUTRAL)}",
            f"Using it in the {_pick(rng, PLACES)} for {_pick(rng, DURATIONS)} now",
        )
    text = _pick(rng, list(choices))
    return text if text.endswith("!") else text + "."


def review_text(rng: random.Random) -> str:
    """One review of 50-600 characters; its tone decides which word lists its sentences use."""
    target = rng.randint(50, 600)
    tone = rng.choices(("positive", "negative", "neutral", "mixed"), weights=(45, 30, 15, 10))[0]
    sentences: list[str] = []
    length = 0
    while length < target:
        sentence_tone = tone if tone != "mixed" else _pick(rng, ["positive", "negative", "neutral"])
        if tone != "neutral" and rng.random() < 0.2:
            sentence_tone = "neutral"
        sentence = _sentence(rng, sentence_tone)
        sentences.append(sentence)
        length += len(sentence) + 1
    text = " ".join(sentences)
    if len(text) > 600:
        text = text[:600].rsplit(" ", 1)[0].rstrip(",") + "."
    return text


def request_line(index: int, review: str) -> bytes:
    line = {
        "custom_id": f"review-{index:06d}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": SYSTEM_PROMPT},
                {"role": "user", "content": f"Review: {review}"},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "review_sentiment", "schema": SENTIMENT_SCHEMA, "strict": True},
            },
            "temperature": 0,
        },
    }
    return orjson.dumps(line) + b"\n"


def write_input(path: Path, requests: int) -> int:
    """Write the batch input file (the same seed, so a smaller file is a prefix of a larger one)."""
    rng = random.Random(SEED)
    with path.open("wb") as out:
        for start in range(0, requests, 5_000):
            out.write(
                b"".join(
                    request_line(i, review_text(rng)) for i in range(start, min(requests, start + 5_000))
                )
            )
    return path.stat().st_size


def proc_status_kib(pid: int, field: str) -> int:
    """A memory figure (kB) from /proc/<pid>/status, e.g. VmRSS or VmHWM (peak RSS)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/{pid}/status")


def server_clock(data_dir: Path, batch_id: str) -> dict[str, float] | None:
    """The server's own timestamps at full precision (the API rounds them to whole seconds)."""
    try:
        db = sqlite3.connect(f"file:{data_dir / 'state.sqlite3'}?mode=ro", uri=True)
        try:
            row = db.execute(
                "SELECT created_at, in_progress_at, finalizing_at, completed_at FROM batches WHERE id = ?",
                (batch_id,),
            ).fetchone()
        finally:
            db.close()
    except sqlite3.Error:
        return None
    if row is None or None in row:
        return None
    return dict(zip(("created_at", "in_progress_at", "finalizing_at", "completed_at"), row, strict=True))


@dataclass
class Result:
    requests: int
    file_bytes: int
    processing_s: float
    rss_before_kib: int
    peak_rss_kib: int


def mib(kib: int) -> str:
    return f"{kib / 1024:,.1f} MiB"


def run_batch(requests: int, work: Path, label: str) -> Result:
    """One fresh server process, one batch; prints its figures. Exits non-zero if it does not complete."""
    print(f"== {label}: {requests:,} chat requests, fresh server process ==")
    input_path = work / f"input-{requests}.jsonl"
    started = time.monotonic()
    file_bytes = write_input(input_path, requests)
    print(f"  generate input:        {time.monotonic() - started:8.2f} s")
    print(f"  input file size:       {file_bytes:,} bytes ({file_bytes / MB:,.1f} MiB, {requests:,} lines)")

    data_dir = work / f"server-{requests}"
    flags = [*TIMINGS, "--max-batch-requests", str(max(50_000, requests))]
    server = ServerProcess(data_dir, *flags, log_path=work / f"server-{requests}.log").start()
    try:
        assert server.process is not None
        pid = server.process.pid
        rss_before = proc_status_kib(pid, "VmRSS")
        client = server.client(timeout=600)

        wall_start = time.monotonic()
        with input_path.open("rb") as handle:
            uploaded = client.files.create(file=(input_path.name, handle), purpose="batch")
        upload_s = time.monotonic() - wall_start
        print(
            f"  upload:                {upload_s:8.2f} s  ({file_bytes / MB / upload_s:,.0f} MiB/s, {uploaded.id})"
        )

        create_start = time.monotonic()
        batch = client.batches.create(
            input_file_id=uploaded.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        first_seen = {batch.status: time.monotonic()}
        deadline = create_start + BATCH_TIMEOUT_SECONDS
        tick = time.monotonic()
        while batch.status not in TERMINAL:
            if time.monotonic() > deadline:
                print(f"ERROR: batch {batch.id} still {batch.status} after {BATCH_TIMEOUT_SECONDS:.0f} s")
                sys.exit(1)
            tick += POLL_SECONDS
            time.sleep(max(0.0, tick - time.monotonic()))
            batch = client.batches.retrieve(batch.id)
            first_seen.setdefault(batch.status, time.monotonic())
        counts = batch.request_counts
        if batch.status != "completed" or counts is None or batch.output_file_id is None:
            errors = batch.errors.data if batch.errors else None
            print(f"ERROR: batch {batch.id} ended {batch.status}: counts={counts} errors={errors}")
            sys.exit(1)

        # A stage may pass between two polls; it then starts when the next one is first seen.
        def seen(*statuses: str) -> float:
            return min(first_seen[s] for s in statuses if s in first_seen)

        in_progress = seen("in_progress", "finalizing", "completed")
        processed = seen("finalizing", "completed")
        validation_s = in_progress - create_start
        processing_s = processed - in_progress
        clock = server_clock(data_dir, batch.id)
        how = "in_progress -> finalizing, client polls"
        if "in_progress" not in first_seen or processing_s <= 0:
            # Too short to see between two polls: fall back to the server's own clock.
            how = "in_progress passed between two polls: server clock"
            processing_s = clock["finalizing_at"] - clock["in_progress_at"] if clock else 0.0
        processing_s = max(processing_s, 1e-6)
        print(
            f"  validation:            {validation_s:8.2f} s  (create -> in_progress, client polls every 50 ms)"
        )
        print(f"  processing:            {processing_s:8.2f} s  ({how})")
        print(
            f"  server timestamps:     created_at {batch.created_at}, in_progress_at {batch.in_progress_at}, "
            f"finalizing_at {batch.finalizing_at}, completed_at {batch.completed_at} (API, whole seconds)"
        )
        if clock is not None:
            print(
                f"  server clock:          validating {clock['in_progress_at'] - clock['created_at']:.3f} s, "
                f"processing {clock['finalizing_at'] - clock['in_progress_at']:.3f} s, "
                f"finalizing {clock['completed_at'] - clock['finalizing_at']:.3f} s (from its state database)"
            )

        output_path = work / f"output-{requests}.jsonl"
        download_start = time.monotonic()
        with (
            client.files.with_streaming_response.content(batch.output_file_id) as response,
            output_path.open("wb") as out,
        ):
            for chunk in response.iter_bytes(MB):
                out.write(chunk)
        download_s = time.monotonic() - download_start
        wall_s = time.monotonic() - wall_start
        output_bytes = output_path.stat().st_size
        print(
            f"  download output:       {download_s:8.2f} s  ({output_bytes:,} bytes, "
            f"{output_bytes / MB / download_s:,.0f} MiB/s)"
        )
        print(f"  total wall time:       {wall_s:8.2f} s  (upload start -> output file on disk)")
        print(
            f"  throughput:            {requests / processing_s:8,.0f} requests/s processing, "
            f"{requests / wall_s:,.0f} requests/s end to end"
        )
        print(
            f"  request counts:        {counts.completed:,} completed, {counts.failed:,} failed of {counts.total:,}"
        )

        peak = proc_status_kib(pid, "VmHWM")
        print(f"  server RSS after start:{mib(rss_before):>14}")
        print(f"  server peak RSS:       {mib(peak):>14}  (VmHWM, +{mib(peak - rss_before)} over start)")
    finally:
        server.stop()
    return Result(requests, file_bytes, processing_s, rss_before, peak)


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=50_000, help="requests in the measured batch")
    parser.add_argument("--baseline-requests", type=int, default=5_000, help="requests in the baseline batch")
    parser.add_argument("--keep", action="store_true", help="keep the data directory and print where it is")
    args = parser.parse_args()

    work = Path(tempfile.mkdtemp(prefix="bench-local-batch-api-"))
    try:
        base = run_batch(args.baseline_requests, work, "baseline")
        print()
        big = run_batch(args.requests, work, "measured")
    finally:
        if args.keep:
            print(f"\ndata kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    verdict = "PASS" if big.processing_s < TARGET_PROCESSING_SECONDS else "MISS"
    print()
    print(f"== {big.requests:,} vs {base.requests:,} requests ==")
    print(f"  input file size ratio:   {big.file_bytes / base.file_bytes:6.2f}x")
    print(f"  processing time ratio:   {big.processing_s / base.processing_s:6.2f}x")
    print(
        f"  peak RSS ratio:          {big.peak_rss_kib / base.peak_rss_kib:6.2f}x  "
        f"({mib(big.peak_rss_kib)} vs {mib(base.peak_rss_kib)})"
    )
    growth_big = big.peak_rss_kib - big.rss_before_kib
    growth_base = base.peak_rss_kib - base.rss_before_kib
    print(f"  peak RSS over start:     {mib(growth_big)} vs {mib(growth_base)}")
    print(
        f"  processing {big.requests:,} requests: {big.processing_s:.2f} s "
        f"(target: processing < {TARGET_PROCESSING_SECONDS:.0f} s) {verdict}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
