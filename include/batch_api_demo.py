"""A full batch through the local server: upload, create, wait, download, and a readable summary.

``python -m include.batch_api_demo`` starts its own server on a free port and stops it afterwards.
"""

from __future__ import annotations

import argparse
import io
import json
import tempfile
import time
from pathlib import Path

import orjson

from include.batch_api_process import FAST_TIMINGS, TERMINAL, ServerProcess

REVIEWS = [
    "Absolutely love this coffee grinder. Quiet, fast and the grind is perfectly even.",
    "Stopped working after a week. Customer service never answered. Total waste of money.",
    "It is a phone case. It fits the phone.",
    "The headphones sound amazing but the ear pads get uncomfortable after an hour.",
    "Worst purchase this year, the zipper broke on day one and the seams are falling apart.",
    "Great value, arrived early, my kids are thrilled with it!",
]
SENTIMENT_SCHEMA = {
    "type": "object",
    "properties": {
        "label": {"type": "string", "enum": ["positive", "neutral", "negative"]},
        "confidence": {"type": "number", "minimum": 0, "maximum": 1},
        "reason": {"type": "string", "maxLength": 200},
    },
    "required": ["label", "confidence", "reason"],
    "additionalProperties": False,
}


def request_line(index: int, review: str) -> dict:
    return {
        "custom_id": f"review-{index}",
        "method": "POST",
        "url": "/v1/chat/completions",
        "body": {
            "model": "gpt-4o-mini",
            "messages": [
                {"role": "system", "content": "Classify the sentiment of the customer review."},
                {"role": "user", "content": f"Review: {review}"},
            ],
            "response_format": {
                "type": "json_schema",
                "json_schema": {"name": "review_sentiment", "schema": SENTIMENT_SCHEMA, "strict": True},
            },
        },
    }


def run(data_dir: Path) -> None:
    server = ServerProcess(data_dir, *FAST_TIMINGS).start()
    try:
        client = server.client(max_retries=2)
        payload = b"".join(orjson.dumps(request_line(i, r)) + b"\n" for i, r in enumerate(REVIEWS))
        file = client.files.create(file=("reviews.jsonl", io.BytesIO(payload)), purpose="batch")
        batch = client.batches.create(
            input_file_id=file.id, endpoint="/v1/chat/completions", completion_window="24h"
        )
        print(f"server {server.base_url}: uploaded {file.id} ({file.bytes} bytes), created {batch.id}")
        seen = None
        while batch.status not in TERMINAL:
            if batch.status != seen:
                print(f"  status: {batch.status}")
                seen = batch.status
            time.sleep(0.1)
            batch = client.batches.retrieve(batch.id)
        counts, usage = batch.request_counts, batch.usage
        print(
            f"  status: {batch.status}; {counts.completed}/{counts.total} completed, {counts.failed} failed"
        )
        print(f"  tokens: {usage.input_tokens} in, {usage.output_tokens} out")
        answers = {}
        # Split on "\n" alone: answers may hold U+2028 and the like, which splitlines breaks at.
        for line in client.files.content(batch.output_file_id).content.split(b"\n"):
            if not line.strip():
                continue
            record = json.loads(line)
            content = record["response"]["body"]["choices"][0]["message"]["content"]
            answers[record["custom_id"]] = json.loads(content)
        print()
        for index, review in enumerate(REVIEWS):
            answer = answers[f"review-{index}"]
            print(f"  {answer['label']:<8} {answer['confidence']:.2f}  {review[:70]}")
            print(f"  {'':<8} {'':<4}  ({answer['reason']})")
    finally:
        server.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=None, help="server state (default: a temporary dir)")
    args = parser.parse_args()
    if args.data_dir is not None:
        args.data_dir.mkdir(parents=True, exist_ok=True)
        run(args.data_dir)
    else:
        with tempfile.TemporaryDirectory() as tmp:
            run(Path(tmp) / "server")


if __name__ == "__main__":
    main()
