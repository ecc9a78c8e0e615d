"""``/v1/chat/completions``: the prompt as system and user messages, the answer in the first choice."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from llm_batch.endpoints.base import BodyBuilder, token_count
from llm_batch.endpoints.structured import StructuredAnswerEndpoint

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

CHAT = "/v1/chat/completions"


class ChatCompletions(StructuredAnswerEndpoint):
    url = CHAT
    output_budget_params = ("max_completion_tokens", "max_tokens")

    def body_builder(self, job: BatchJob) -> BodyBuilder:
        params, prompt = dict(job.request_params), job.prompt
        response_format = {"type": "json_schema", "json_schema": self.schema_format(job)}

        def body(row: dict[str, Any]) -> tuple[dict[str, Any], str]:
            system, user = prompt.render(row)
            messages = [{"role": "system", "content": system}] if system else []
            messages.append({"role": "user", "content": user})
            return {"model": job.model, "messages": messages, "response_format": response_format, **params}, (
                system + user
            )

        return body

    def answer_text(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        choice = (body.get("choices") or [{}])[0]
        message = choice.get("message") or {}
        if message.get("refusal"):
            return None, f"refusal: {message['refusal']}"
        if choice.get("finish_reason") == "length":
            return None, "truncated: the answer hit the output token limit"
        if choice.get("finish_reason") == "content_filter":
            return None, "content_filter: the answer was withheld by the content filter"
        return message.get("content"), None

    def usage(self, body: dict[str, Any]) -> tuple[int, int]:
        usage = body.get("usage") or {}
        return token_count(usage, "prompt_tokens"), token_count(usage, "completion_tokens")
