"""The DAG factory's one rule about errors: what no retry can fix fails the task at once."""

from __future__ import annotations

import pytest
from airflow.sdk.exceptions import AirflowFailException

from llm_batch.backends import BackendError, InvalidConnectionExtra
from llm_batch.batch_rules import LinesBreakBatchRules
from llm_batch.budget import CostCeilingExceeded
from llm_batch.collect import BatchFailedError
from llm_batch.handoffs import HandoffVersionError
from llm_batch.report import FailureThresholdExceeded
from llm_batch.retryable import PermanentError
from llm_batch.run_window import InvalidRunWindow
from llm_batch.sharding import ShardingError
from llm_batch.task_errors import permanent_errors_fail_at_once

PERMANENT = [
    BatchFailedError,
    CostCeilingExceeded,
    InvalidConnectionExtra,
    FailureThresholdExceeded,
    HandoffVersionError,
    InvalidRunWindow,
    LinesBreakBatchRules,
    ShardingError,
]


@pytest.mark.parametrize("error", PERMANENT, ids=lambda e: e.__name__)
def test_errors_no_retry_can_fix_fail_the_task_at_once_with_their_message(error):
    assert issubclass(error, PermanentError)
    with (
        pytest.raises(AirflowFailException, match=rf"^{error.__name__}: what to change$"),
        permanent_errors_fail_at_once(),
    ):
        raise error("what to change")


@pytest.mark.parametrize(
    "error",
    [
        BackendError("RateLimitError 429: slow down", status_code=429),
        ConnectionError("reset"),
        OSError("disk"),
    ],
)
def test_other_errors_keep_airflows_retries(error):
    with pytest.raises(type(error)), permanent_errors_fail_at_once():
        raise error
