"""The library's one clock: naive UTC timestamps, as every table it writes stores them."""

from __future__ import annotations

import datetime as dt


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.UTC).replace(tzinfo=None)
