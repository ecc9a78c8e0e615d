"""Which days a run covers: its data interval, or the date range a manual run gives."""

from __future__ import annotations

import datetime as dt

import pytest

from llm_batch.run_window import InvalidRunWindow, RunWindow

NIGHT = dt.datetime(2026, 3, 31, tzinfo=dt.UTC)
NEXT = NIGHT + dt.timedelta(days=1)


def test_a_nightly_run_covers_its_data_interval() -> None:
    window = RunWindow.for_run(NIGHT, NEXT, {"start_date": None, "end_date": None})
    assert (window.start, window.end, window.label) == (NIGHT.date(), NEXT.date(), "2026-03-31")


def test_a_range_is_inclusive_and_replaces_the_interval() -> None:
    window = RunWindow.for_run(NIGHT, NEXT, {"start_date": "2026-03-01", "end_date": "2026-03-03"})
    assert (window.start, window.end) == (dt.date(2026, 3, 1), dt.date(2026, 3, 4))
    assert window.label == "2026-03-01--2026-03-04"


def test_a_run_without_a_logical_date_runs_its_range() -> None:
    window = RunWindow.for_run(None, None, {"start_date": "2026-03-05", "end_date": "2026-03-05"})
    assert (window.start, window.end, window.label) == (
        dt.date(2026, 3, 5),
        dt.date(2026, 3, 6),
        "2026-03-05",
    )


def test_a_run_without_a_logical_date_or_a_range_says_what_to_give() -> None:
    with pytest.raises(InvalidRunWindow, match=r"no logical date.*give start_date and end_date"):
        RunWindow.for_run(None, None, {})


def test_a_reversed_range_is_refused_naming_both_dates() -> None:
    with pytest.raises(InvalidRunWindow, match="end_date 2026-11-10 is before start_date 2026-11-20"):
        RunWindow.for_run(NIGHT, NEXT, {"start_date": "2026-11-20", "end_date": "2026-11-10"})


@pytest.mark.parametrize("given", [{"start_date": "2026-03-01"}, {"end_date": "2026-03-01"}])
def test_half_a_range_is_refused(given: dict) -> None:
    with pytest.raises(InvalidRunWindow, match=f"only {next(iter(given))}=2026-03-01 was given"):
        RunWindow.for_run(NIGHT, NEXT, given)


def test_a_date_that_is_not_one_is_refused() -> None:
    with pytest.raises(InvalidRunWindow, match="'31/03/2026' is not a date"):
        RunWindow.for_run(NIGHT, NEXT, {"start_date": "31/03/2026", "end_date": "2026-04-01"})


def test_a_range_over_the_declared_maximum_is_refused_naming_its_length() -> None:
    params = {"start_date": "2026-01-01", "end_date": "2026-12-31"}
    with pytest.raises(InvalidRunWindow, match=r"2026-01-01 to end_date 2026-12-31 is 365 days, over .* 92"):
        RunWindow.for_run(NIGHT, NEXT, params, max_days=92)
    window = RunWindow.for_run(
        NIGHT, NEXT, {"start_date": "2026-01-01", "end_date": "2026-04-02"}, max_days=92
    )
    assert (window.end - window.start).days == 92
