"""Splitting a JSONL byte stream: on ``\\n`` only, wherever the chunks happen to be cut."""

from __future__ import annotations

import orjson
import pytest

from llm_batch.backends.jsonl import jsonl_records

RECORDS = [
    {"custom_id": f"r{i}", "text": f"a{brk}b"}
    for i, brk in enumerate("\u2028\u2029\x85\x0b\x0c\x1c\x1d\x1e\r")
]
STREAM = b"".join(orjson.dumps(r) + b"\n" for r in RECORDS) + b"\n\r\n" + orjson.dumps({"last": True})


@pytest.mark.parametrize("size", [1, 2, 7, 64, len(STREAM)])
def test_records_survive_any_chunking_and_every_unicode_line_break(size):
    chunks = [STREAM[i : i + size] for i in range(0, len(STREAM), size)]
    assert [orjson.loads(line) for line in jsonl_records(chunks)] == [*RECORDS, {"last": True}]


def test_an_empty_stream_has_no_records():
    assert list(jsonl_records([])) == [] and list(jsonl_records([b"\n", b" \n"])) == []
