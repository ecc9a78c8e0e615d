"""A batch job, declared rather than programmed: what to read, what to ask, where results land.

A DAG file holds one ``BatchJob``; the tasks that run it come from this library unchanged. Every
field that shapes a request is part of :meth:`BatchJob.fingerprint`, so changing the prompt
version, model, endpoint, schema or parameters makes rows count as unanswered again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any

import orjson
from pydantic import BaseModel

from llm_batch.endpoints import CHAT, EMBEDDINGS, RESPONSES, EndpointStrategy, strategy_for
from llm_batch.prompts import PromptTemplate

__all__ = ["CHAT", "EMBEDDINGS", "RESPONSES", "BatchJob", "ShardLimits"]

MB = 1024 * 1024


@dataclass(frozen=True)
class ShardLimits:
    """How a run's requests are split into batches; the defaults are the service's own limits."""

    max_requests: int = 50_000
    max_bytes: int = 200 * MB
    max_enqueued_tokens: int | None = None  # the organisation's enqueued-token cap for the model, if known


@dataclass(frozen=True)
class BatchJob:
    name: str
    source_sql: str  # uses :start and :end (the interval, end exclusive); rows need key and date columns
    key_column: str
    date_column: str  # the row's own date: results are stored per row date, whatever run answered them
    model: str
    target_table: str
    prompt: PromptTemplate | None = None  # chat and responses
    input_column: str | None = None  # embeddings: the text to embed
    output_schema: type[BaseModel] | None = None  # chat and responses: the structured answer
    endpoint: str = CHAT
    request_params: Mapping[str, Any] = field(default_factory=dict)
    required_columns: tuple[str, ...] = ()  # rows whose value here is null or blank are rejected
    dedupe_order_column: str | None = None  # among rows sharing a key, the greatest value wins
    failures_table: str = "llm_batch_failures"
    source_conn_id: str = "llm_source"
    warehouse_conn_id: str = "llm_warehouse"
    openai_conn_id: str = "openai_default"
    warehouse_pool: str | None = "llm_warehouse"  # DuckDB allows one writing process: serialize writers
    storage_url: str | None = None  # ObjectStoragePath base for run files; default from the environment
    max_attempts: int = 3
    max_failure_share: float = 0.05
    max_window_days: int = 92  # a manual run's date range longer than this is refused
    max_cost_usd: float | None = None  # a run whose estimate is over this sends nothing and fails
    poll_interval_seconds: float = 60.0
    shard_limits: ShardLimits = field(default_factory=ShardLimits)

    def __post_init__(self) -> None:
        try:
            strategy = strategy_for(self.endpoint)
        except ValueError as exc:
            raise ValueError(f"{self.name}: {exc}") from None
        strategy.check_job(self)
        if self.max_attempts < 1:
            raise ValueError(f"{self.name}: max_attempts must be at least 1")
        if self.max_window_days < 1:
            raise ValueError(f"{self.name}: max_window_days must be at least 1")
        if self.max_cost_usd is not None and self.max_cost_usd < 0:
            raise ValueError(f"{self.name}: max_cost_usd must not be negative")

    @property
    def endpoint_strategy(self) -> EndpointStrategy:
        """What the endpoint means to this job: request bodies, answers, result columns."""
        return strategy_for(self.endpoint)

    @property
    def prompt_version(self) -> str:
        return self.prompt.version if self.prompt else "none"

    def with_overrides(self, *, model: str | None = None, batch_conn_id: str | None = None) -> BatchJob:
        """The job as a manual run's parameters change it (another model, another batch connection)."""
        changes: dict[str, Any] = {}
        if model and model != self.model:
            changes["model"] = model
        if batch_conn_id and batch_conn_id != self.openai_conn_id:
            changes["openai_conn_id"] = batch_conn_id
        return replace(self, **changes) if changes else self

    def fingerprint(self) -> str:
        """Digest of everything that shapes a request other than the row itself."""
        material = {
            "endpoint": self.endpoint,
            "model": self.model,
            "prompt": None
            if self.prompt is None
            else [self.prompt.name, self.prompt.version, self.prompt.system, self.prompt.user],
            "schema": None if self.output_schema is None else self.output_schema.model_json_schema(),
            "params": dict(self.request_params),
            "input_column": self.input_column,
        }
        return hashlib.sha256(orjson.dumps(material, option=orjson.OPT_SORT_KEYS)).hexdigest()
