"""The market state reality has (runbook T+00:35 check 1): Asia/Shanghai clock + trading calendar.

    expected_state(now, trading_day)  pre_open · open · lunch_break · closed_final · closed
    trading_day(days, day)            is_open from Tushare trade_cal rows ({YYYYMMDD: 0|1}), None if not covered
    weekday(day)                      the fallback when trade_cal cannot be reached

Sessions 09:30-11:30 and 13:00-15:00.  "closing" is never expected: it is the backend's
answer when its own trade_cal seed is stale (runbook §4).
"""
from __future__ import annotations

import datetime as dt
from typing import Mapping
from zoneinfo import ZoneInfo

SHANGHAI = ZoneInfo("Asia/Shanghai")
SESSIONS = ((dt.time(9, 30), dt.time(11, 30)), (dt.time(13, 0), dt.time(15, 0)))


def shanghai(now: dt.datetime) -> dt.datetime:
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    return now.astimezone(SHANGHAI)


def expected_state(now: dt.datetime, trading_day: bool) -> str:
    if not trading_day:
        return "closed"
    t = shanghai(now).time()
    (am_open, am_close), (pm_open, pm_close) = SESSIONS
    if t < am_open:
        return "pre_open"
    if t < am_close or pm_open <= t < pm_close:
        return "open"
    return "lunch_break" if t < pm_open else "closed_final"


def trading_day(days: Mapping[str, int], day: dt.date) -> bool | None:
    value = days.get(day.strftime("%Y%m%d"))
    return None if value is None else int(value) == 1


def weekday(day: dt.date) -> bool:
    return day.weekday() < 5
