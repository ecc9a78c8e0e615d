"""The days a run covers: the data interval, or a manual run's inclusive date range."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from typing import Any

from llm_batch.retryable import PermanentError


class InvalidRunWindow(PermanentError, ValueError):
    """The run's dates cannot make a window; the message says what to give instead."""


@dataclass(frozen=True)
class RunWindow:
    """The source rows a run covers: ``start`` inclusive, ``end`` exclusive, whole days."""

    start: dt.date
    end: dt.date

    @property
    def label(self) -> str:
        if self.end - self.start == dt.timedelta(days=1):
            return self.start.isoformat()
        return f"{self.start.isoformat()}--{self.end.isoformat()}"

    @classmethod
    def for_run(
        cls,
        interval_start: dt.datetime | None,
        interval_end: dt.datetime | None,
        params: dict[str, Any] | None = None,
        *,
        max_days: int | None = None,
    ) -> RunWindow:
        """The manual run's ``start_date``/``end_date`` (inclusive) when given, else the data interval.

        A run without a logical date (Airflow 3 allows it) has no data interval: it must give the
        range. A range given by half, backwards, or longer than ``max_days`` is refused rather
        than guessed: a typo in a year should not send a year of rows.
        """
        params = params or {}
        first, last = _as_date(params.get("start_date")), _as_date(params.get("end_date"))
        if first and last:
            if last < first:
                raise InvalidRunWindow(
                    f"end_date {last.isoformat()} is before start_date {first.isoformat()}: "
                    "give the range first date first"
                )
            days = (last - first).days + 1
            if max_days is not None and days > max_days:
                raise InvalidRunWindow(
                    f"start_date {first.isoformat()} to end_date {last.isoformat()} is {days} days, over "
                    f"the job's maximum of {max_days}: split it into shorter runs (or a backfill), or "
                    "raise the job's max_window_days"
                )
            return cls(first, last + dt.timedelta(days=1))
        if first or last:
            given = f"start_date={first.isoformat()}" if first else f"end_date={last.isoformat()}"
            raise InvalidRunWindow(
                f"only {given} was given: give both start_date and end_date (inclusive), "
                "or neither to run the data interval"
            )
        if interval_start is None or interval_end is None:
            raise InvalidRunWindow(
                "this run has no logical date, so it has no data interval: give start_date and "
                "end_date (inclusive) in the run's parameters, or trigger it with a logical date"
            )
        return cls(
            interval_start.date(), max(interval_end.date(), interval_start.date() + dt.timedelta(days=1))
        )


def _as_date(value: Any) -> dt.date | None:
    if value in (None, ""):
        return None
    if isinstance(value, dt.datetime):
        return value.date()
    if isinstance(value, dt.date):
        return value
    try:
        return dt.date.fromisoformat(str(value))
    except ValueError:
        raise InvalidRunWindow(f"{value!r} is not a date: give dates as YYYY-MM-DD") from None
