"""The bytes sent and the job fingerprints, pinned: a refactor that changes them would pay again.

A run re-attaches to its batches, and skips rows already answered, only while the request bytes
and ``BatchJob.fingerprint()`` stay the same. Change these digests only with a change that is
meant to make every row count as unanswered.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import hashlib

import pyarrow as pa
import pytest

from dags.review_embeddings import JOB as EMBEDDINGS_JOB
from dags.review_sentiment import JOB as SENTIMENT_JOB
from llm_batch.job import RESPONSES
from llm_batch.request_lines import build_requests

ROWS = pa.table(
    {
        "review_id": ["rv-2", "rv-1", "weird key/ä", "rv-3"],
        "review_date": [dt.date(2026, 11, 25)] * 4,
        "created_at": [dt.datetime(2026, 11, 25, 10, i) for i in range(4)],
        "product_name": ["Kettle", "Lamp", "Chair", "Desk"],
        "category": ["kitchen", "home", "home", "office"],
        "rating": [5, 1, 3, 4],
        "language": ["en", "de", "en", "fr"],
        "review_text": ["Love it", "Kaputt nach zwei Tagen", 'Fine, "okay"\nI guess', "Très bien"],
    }
)

JOBS = {
    "chat": SENTIMENT_JOB,
    "responses": dataclasses.replace(SENTIMENT_JOB, endpoint=RESPONSES),
    "embeddings": EMBEDDINGS_JOB,
}

PINNED = {  # (sha256 of the JSONL sent, BatchJob.fingerprint())
    "chat": (
        "01ef920cd3c1ed7df40392055bf290fb65f1643cbc885de2fb1f0ceefa0af62f",
        "bc9a22dcc05190ceef87fe1fb95578f0ebfd6a088afa525322ac78a36d448ddc",
    ),
    "responses": (
        "5785d56957ba278853a26ac8080c73cc27c81826f6ce60e1aab40b690e1b3003",
        "aae7652f6035d7041ef6220a29db3c7ecd7115987d9b57964eef31a3afb13215",
    ),
    "embeddings": (
        "b87f5651069c6369c7830bf75e8b8f537d7769967c7c78a0dd5482abcc558da1",
        "cd27d996cdee4bc1b224c023d5bc03f9c46b4b885b38d366bc717c367e135ef5",
    ),
}


@pytest.mark.parametrize("kind", sorted(JOBS))
def test_request_bytes_and_job_fingerprint_do_not_move(kind):
    job = JOBS[kind]
    built = build_requests(job, ROWS)
    assert len(built.lines) == 4 and not built.rejections
    jsonl = b"".join(line.line + b"\n" for line in built.lines)
    request_digest = hashlib.sha256(jsonl).hexdigest()
    assert (request_digest, job.fingerprint()) == PINNED[kind]
