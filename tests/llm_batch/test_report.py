"""The run report a person reads: every row in is accounted for once, and money is never guessed."""

from __future__ import annotations

from dataclasses import replace

from llm_batch.handoffs import RunReport
from llm_batch.report import describe, headline

DEMO_NIGHT = RunReport(
    job="review_sentiment",
    window="2026-11-29",
    run_id="scheduled__2026-11-30T00:00:00+00:00",
    dry_run=False,
    rows_in=304,
    already_settled=0,
    duplicates_collapsed=8,
    rejected=2,
    requests=294,
    results=280,
    failures=14,
    failure_reasons={"null_input": 1, "empty_input": 1, "invalid_answer": 14},
    batches=2,
    rounds=2,
    input_tokens=41_000,
    output_tokens=6_000,
    cost_usd=0.0049,
    sync_cost_usd=0.0098,
    model="gpt-4o-mini",
)


def test_the_rows_line_adds_up_and_names_the_collapsed_duplicates():
    text = describe(DEMO_NIGHT)
    assert (
        "rows in 304 = 280 answered + 14 failed + 2 rejected + 0 already answered or in another run"
        " + 8 duplicate keys" in text
    )
    assert "not accounted for" not in text
    assert "invalid_answer 14" in text and "saved $0.0049" in text


def test_requests_left_to_another_run_are_named_and_a_gap_is_never_hidden():
    took_less = replace(DEMO_NIGHT, results=270)
    assert "+ 10 in flight in another run, which lands them" in describe(took_less)
    lost = replace(DEMO_NIGHT, rows_in=310)
    assert "(+6 not accounted for)" in describe(lost)


def test_an_unpriced_run_says_so_and_its_headline_carries_no_invented_saving():
    unpriced = replace(DEMO_NIGHT, cost_usd=None, sync_cost_usd=None)
    assert "cost unpriced at batch prices, unpriced synchronous" in describe(unpriced)
    assert headline(unpriced)["saved_usd"] is None
    assert headline(DEMO_NIGHT)["saved_usd"] == 0.0049
