"""The tool's notion of now: wall clock + config's clock_offset_seconds.

The twin's backend reads the same offset, so tests choose the market state.
"""
from __future__ import annotations

import datetime as dt


def now_utc(offset_seconds: float = 0.0) -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc) + dt.timedelta(seconds=offset_seconds)


def iso(ts: dt.datetime) -> str:
    return ts.astimezone(dt.timezone.utc).isoformat(timespec="seconds")
