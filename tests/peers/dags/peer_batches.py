"""The two Airflow peers' batch operators, unmodified, as their users would write them.

``OpenAITriggerBatchOperator`` (apache-airflow-providers-openai) runs a batch from a file that a
task before it uploads, deferrable or synchronous; ``LLMBatchOperator``
(apache-airflow-providers-common-ai) submits its prompts itself, deferrable. One task group per
scenario; every operator in it uses a connection named ``<scenario>_<operator>``, so a test can
point each at a server with that scenario's faults and count what each one made. The run's conf
names ``result_path``, under which each ``LLMBatchOperator`` writes its results (by task id).
"""

from __future__ import annotations

import datetime as dt
import json
import tempfile
from typing import Literal

from airflow.providers.common.ai.operators.llm_batch import LLMBatchOperator
from airflow.providers.openai.hooks.openai import OpenAIHook
from airflow.providers.openai.operators.openai import OpenAITriggerBatchOperator
from airflow.sdk import DAG, TaskGroup, task
from pydantic import BaseModel

REQUESTS = 20
REVIEWS = [
    "Review {i}: I love this kettle, it boils fast and looks great.",
    "Review {i}: Terrible. It broke after two days and support never answered.",
    "Review {i}: It arrived on Tuesday in a brown box.",
]
PROMPTS = [REVIEWS[i % len(REVIEWS)].format(i=i) for i in range(REQUESTS)]
INSTRUCTION = "Classify the sentiment of the review as positive, neutral or negative."
OPENAI_MODES = {"openai_deferrable": True, "openai_sync": False}
SCENARIOS = {
    "clean": ("openai_deferrable", "openai_sync", "llm_batch"),
    "expiry": ("llm_batch",),
    "cancel": ("openai_deferrable", "llm_batch"),
    "lost_create": ("openai_deferrable", "openai_sync", "llm_batch"),
}


class Sentiment(BaseModel):
    label: Literal["positive", "neutral", "negative"]
    confidence: float


@task
def upload(conn_id: str) -> str:
    """The batch input file, uploaded as the provider documents it: ``OpenAIHook.upload_file``."""
    lines = [
        {
            "custom_id": f"review-{i}",
            "method": "POST",
            "url": "/v1/chat/completions",
            "body": {
                "model": "gpt-4o-mini",
                "messages": [{"role": "system", "content": INSTRUCTION}, {"role": "user", "content": prompt}],
            },
        }
        for i, prompt in enumerate(PROMPTS)
    ]
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl") as handle:
        handle.write("".join(json.dumps(line) + "\n" for line in lines))
        handle.flush()
        return OpenAIHook(conn_id=conn_id).upload_file(handle.name, purpose="batch").id


def openai_batch(scenario: str, operator: str) -> None:
    conn_id = f"{scenario}_{operator}"
    OpenAITriggerBatchOperator(
        task_id=operator,
        conn_id=conn_id,
        file_id=upload.override(task_id=f"upload_{operator}")(conn_id),
        endpoint="/v1/chat/completions",
        deferrable=OPENAI_MODES[operator],
        poll_interval=0.2,
        wait_seconds=0.2,
        timeout=120,
    )


def llm_batch(scenario: str, operator: str) -> None:
    LLMBatchOperator(
        task_id=operator,
        llm_conn_id=f"{scenario}_{operator}",
        model_id="openai:gpt-4o-mini",
        requests=PROMPTS,
        system_prompt=INSTRUCTION,
        output_type=Sentiment,
        max_tokens=200,
        result_path=f"{{{{ dag_run.conf['result_path'] }}}}/{scenario}",
        poll_interval=30,  # the operator's minimum
        deferrable=True,
    )


with DAG("peer_batches", schedule=None, start_date=dt.datetime(2026, 1, 1), catchup=False):
    for scenario, operators in SCENARIOS.items():
        with TaskGroup(scenario):
            for operator in operators:
                (llm_batch if operator == "llm_batch" else openai_batch)(scenario, operator)
