"""``/v1/responses``: the prompt as instructions and input, the answer in the output's message texts."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_batch.endpoints.base import BodyBuilder, token_count
from llm_batch.endpoints.structured import StructuredAnswerEndpoint

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

RESPONSES = "/v1/responses"


class Responses(StructuredAnswerEndpoint):
    url = RESPONSES
    output_budget_params = ("max_output_tokens",)

    def body_builder(self, job: BatchJob) -> BodyBuilder:
        params, prompt = dict(job.request_params), job.prompt
        text_format = {"format": {"type": "json_schema", **self.schema_format(job)}}

        def body(row: dict[str, Any]) -> tuple[dict[str, Any], str]:
            system, user = prompt.render(row)
            request = {"model": job.model, "input": user, "text": text_format, **params}
            if system:
                request["instructions"] = system
            return request, system + user

        return body

    def answer_text(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        if body.get("status") == "incomplete":
            reason = (body.get("incomplete_details") or {}).get("reason", "unknown")
            return None, f"truncated: response incomplete ({reason})"
        texts = []
        for item in body.get("output") or []:
            if item.get("type") != "message":
                continue
            for part in item.get("content") or []:
                if part.get("type") == "refusal":
                    return None, f"refusal: {part.get('refusal')}"
                if part.get("type") == "output_text":
                    texts.append(part.get("text", ""))
        return ("".join(texts) if texts else None), None

    def usage(self, body: dict[str, Any]) -> tuple[int, int]:
        usage = body.get("usage") or {}
        return token_count(usage, "input_tokens"), token_count(usage, "output_tokens")
