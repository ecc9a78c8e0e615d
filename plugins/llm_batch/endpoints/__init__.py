"""Endpoint strategies: each Batch API endpoint the library can target, one module apiece.

Every module of this package is imported here, so a new module's strategy is known by its URL
without editing any other file.
"""

from __future__ import annotations

import importlib
import pkgutil
from pathlib import Path

from llm_batch.endpoints.base import EndpointStrategy, endpoint_urls, strategy_for
from llm_batch.endpoints.chat_completions import CHAT
from llm_batch.endpoints.embeddings import EMBEDDINGS
from llm_batch.endpoints.messages import MESSAGES
from llm_batch.endpoints.responses_api import RESPONSES

for _module in pkgutil.iter_modules([str(Path(__file__).parent)]):
    importlib.import_module(f"llm_batch.endpoints.{_module.name}")

__all__ = ["CHAT", "EMBEDDINGS", "MESSAGES", "RESPONSES", "EndpointStrategy", "endpoint_urls", "strategy_for"]
