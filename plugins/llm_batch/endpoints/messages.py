"""Anthropic's ``/v1/messages``: the prompt as system and user, the answer as a forced tool call.

A job declared for chat completions runs here unchanged when its connection is Anthropic's: the
output schema becomes the one tool the model must call (``tool_choice`` names it), its answer is
the tool call's ``input``, validated against the same Pydantic model. Anthropic requires an
output budget, taken from the job's ``max_completion_tokens`` (or ``max_tokens``).
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

import orjson

from llm_batch.answers import strict_json_schema
from llm_batch.endpoints.base import BodyBuilder, token_count
from llm_batch.endpoints.structured import StructuredAnswerEndpoint

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

MESSAGES = "/v1/messages"
# The job's parameters that mean the same on the Messages API, under Anthropic's names.
_PARAMS = {
    "max_completion_tokens": "max_tokens",
    "max_tokens": "max_tokens",
    "temperature": "temperature",
    "top_p": "top_p",
    "stop": "stop_sequences",
}


class Messages(StructuredAnswerEndpoint):
    url = MESSAGES
    output_budget_params = ("max_completion_tokens", "max_tokens")
    custom_id_pattern = re.compile(r"^[A-Za-z0-9_-]{1,64}$")

    def check_job(self, job: BatchJob) -> None:
        super().check_job(job)
        if not any(job.request_params.get(name) for name in self.output_budget_params):
            raise ValueError(
                f"{job.name}: Anthropic's Messages API needs an output budget: set max_completion_tokens "
                "in the job's request_params"
            )
        unknown = sorted(set(job.request_params) - set(_PARAMS))
        if unknown:
            raise ValueError(
                f"{job.name}: request_params {unknown} have no Messages API equivalent; "
                f"use only {sorted(_PARAMS)} for a job that runs on Anthropic"
            )

    def body_builder(self, job: BatchJob) -> BodyBuilder:
        params = {_PARAMS[name]: value for name, value in job.request_params.items()}
        if isinstance(params.get("stop_sequences"), str):
            params["stop_sequences"] = [params["stop_sequences"]]
        name, prompt = job.output_schema.__name__, job.prompt
        tool = {
            "name": name,
            "description": (job.output_schema.__doc__ or f"Record the {name} answer.").strip(),
            "input_schema": strict_json_schema(job.output_schema),
        }
        fixed = {"model": job.model, "tools": [tool], "tool_choice": {"type": "tool", "name": name}, **params}

        def body(row: dict[str, Any]) -> tuple[dict[str, Any], str]:
            system, user = prompt.render(row)
            request = {**fixed, "messages": [{"role": "user", "content": user}]}
            if system:
                request["system"] = system
            return request, system + user

        return body

    def answer_text(self, body: dict[str, Any]) -> tuple[str | None, str | None]:
        stop = body.get("stop_reason")
        if stop == "max_tokens":
            return None, "truncated: the answer hit the output token limit"
        if stop == "refusal":
            return None, "refusal: the model declined to answer"
        for block in body.get("content") or []:
            if block.get("type") == "tool_use":
                return orjson.dumps(block.get("input")).decode(), None
        return None, f"no_tool_call: the answer has no tool_use block (stop_reason {stop})"

    def usage(self, body: dict[str, Any]) -> tuple[int, int]:
        usage = body.get("usage") or {}
        return token_count(usage, "input_tokens"), token_count(usage, "output_tokens")
