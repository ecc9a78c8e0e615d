"""What one Batch API endpoint means to a job: its request body, how to read its answer, its columns.

Everything the library knows about an endpoint lives in its strategy, one module per endpoint in
this package. A strategy registers itself by its URL, so adding an endpoint adds one file.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

import pyarrow as pa

if TYPE_CHECKING:
    from llm_batch.job import BatchJob

# A row's request body and the text its input tokens are counted from.
BodyBuilder = Callable[[dict[str, Any]], tuple[dict[str, Any], str]]

_STRATEGIES: dict[str, EndpointStrategy] = {}


class EndpointStrategy(ABC):
    """One endpoint kind; stateless, so one instance serves every job."""

    url: ClassVar[str]
    output_token_reserve: ClassVar[int]  # room kept in the context window for the answer
    expected_output_tokens: ClassVar[int]  # per request, when the job declares no output budget
    output_budget_params: ClassVar[tuple[str, ...]] = ()  # request fields that cap the answer's tokens
    # The keys that may stand as their own custom_id; others go as a digest (``request_lines``).
    custom_id_pattern: ClassVar[re.Pattern[str]] = re.compile(r"^[A-Za-z0-9_.-]{1,128}$")

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "url" in cls.__dict__:
            _STRATEGIES[cls.url] = cls()

    @abstractmethod
    def check_job(self, job: BatchJob) -> None:
        """Raise ``ValueError`` naming what the job must declare for this endpoint."""

    @abstractmethod
    def body_builder(self, job: BatchJob) -> BodyBuilder:
        """A function from a source row to its request body; the job's fixed parts computed once."""

    @abstractmethod
    def answer_columns(self, job: BatchJob) -> pa.Schema:
        """The typed columns an answer fills in the job's results table."""

    @abstractmethod
    def answer_fields(self, job: BatchJob, body: dict[str, Any]) -> dict[str, Any]:
        """The answer's column values from a response body; ``AnswerError`` when there is none."""

    def output_token_estimate(self, job: BatchJob) -> int:
        """Output tokens per request for a cost estimate before a batch has run.

        The job's declared cap (``max_completion_tokens`` and the like) when it has one: an
        estimate may come out high, never low. Otherwise the endpoint's typical answer length.
        """
        for name in self.output_budget_params:
            if job.request_params.get(name) is not None:
                return int(job.request_params[name])
        return self.expected_output_tokens

    @abstractmethod
    def usage(self, body: dict[str, Any]) -> tuple[int, int]:
        """(input tokens, output tokens) a response body reports."""


def strategy_for(url: str) -> EndpointStrategy:
    try:
        return _STRATEGIES[url]
    except KeyError:
        raise ValueError(f"endpoint must be one of {tuple(_STRATEGIES)}, got {url!r}") from None


def endpoint_urls() -> tuple[str, ...]:
    return tuple(_STRATEGIES)


def token_count(usage: dict[str, Any], name: str) -> int:
    return int(usage.get(name) or 0)
