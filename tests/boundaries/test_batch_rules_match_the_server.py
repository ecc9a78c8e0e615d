"""The library checks lines with its own rules and the local server with its own validation; the
library may not import the server. This test is what keeps the two in step: the same files give
the same errors through both, and both know the same limits."""

from __future__ import annotations

import dataclasses

import pytest

from llm_batch import batch_rules
from llm_batch.job import ShardLimits
from local_batch_api.settings import Settings, build_parser
from local_batch_api.validation import validate_lines
from tests.conftest import request_line as request

CHAT = "/v1/chat/completions"


def body(**changes) -> dict:
    return {"model": "gpt-4o-mini", "input": "x", **changes}


GOOD = request("good")
# One file per entry: (endpoint, lines). Every rule is broken at least once, alone and mixed.
FILES = {
    "good": (CHAT, [GOOD, request("also-good")]),
    "blank lines are skipped but counted": (CHAT, [GOOD, b"", b"{bad", b"   ", request("x", method="GET")]),
    "not JSON": (CHAT, [GOOD, b"{not json", b"nul", b"42", b'"text"', b"[1, 2]", b"null"]),
    "missing keys": (CHAT, [request(drop=key) for key in batch_rules.REQUIRED_KEYS]),
    "null keys": (CHAT, [request(**{key: None}) for key in batch_rules.REQUIRED_KEYS]),
    "custom_id": (CHAT, [request(""), request(7), request(["a"]), request({"a": 1}), request(True)]),
    "method": (CHAT, [request(method="GET"), request(method="post"), request(method=1)]),
    "url": (CHAT, [request(url="/v1/embeddings"), request(url="v1/chat/completions"), request(url=3)]),
    "body": (CHAT, [request(body=[]), request(body="text"), request(body=1), request(body=False)]),
    "stream": (CHAT, [request(body=body(stream=True)), request("b", body=body(stream=1)), request("c")]),
    "stream off": (CHAT, [request(body=body(stream=False)), request("b", body=body(stream=None))]),
    "model": (
        CHAT,
        [request(body={"input": "x"}), request(body=body(model=None)), request(body=body(model=5))],
    ),
    "empty model name": (CHAT, [request("a", body=body(model="")), request("b")]),
    "duplicates": (
        CHAT,
        [GOOD, request("good", method="GET"), request("good"), request("other"), request("good")],
    ),
    "models": (CHAT, [GOOD, request("b", body=body(model="gpt-4o")), request("b"), request("c")]),
    "first model from the first good line": (
        CHAT,
        [
            request("a", method="GET", body=body(model="gpt-4o")),
            request("b"),
            request("c", body=body(model="gpt-4o")),
        ],
    ),
    **{
        f"{endpoint} streaming, and no model": (
            endpoint,
            [
                request("s", url=endpoint, body=body(stream=True)),
                request("m", url=endpoint, body={"input": "x"}),
            ],
        )
        for endpoint in batch_rules.ENDPOINT_NAMES
    },
    "an endpoint the service does not know": (
        "/v1/images",
        [request(url="/v1/images", body=body(stream=True))],
    ),
}


@pytest.mark.parametrize(("endpoint", "lines"), FILES.values(), ids=FILES.keys())
def test_the_same_lines_break_the_same_rules_in_the_library_and_in_the_server(endpoint, lines):
    library = [
        {"code": b.code, "message": b.message, "param": b.param, "line": b.line}
        for b in batch_rules.check_lines(lines, endpoint)
    ]
    server = validate_lines(lines, endpoint, max_requests=len(lines)).errors
    assert library == server


def test_the_corpus_breaks_every_rule_the_server_reports_per_line():
    codes = {
        e["code"]
        for endpoint, lines in FILES.values()
        for e in validate_lines(lines, endpoint, max_requests=99).errors
    }
    assert codes == {
        "invalid_json_line",
        "missing_required_parameter",
        "invalid_request",
        "invalid_url",
        "streaming_unsupported",
        "duplicate_custom_id",
        "mismatched_model",
    }


def test_the_limits_are_the_servers_and_the_default_shard_limits():
    settings = {f.name: f.default for f in dataclasses.fields(Settings)}
    flags = build_parser().parse_args([])
    assert batch_rules.MAX_REQUESTS_PER_FILE == settings["max_batch_requests"] == flags.max_batch_requests
    assert batch_rules.MAX_FILE_BYTES == settings["max_batch_bytes"] == flags.max_batch_bytes
    assert (ShardLimits().max_requests, ShardLimits().max_bytes) == (
        batch_rules.MAX_REQUESTS_PER_FILE,
        batch_rules.MAX_FILE_BYTES,
    )
