"""The tables the library writes: their Arrow schemas and keys.

Results and failures are per job (the job names them); the runs and the ledger tables are shared
by every job. The SQL types follow from these schemas (``arrow_types``), so a table and the Arrow
tables loaded into it cannot disagree.
"""

from __future__ import annotations

import pyarrow as pa

from llm_batch.job import BatchJob

# Results ----------------------------------------------------------------------------------------

RESULT_PROVENANCE = pa.schema(
    [
        ("key", pa.string()),
        ("row_date", pa.date32()),
        ("custom_id", pa.string()),
        ("request_fingerprint", pa.string()),
        ("vendor", pa.string()),  # openai, azure or anthropic: the provider that answered
        ("model", pa.string()),
        ("prompt_version", pa.string()),
        ("batch_id", pa.string()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
    ]
)


def results_schema(job: BatchJob) -> pa.Schema:
    """The columns of a result row: the typed answer, then where it came from.

    In the job's target table ``key`` and ``row_date`` take the job's key and date column names,
    ``logical_date`` is added, and the key column is the primary key.
    """
    return pa.schema(
        [*job.endpoint_strategy.answer_columns(job), *RESULT_PROVENANCE, ("answered_at", pa.timestamp("us"))]
    )


# Failures ---------------------------------------------------------------------------------------

FAILURE_SCHEMA = pa.schema(
    [
        ("key", pa.string()),
        ("row_date", pa.date32()),
        ("custom_id", pa.string()),
        ("request_fingerprint", pa.string()),
        ("stage", pa.string()),
        ("reason", pa.string()),
        ("detail", pa.string()),
        ("batch_id", pa.string()),
        ("vendor", pa.string()),  # the provider that failed it; NULL when rejected before sending
        ("attempt", pa.int32()),
    ]
)
# The job's failures table: a failure row, for which job and when it was recorded; one per key.
FAILURE_TABLE_SCHEMA = FAILURE_SCHEMA.append(pa.field("job", pa.string())).append(
    pa.field("recorded_at", pa.timestamp("us"))
)
FAILURE_TABLE_KEY = ("job", "key")

# Runs -------------------------------------------------------------------------------------------

RUNS_TABLE = "llm_batch_runs"
RUNS_SCHEMA = pa.schema(
    [
        ("job", pa.string()),
        ("window", pa.string()),
        ("run_id", pa.string()),
        ("dry_run", pa.bool_()),
        ("rows_in", pa.int64()),
        ("already_settled", pa.int64()),
        ("duplicates_collapsed", pa.int64()),
        ("rejected", pa.int64()),
        ("requests", pa.int64()),
        ("results", pa.int64()),
        ("failures", pa.int64()),
        ("failure_reasons", pa.string()),  # JSON: reason -> count
        ("batches", pa.int64()),
        ("rounds", pa.int64()),
        ("input_tokens", pa.int64()),
        ("output_tokens", pa.int64()),
        ("cost_usd", pa.float64()),
        ("sync_cost_usd", pa.float64()),
        ("estimated_cost_usd", pa.float64()),
        ("estimated_sync_cost_usd", pa.float64()),
        ("failure_share", pa.float64()),
        ("reused_batches", pa.int64()),
        ("model", pa.string()),
        ("over_ceiling", pa.string()),
        ("reported_at", pa.timestamp("us")),
    ]
)
RUNS_KEY = ("job", "window", "run_id")

# Ledger -----------------------------------------------------------------------------------------

LEDGER_TABLE = "llm_batch_ledger"
LEDGER_SCHEMA = pa.schema(
    [
        pa.field("submission_key", pa.string(), nullable=False),
        pa.field("job", pa.string(), nullable=False),
        pa.field("interval_label", pa.string(), nullable=False),
        pa.field("run_id", pa.string()),
        pa.field("shard", pa.int32(), nullable=False),
        pa.field("attempt", pa.int32(), nullable=False),
        pa.field("generation", pa.int32(), nullable=False),
        pa.field("content_digest", pa.string(), nullable=False),
        pa.field("job_fingerprint", pa.string(), nullable=False),
        pa.field("model", pa.string(), nullable=False),
        pa.field("endpoint", pa.string(), nullable=False),
        pa.field("requests", pa.int32(), nullable=False),
        pa.field("input_file_id", pa.string()),
        pa.field("batch_id", pa.string()),
        pa.field("status", pa.string(), nullable=False),
        pa.field("completed", pa.int32()),
        pa.field("failed", pa.int32()),
        pa.field("input_tokens", pa.int64()),
        pa.field("output_tokens", pa.int64()),
        pa.field("cost_usd", pa.float64()),
        pa.field("sync_cost_usd", pa.float64()),
        pa.field("error", pa.string()),
        pa.field("intent_at", pa.timestamp("us"), nullable=False),
        pa.field("submitted_at", pa.timestamp("us")),
        pa.field("finished_at", pa.timestamp("us")),
        # Added later, so last: the account the batch lives in, and the enqueued tokens it holds
        # there from its admission (``llm_batch.capacity``) until it is collected.
        pa.field("account", pa.string()),
        pa.field("estimated_tokens", pa.int64()),
    ]
)
LEDGER_KEY = ("submission_key",)

# In-flight requests ------------------------------------------------------------------------------

# (key, request fingerprint) claimed by a submission whose answers have not landed yet: another
# run leaves them alone. A claim names its submission (a ledger row), which says if it still holds.
INFLIGHT_TABLE = "llm_batch_inflight"
INFLIGHT_SCHEMA = pa.schema(
    [
        pa.field("job", pa.string(), nullable=False),
        pa.field("key", pa.string(), nullable=False),
        pa.field("request_fingerprint", pa.string(), nullable=False),
        pa.field("row_date", pa.date32()),  # of the row's version: an older one is not sent beside it
        pa.field("submission_key", pa.string(), nullable=False),
        pa.field("run_id", pa.string()),
        pa.field("claimed_at", pa.timestamp("us"), nullable=False),
    ]
)
INFLIGHT_KEY = ("job", "key", "request_fingerprint")
