"""``/v1/embeddings``: one column's text in, its vector out; no prompt, no output tokens."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import pyarrow as pa

from llm_batch.answers import AnswerError
from llm_batch.endpoints.base import BodyBuilder, EndpointStrategy, token_count

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

EMBEDDINGS = "/v1/embeddings"


class Embeddings(EndpointStrategy):
    url = EMBEDDINGS
    output_token_reserve = 0
    expected_output_tokens = 0

    def check_job(self, job: BatchJob) -> None:
        if not job.input_column:
            raise ValueError(f"{job.name}: an embeddings job needs input_column")

    def body_builder(self, job: BatchJob) -> BodyBuilder:
        params, column = dict(job.request_params), job.input_column

        def body(row: dict[str, Any]) -> tuple[dict[str, Any], str]:
            text = str(row[column])
            return {"model": job.model, "input": text, **params}, text

        return body

    def answer_columns(self, job: BatchJob) -> pa.Schema:
        return pa.schema([("embedding", pa.list_(pa.float32())), ("dimensions", pa.int32())])

    def answer_fields(self, job: BatchJob, body: dict[str, Any]) -> dict[str, Any]:
        data = body.get("data") or []
        vector = data[0].get("embedding") if data else None
        if not isinstance(vector, list) or not vector:
            raise AnswerError("invalid_embedding", "the response has no embedding vector")
        return {"embedding": [float(x) for x in vector], "dimensions": len(vector)}

    def usage(self, body: dict[str, Any]) -> tuple[int, int]:
        return token_count(body.get("usage") or {}, "prompt_tokens"), 0
