"""The shared half of endpoints that answer in JSON under the job's output schema (chat, responses).

Their rows are rendered through the job's prompt, and their answers are validated against the
same Pydantic model whose strict schema goes out with every request.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from llm_batch.answers import AnswerError, parse_answer, strict_json_schema
from llm_batch.endpoints.base import EndpointStrategy

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

_ARROW_TYPES = {"string": pa.string(), "number": pa.float64(), "integer": pa.int64(), "boolean": pa.bool_()}


class StructuredAnswerEndpoint(EndpointStrategy):
    output_token_reserve = 1_000
    expected_output_tokens = 60

    def check_job(self, job: BatchJob) -> None:
        if job.prompt is None or job.output_schema is None:
            raise ValueError(f"{job.name}: a {self.url} job needs a prompt and an output_schema")

    def schema_format(self, job: BatchJob) -> dict[str, Any]:
        """The strict JSON schema every request carries, under the name of the output model."""
        return {
            "name": job.output_schema.__name__,
            "schema": strict_json_schema(job.output_schema),
            "strict": True,
        }

    def answer_columns(self, job: BatchJob) -> pa.Schema:
        """One column per top-level field of the output schema; nested values land as JSON text."""
        properties = job.output_schema.model_json_schema()["properties"]
        return pa.schema(
            [(name, _ARROW_TYPES.get(prop.get("type"), pa.string())) for name, prop in properties.items()]
        )

    def answer_fields(self, job: BatchJob, body: dict[str, Any]) -> dict[str, Any]:
        text, problem = self.answer_text(body)
        if problem:
            reason, _, detail = problem.partition(": ")
            raise AnswerError(reason, detail)
        return parse_answer(job.output_schema, text)

    @abstractmethod
    def answer_text(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        """(the answer's JSON text, or why there is none as ``"reason: detail"``)."""
