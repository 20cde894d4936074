"""Stand-in twilight-drive backend for the staging twin (Python stdlib + duckdb only).

Routes
    GET /healthz                          200 {"ok": true}
    GET /version                          200 {"version": "<TWILIGHT_IMAGE_VERSION>"}
    GET /price?code=600519.SH[&date=D]    Authorization: Bearer <OPERATOR_TOKEN> required

Environment (read once at start-up)
    OPERATOR_TOKEN          bearer token /price accepts; unset or empty -> every /price is 401
    TWILIGHT_IMAGE_VERSION  release tag; "v0.2.*" serves the legacy envelope, anything else W4
    WAREHOUSE               DuckDB file, default /data/warehouse.duckdb (held open read-write)
    CACHE_TTL_SECONDS       quote cache TTL during "open", default 60
    TWILIGHT_DATA_DIR       where clock.json and faults.json live, default /data

Files (read on every request, so a test or an operator flips them without a restart)
    clock.json      {"offset_seconds": N}   backend now = wall clock + N (same as the tool's
                                            twilight.clock_offset_seconds)
    cache.json      {"ttl_seconds": N}      quote cache TTL during "open" (overrides CACHE_TTL_SECONDS)
    trade_cal.json  Tushare's trade_cal answer {"data": {"fields": [...], "items": [...]}}: the
                    MarketState resolver's seed.  Its closed days are "closed"; a day it does not
                    cover (a stale seed) is "closing" on every call.  Absent: every weekday trades.
    release_faults.json  {"<version>": "never-healthy" | "restart-loop"}: a broken release (twin
                    fault): never-healthy makes /healthz answer 503 for that version (read per
                    request); restart-loop makes it exit 1 about a second after start (read at start),
                    its /healthz 503 until then (never healthy, however loaded the machine)
    faults.json     {"price": "<fault>" | ["<fault>", ...], "slow_ms": 800,
                     "rates": {"<fault>": 0.06}, "akshare_fail_rate": 0.3}   (KNOWN_FAULTS below)
        close_raw_null  qfq_without_raw  legacy_body  mixed_envelope  stale_freshness_zero
        http_500  canonical_unit_violation  chain_exhausted (502)  slow (+slow_ms latency)
        close_qfq_null_history  as_of_backwards  unknown_code_500  audit_write_failed (500, no audit row)
        akshare_down (every akshare-spot call fails: tushare-daily serves)
        "rates" makes a fault fire on that share of the replies it applies to, every-Nth style
        (0.06: 6 of every 100), so a test knows the count.  Unknown names are ignored with one
        stderr warning.

The Composer chain: in a live state (open, closing) akshare-spot is asked first and fails on
akshare_fail_rate of the calls (default 0.3, every-Nth: calls 4, 7, 10 of every 10); then
tushare-daily serves the same snapshot and source_chain is [akshare-spot, tushare-daily].
Only cache misses ask the chain; a cache hit reports the provider that served the cached quote.

Known market states (Asia/Shanghai session hours; trading days from trade_cal.json, else Mon-Fri):
    pre_open      before 09:30
    open          09:30-11:30 and 13:00-15:00
    lunch_break   11:30-13:00
    closed_final  from 15:00; also every historical (?date=) quote
    closed        a non-trading day (Saturday, Sunday, a closed day of the calendar)
    closing       every call while the trade_cal seed does not cover today (stale); quotes are
                  fetched live (as_of = now) and never cached, so freshness_seconds stays 0

Warehouse file: opened once at start-up and held read-write until SIGTERM (CHECKPOINT, then
close), so no other process can open it meanwhile.  When running as root it is chowned to the
owner of its directory (the operator on the host), like a file the operator could restore.

Audit: one provider_audit_log row per /price request that passed authentication —
successes and every error (400, 404, 5xx, 502) — except when the audit write itself fails
(audit_write_failed: 500, logged "ERROR AuditLog write failed", no row).  401s are not recorded: unauthenticated
callers must not be able to write to the warehouse.  Each request logs one stderr line
"HTTP <status> GET /price ..." (a 502 reads "HTTP 502 ... error=ChainExhausted").

Run: python3 app.py [--host 0.0.0.0] [--port 8000];  python3 app.py --healthcheck
"""
from __future__ import annotations

import argparse
import dataclasses
import hashlib
import hmac
import json
import math
import os
import re
import secrets
import signal
import sys
import threading
import time
import traceback
import urllib.request
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta, timezone
from datetime import time as dtime
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

MARKET_STATES = ("pre_open", "open", "lunch_break", "closed_final", "closed", "closing")
LIVE_STATES = ("open", "closing")  # the Composer asks akshare-spot first and quotes as_of = now
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991; needs no tzdata
SESSIONS = ((dtime(9, 30), dtime(11, 30)), (dtime(13, 0), dtime(15, 0)))
SESSION_MINUTES = 240
SPOT, DAILY = "akshare-spot", "tushare-daily"
UNITS = {"close_raw": "yuan", "close_qfq": "yuan", "close_hfq": "yuan", "open_raw": "yuan",
         "high_raw": "yuan", "low_raw": "yuan", "volume": "hand", "amount": "kyuan"}
CODE_RE = re.compile(r"^\d{6}\.(?:SH|SZ|BJ)$")


# ----------------------------------------------------------------------------- clock and sessions


@dataclasses.dataclass(frozen=True)
class TradeCalendar:
    """The trade_cal seed: which days in [first, last] the exchange is open (Tushare's trade_cal rows)."""

    first: date
    last: date
    closed: frozenset[date]  # days in [first, last] with is_open = 0

    def is_open(self, day: date) -> bool | None:
        """True / False for a day the seed covers; None past its ends (the seed is stale there)."""
        if not self.first <= day <= self.last:
            return None
        return day not in self.closed


TRADE_CAL_FIELDS = ["exchange", "cal_date", "is_open", "pretrade_date"]


def trade_cal_seed(first: date, last: date, holidays: tuple[date, ...] = (), exchange: str = "SSE") -> dict[str, Any]:
    """A trade_cal seed as Tushare's API answers it: weekdays open except `holidays`."""
    items, day, previous = [], first, None
    while day <= last:
        is_open = day.weekday() < 5 and day not in holidays
        items.append([exchange, day.strftime("%Y%m%d"), int(is_open), previous.strftime("%Y%m%d") if previous else None])
        if is_open:
            previous = day
        day += timedelta(days=1)
    return {"api_name": "trade_cal", "data": {"fields": TRADE_CAL_FIELDS, "items": items}}


def _yyyymmdd(text: str) -> date:
    """`20250102` -> date(2025, 1, 2); ValueError for anything else (a tenth of strptime's cost: a seed
    holds ≈ 7,700 days)."""
    if len(text) != 8 or not text.isdigit():
        raise ValueError(text)
    return date(int(text[:4]), int(text[4:6]), int(text[6:]))


def parse_trade_cal(raw: Any) -> TradeCalendar:
    """A trade_cal seed -> TradeCalendar; ValueError naming what is wrong."""
    data = raw.get("data") if isinstance(raw, dict) else None
    if not isinstance(data, dict) or not isinstance(data.get("fields"), list) or not isinstance(data.get("items"), list):
        raise ValueError('not a trade_cal answer: expected {"data": {"fields": [...], "items": [...]}}')
    fields = data["fields"]
    if "cal_date" not in fields or "is_open" not in fields:
        raise ValueError("trade_cal fields lack cal_date or is_open")
    i_date, i_open = fields.index("cal_date"), fields.index("is_open")
    days: dict[date, bool] = {}
    for item in data["items"]:
        try:
            days[_yyyymmdd(str(item[i_date]))] = int(item[i_open]) == 1
        except (IndexError, TypeError, ValueError):
            raise ValueError(f"trade_cal item {str(item)[:60]} is not [exchange, YYYYMMDD, 0|1, ...]") from None
    if not days:
        raise ValueError("trade_cal has no items")
    return TradeCalendar(min(days), max(days), frozenset(d for d, is_open in days.items() if not is_open))


def market_state(now: datetime, calendar: TradeCalendar | None = None) -> str:
    """The session state at `now` (any timezone-aware instant).

    Without a calendar every weekday trades.  With one, its closed days are "closed", and a
    day it does not cover is "closing" (the resolver's answer when the trade_cal seed is stale).
    """
    local = now.astimezone(SHANGHAI)
    trading = calendar.is_open(local.date()) if calendar is not None else local.weekday() < 5
    if trading is None:
        return "closing"
    if not trading:
        return "closed"
    t = local.time()
    (am_open, am_close), (pm_open, pm_close) = SESSIONS
    if t < am_open:
        return "pre_open"
    if t < am_close or pm_open <= t < pm_close:
        return "open"
    return "lunch_break" if t < pm_open else "closed_final"


def previous_weekday(day: date) -> date:
    day -= timedelta(days=1)
    while day.weekday() >= 5:
        day -= timedelta(days=1)
    return day


def previous_trading_day(day: date, calendar: TradeCalendar | None = None) -> date:
    """The trading day before `day`: from the calendar where it covers, else the previous weekday."""
    day -= timedelta(days=1)
    while not _trades(day, calendar):
        day -= timedelta(days=1)
    return day


def _trades(day: date, calendar: TradeCalendar | None) -> bool:
    known = calendar.is_open(day) if calendar is not None else None
    return day.weekday() < 5 if known is None else known


def at_shanghai(day: date, t: dtime) -> datetime:
    return datetime.combine(day, t, SHANGHAI)


def served_session(now: datetime, calendar: TradeCalendar | None = None) -> tuple[date, datetime]:
    """Outside "open": (trade_date, close instant) of the session whose data is served."""
    local = now.astimezone(SHANGHAI)
    state = market_state(now, calendar)
    if state == "lunch_break":
        return local.date(), at_shanghai(local.date(), SESSIONS[0][1])
    if state == "closed_final":
        return local.date(), at_shanghai(local.date(), SESSIONS[1][1])
    day = previous_trading_day(local.date(), calendar)  # pre_open and closed days serve the last full session
    return day, at_shanghai(day, SESSIONS[1][1])


def session_progress(at: datetime) -> float:
    """Fraction of the day's 240 trading minutes elapsed at `at` (0..1)."""
    t = at.astimezone(SHANGHAI)
    minutes = 0.0
    for start, end in SESSIONS:
        s, e = at_shanghai(t.date(), start), at_shanghai(t.date(), end)
        minutes += max(0.0, (min(t, e) - s).total_seconds() / 60)
    return min(1.0, minutes / SESSION_MINUTES)


def rfc3339(instant: datetime) -> str:
    return instant.astimezone(timezone.utc).isoformat(timespec="seconds")


# ----------------------------------------------------------------------------- synthetic market


@dataclasses.dataclass(frozen=True)
class Listing:
    name: str
    price: float  # level the synthetic series oscillates around, yuan
    factor: float  # adj_factor in 2015, before any dividend
    dividend: float  # factor growth per yearly ex-date
    volume: int  # typical daily volume, hands


LISTINGS: dict[str, Listing] = {
    "600519.SH": Listing("Kweichow Moutai", 1650.0, 6.5, 0.012, 32_000),
    "000001.SZ": Listing("Ping An Bank", 11.5, 95.0, 0.045, 1_100_000),
    "300750.SZ": Listing("CATL", 210.0, 1.2, 0.008, 250_000),
    "601318.SH": Listing("Ping An Insurance", 48.0, 7.8, 0.05, 600_000),
    "430047.BJ": Listing("Nuosi Landi", 13.0, 1.0, 0.0, 20_000),
    "000858.SZ": Listing("Wuliangye", 150.0, 4.9, 0.025, 180_000),
    "600036.SH": Listing("China Merchants Bank", 35.0, 8.3, 0.05, 700_000),
}
EX_DATE = (6, 20)  # yearly ex-dividend day for every listing
FIRST_EX_YEAR = 2015


@dataclasses.dataclass(frozen=True)
class Bar:
    open: float
    high: float
    low: float
    close: float
    volume: int  # hands
    amount: float  # kyuan


def _unit(*parts: object) -> float:
    """Deterministic pseudo-random number in [0, 1) from `parts`."""
    digest = hashlib.sha256("|".join(map(str, parts)).encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def daily_bar(code: str, day: date, progress: float = 1.0) -> Bar:
    """The day's bar; with progress < 1 the bar as it stands part-way through the session.

    Intraday price = open + (close-open)*p + A*sin(3*pi*p), which stays within
    [min(open, close) - A, max(open, close) + A] ⊂ [low, high], so low <= open, close <= high.
    """
    lst = LISTINGS[code]
    wave = 1 + 0.08 * math.sin(day.toordinal() / 29 + _unit(code) * 6.28)
    close = lst.price * wave * (1 + 0.03 * (_unit(code, day, "c") - 0.5))
    open_ = close * (1 + 0.02 * (_unit(code, day, "o") - 0.5))
    wiggle = 0.004 * close
    high = max(open_, close) + wiggle + 0.006 * close * _unit(code, day, "h")
    low = min(open_, close) - wiggle - 0.006 * close * _unit(code, day, "l")
    price = open_ + (close - open_) * progress + wiggle * math.sin(3 * math.pi * progress)
    volume = int(lst.volume * (0.7 + 0.6 * _unit(code, day, "v")) * progress)
    amount = volume * 100 * (open_ + price) / 2 / 1000  # hands * 100 shares * yuan / 1000 = kyuan
    return Bar(round(open_, 2), round(high, 2), round(low, 2), round(price, 2), volume, round(amount, 1))


def adj_factor(code: str, day: date) -> float:
    """Back-adjustment factor on `day`: grows at each yearly ex-date."""
    lst = LISTINGS[code]
    events = sum(1 for y in range(FIRST_EX_YEAR, day.year + 1) if date(y, *EX_DATE) <= day)
    return round(lst.factor * (1 + lst.dividend) ** events, 6)


# ----------------------------------------------------------------------------- quotes and envelopes


@dataclasses.dataclass(frozen=True)
class Quote:
    ts_code: str
    trade_date: date
    bar: Bar
    adj_factor: float
    adj_factor_latest: float
    as_of: datetime  # aware; the instant the numbers describe
    source: str
    source_chain: tuple[str, ...]
    market_state: str
    historical: bool = False  # answered a ?date= before today


class QuoteError(Exception):
    """A /price request that cannot be served: HTTP status, error name, one-line detail."""

    def __init__(self, status: int, error: str, detail: str, chain: tuple[str, ...] = ()):
        super().__init__(detail)
        self.status, self.error, self.detail, self.chain = status, error, detail, chain


def provider_chain(state: str) -> tuple[str, ...]:
    return (SPOT, DAILY) if state in LIVE_STATES else (DAILY, SPOT)


def fetch_quote(code: str, now: datetime, day: date | None = None, *,
                calendar: TradeCalendar | None = None, akshare_ok: bool = True) -> Quote:
    """What the Composer's provider chain returns for `code` at `now` (latest) or on `day` (history).

    In a live state (open, closing) akshare-spot is asked first; when it fails (`akshare_ok`
    False) tushare-daily serves the same intraday snapshot and source_chain holds both.
    """
    if not CODE_RE.fullmatch(code or ""):
        raise QuoteError(400, "BadRequest", f"code {code[:32]!r} is not a ts_code like 600519.SH")
    today = now.astimezone(SHANGHAI).date()
    if day is not None and day > today:
        raise QuoteError(400, "BadRequest", f"date {day} is in the future")
    state = "closed_final" if day is not None and day < today else market_state(now, calendar)
    chain = provider_chain(state)
    if code not in LISTINGS:
        raise QuoteError(502, "ChainExhausted", f"no provider in {list(chain)} knows {code}", chain)
    latest = adj_factor(code, today)
    if day is not None and day < today:
        if day.weekday() >= 5 or (calendar is not None and calendar.is_open(day) is False):
            raise QuoteError(404, "NoTradingDay", f"{day} is not a trading day")
        close_at = at_shanghai(day, SESSIONS[1][1])
        return Quote(code, day, daily_bar(code, day), adj_factor(code, day), latest, close_at, DAILY, chain[:1], state, historical=True)
    if state in LIVE_STATES:
        bar = daily_bar(code, today, session_progress(now))
        tried = chain[:1] if akshare_ok else chain[:2]
        return Quote(code, today, bar, latest, latest, now, tried[-1], tried, state)
    trade_date, close_at = served_session(now, calendar)
    bar = daily_bar(code, trade_date, session_progress(close_at))
    return Quote(code, trade_date, bar, adj_factor(code, trade_date), latest, close_at, DAILY, chain[:1], state)


def freshness(quote: Quote, now: datetime) -> int:
    return max(0, int((now - quote.as_of).total_seconds()))


def w4_envelope(quote: Quote, now: datetime, tool_call_id: str) -> dict[str, Any]:
    """The v0.3 /price body: every field of the runbook's T+00:15 sample."""
    b = quote.bar
    return {
        "ts_code": quote.ts_code,
        "trade_date": quote.trade_date.isoformat(),
        "close_raw": b.close,
        "close_qfq": round(b.close * quote.adj_factor / quote.adj_factor_latest, 4),
        "close_hfq": round(b.close * quote.adj_factor, 4),
        "open_raw": b.open,
        "high_raw": b.high,
        "low_raw": b.low,
        "volume": b.volume,
        "amount": b.amount,
        "adj_factor": quote.adj_factor,
        "adj_factor_latest": quote.adj_factor_latest,
        "as_of": rfc3339(quote.as_of),
        "freshness_seconds": freshness(quote, now),
        "source": quote.source,
        "source_chain": list(quote.source_chain),
        "market_state": quote.market_state,
        "units": dict(UNITS),
        "cite": {"kind": "tool", "tool_call_id": tool_call_id, "source": quote.source},
    }


def legacy_envelope(quote: Quote) -> dict[str, Any]:
    """The v0.2 /price body (DailyCache era): one metric, one value."""
    return {
        "code": quote.ts_code,
        "metric": "close",
        "value": quote.bar.close,
        "unit": "yuan",
        "trade_date": quote.trade_date.isoformat(),
        "source": quote.source,
        "as_of": rfc3339(quote.as_of),
    }


def is_legacy(version: str) -> bool:
    return version.startswith("v0.2.")


def new_tool_call_id() -> str:
    return "tc_" + secrets.token_hex(12)


# ----------------------------------------------------------------------------- quote cache


class QuoteCache:
    """Per-code cache of quotes fetched during "open"; an entry lives `ttl` seconds.

    Nothing is cached in any other state, "closing" included: there every call is a fetch
    and freshness_seconds stays 0 (runbook §4, "always-CLOSING state").
    """

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, Quote] = {}
        self._lock = threading.Lock()

    def get(self, code: str, now: datetime, fetch: Callable[[], Quote], ttl: float | None = None,
            state: str | None = None) -> Quote:
        ttl = self.ttl if ttl is None else ttl
        state = market_state(now) if state is None else state
        with self._lock:
            hit = self._entries.get(code)
            if hit is not None and 0 <= (now - hit.as_of).total_seconds() < ttl and state == "open":
                return hit
            quote = fetch()
            if quote.market_state == "open":
                self._entries[code] = quote
            else:
                self._entries.pop(code, None)
            return quote


class EveryNth:
    """Deterministic shares: of every run of calls under one key, a `rate` share fires, spread
    evenly (rate 0.3: calls 4, 7, 10 of every 10; rate 0.06: 6 of every 100).  Same calls, same
    answers, so a test knows how many fired; the count restarts when the rate changes."""

    SCALE = 1_000_000

    def __init__(self) -> None:
        self._counts: dict[tuple[str, int], int] = {}
        self._lock = threading.Lock()

    def fires(self, key: str, rate: float) -> bool:
        r = round(min(1.0, max(0.0, rate)) * self.SCALE)
        with self._lock:
            k = self._counts.get((key, r), 0)
            self._counts[(key, r)] = k + 1
        return (k + 1) * r // self.SCALE > k * r // self.SCALE


# ----------------------------------------------------------------------------- replies and faults


@dataclasses.dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    quote: Quote | None = None
    error: str | None = None
    chain: tuple[str, ...] = ()
    delay: float = 0.0  # seconds the handler waits before answering (fault "slow")
    note: str | None = None  # an extra stderr line
    audited: bool = True  # False: the audit write failed, so no provider_audit_log row


Fault = Callable[[Reply, Mapping[str, Any]], Reply]


def _close_raw_null(reply: Reply, params: Mapping[str, Any]) -> Reply:
    """Composer returned no quote: every close is null."""
    nulls = {"close_raw": None, "close_qfq": None, "close_hfq": None} if "close_raw" in reply.body else {"value": None}
    return dataclasses.replace(reply, body={**reply.body, **nulls})


def _qfq_without_raw(reply: Reply, params: Mapping[str, Any]) -> Reply:
    return dataclasses.replace(reply, body={k: v for k, v in reply.body.items() if k != "close_raw"})


def _stale_freshness_zero(reply: Reply, params: Mapping[str, Any]) -> Reply:
    return dataclasses.replace(reply, body={**reply.body, "freshness_seconds": 0})


def _legacy_body(reply: Reply, params: Mapping[str, Any]) -> Reply:
    assert reply.quote is not None
    return dataclasses.replace(reply, body=legacy_envelope(reply.quote))


def _mixed(reply: Reply, params: Mapping[str, Any]) -> Reply:
    assert reply.quote is not None
    return dataclasses.replace(reply, body={**reply.body, "code": reply.quote.ts_code, "metric": "close", "value": reply.quote.bar.close})


def _error(status: int, error: str, detail: str, note: str | None = None) -> Fault:
    def apply(reply: Reply, params: Mapping[str, Any]) -> Reply:
        return dataclasses.replace(reply, status=status, body={"error": error, "detail": detail}, error=error, note=note)
    return apply


def _slow(reply: Reply, params: Mapping[str, Any]) -> Reply:
    slow_ms = params.get("slow_ms", 800)
    if isinstance(slow_ms, bool) or not isinstance(slow_ms, (int, float)) or not 0 <= slow_ms <= 60_000:
        slow_ms = 800
    return dataclasses.replace(reply, delay=reply.delay + slow_ms / 1000)


def _close_qfq_null_history(reply: Reply, params: Mapping[str, Any]) -> Reply:
    """The adj_factor lookup for past dates is broken: history keeps close_raw, loses close_qfq."""
    if reply.quote is None or not reply.quote.historical or "close_qfq" not in reply.body:
        return reply
    return dataclasses.replace(reply, body={**reply.body, "close_qfq": None})


AS_OF_STEP_BACK = 60  # seconds


def _as_of_backwards(reply: Reply, params: Mapping[str, Any]) -> Reply:
    """A clock bug: the served as_of moves back as the cached quote ages (age g -> as_of - 60 - 2g)."""
    if reply.quote is None or "as_of" not in reply.body:
        return reply
    age = reply.body.get("freshness_seconds")
    age = age if isinstance(age, int) else 0
    served = reply.quote.as_of - timedelta(seconds=AS_OF_STEP_BACK + 2 * age)
    body = {**reply.body, "as_of": rfc3339(served)}
    if "freshness_seconds" in body:
        body["freshness_seconds"] = AS_OF_STEP_BACK + 3 * age
    return dataclasses.replace(reply, body=body)


def _unknown_code_500(reply: Reply, params: Mapping[str, Any]) -> Reply:
    """The Composer's unknown-code path raises instead of answering 502 ChainExhausted."""
    code = str(reply.body.get("ts_code") or "")
    return dataclasses.replace(reply, status=500, body={"error": "InternalServerError", "detail": "KeyError"},
                               error="InternalServerError",
                               note=f"ERROR unhandled: KeyError: {code!r} in Composer.resolve (fault injected: unknown_code_500)")


def _audit_write_failed(reply: Reply, params: Mapping[str, Any]) -> Reply:
    """The AuditLog insert fails inside the request, so the request fails: 500, and no audit row."""
    return dataclasses.replace(reply, status=500, body={"error": "AuditLogWriteError", "detail": "provider_audit_log insert failed"},
                               error="AuditLogWriteError", audited=False,
                               note="ERROR AuditLog write failed: IOException: could not append to provider_audit_log "
                                    "(fault injected: audit_write_failed); answering 500")


_UNIT_DETAIL = "akshare-spot returned amount in yuan; canonical unit is kyuan"

# name -> transform of a reply.  Add a fault by adding an entry (and, unless it changes only
# successful replies, a predicate in APPLIES_TO).
FAULTS: dict[str, Fault] = {
    "close_raw_null": _close_raw_null,
    "qfq_without_raw": _qfq_without_raw,
    "stale_freshness_zero": _stale_freshness_zero,
    "legacy_body": _legacy_body,
    "mixed_envelope": _mixed,
    "http_500": _error(500, "InternalServerError", "fault injected: http_500"),
    "canonical_unit_violation": _error(500, "CanonicalUnitViolation", _UNIT_DETAIL, f"ERROR CanonicalUnitViolation: {_UNIT_DETAIL}"),
    "chain_exhausted": _error(502, "ChainExhausted", "fault injected: every provider in the chain failed"),
    "slow": _slow,
    "close_qfq_null_history": _close_qfq_null_history,
    "as_of_backwards": _as_of_backwards,
    "unknown_code_500": _unknown_code_500,
    "audit_write_failed": _audit_write_failed,
}
# Faults that act before a reply exists (App.price reads them), not as reply transforms.
FETCH_FAULTS: dict[str, str] = {
    "akshare_down": "akshare-spot fails on every call (or on faults.json rates.akshare_down of them): "
                    "the Composer falls back to tushare-daily",
}
KNOWN_FAULTS = sorted({*FAULTS, *FETCH_FAULTS})
ALWAYS = {"slow", "audit_write_failed"}  # faults that also apply to error replies


def _is_chain_exhausted(reply: Reply) -> bool:
    return reply.status == 502 and reply.error == "ChainExhausted" and reply.quote is None


# name -> which replies the fault changes; default: successful ones
APPLIES_TO: dict[str, Callable[[Reply], bool]] = {
    **{name: (lambda reply: True) for name in ALWAYS},
    "unknown_code_500": _is_chain_exhausted,
}


def _successful(reply: Reply) -> bool:
    return reply.status == 200


AKSHARE_FAIL_RATE = 0.3  # default share of akshare-spot calls that fail (faults.json akshare_fail_rate)


def valid_rate(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and 0 <= value <= 1


def fault_rates(params: Mapping[str, Any], warn: Callable[[str], None]) -> dict[str, float]:
    """faults.json "rates": {fault: share 0..1}; bad entries are dropped with a warning."""
    raw = params.get("rates")
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        warn(f"WARNING faults.json rates {str(raw)[:40]!r} is not an object; ignored")
        return {}
    rates = {}
    for name, rate in raw.items():
        if valid_rate(rate):
            rates[str(name)] = float(rate)
        else:
            warn(f"WARNING faults.json rates.{name} {rate!r} is not a share between 0 and 1; ignored")
    return rates


def akshare_fail_rate(names: list[str], params: Mapping[str, Any], warn: Callable[[str], None]) -> float:
    """The share of akshare-spot calls that fail: 1 (or its rate) under akshare_down, else
    faults.json akshare_fail_rate, else AKSHARE_FAIL_RATE."""
    if "akshare_down" in names:
        return fault_rates(params, warn).get("akshare_down", 1.0)
    rate = params.get("akshare_fail_rate", AKSHARE_FAIL_RATE)
    if not valid_rate(rate):
        warn(f"WARNING faults.json akshare_fail_rate {rate!r} is not a share between 0 and 1; using {AKSHARE_FAIL_RATE}")
        return AKSHARE_FAIL_RATE
    return float(rate)


def apply_faults(reply: Reply, names: list[str], params: Mapping[str, Any], warn: Callable[[str], None],
                 gate: EveryNth | None = None) -> Reply:
    """Apply each named fault the reply qualifies for; a fault with a rate (faults.json "rates")
    fires on that share of the replies it qualifies for (needs `gate`; without one it always fires)."""
    rates = fault_rates(params, warn) if gate is not None else {}
    for name in names:
        fault = FAULTS.get(name)
        if fault is None:
            if name not in FETCH_FAULTS:
                warn(f"WARNING unknown fault {name!r} ignored; known: {', '.join(KNOWN_FAULTS)}")
            continue
        if not APPLIES_TO.get(name, _successful)(reply):
            continue
        if gate is not None and name in rates and not gate.fires(name, rates[name]):
            continue
        reply = fault(reply, params)
    return reply


def parse_faults(raw: Any, version: str | None = None) -> tuple[list[str], dict[str, Any]]:
    """faults.json -> (fault names for /price, parameters).  With "versions": [...] the file
    applies only while one of those releases runs (a bug that ships with a release and leaves
    with its rollback); any other version sees no fault at all."""
    if not isinstance(raw, dict):
        return [], {}
    only = raw.get("versions")
    if isinstance(only, list) and version is not None and version not in only:
        return [], {}
    names = raw.get("price", [])
    if isinstance(names, str):
        names = [names]
    elif not isinstance(names, list):
        names = []
    return [n for n in names if isinstance(n, str)], {k: v for k, v in raw.items() if k not in ("price", "versions")}


# ----------------------------------------------------------------------------- audit log


AUDIT_DDL = """
CREATE TABLE IF NOT EXISTS provider_audit_log (
    ts            TIMESTAMP NOT NULL,  -- naive, UTC (backend clock, offset included)
    ts_code       VARCHAR,
    served_by     VARCHAR,             -- NULL when nothing served the request
    source_chain  VARCHAR[],
    market_state  VARCHAR,
    latency_ms    DOUBLE,
    status        INTEGER,
    error         VARCHAR,             -- NULL on success
    image_version VARCHAR,
    fault         VARCHAR
)
"""


def _match_dir_owner(path: Path) -> None:
    """Running as root in the container, hand the file to whoever owns /data on the host, so
    the operator's snapshot / restore (`cp`) works without sudo, as on tvps."""
    if os.geteuid() != 0:
        return
    owner = path.parent.stat()
    if (path.stat().st_uid, path.stat().st_gid) != (owner.st_uid, owner.st_gid):
        os.chown(path, owner.st_uid, owner.st_gid)


MIGRATIONS = {
    # twin release faults (release_faults.json): what a release does to the warehouse at its start
    "schema-regressed": ["ALTER TABLE provider_audit_log RENAME COLUMN served_by TO provider"],
    "schema-additive": ["CREATE TABLE IF NOT EXISTS price_units (ts_code VARCHAR, unit VARCHAR, since TIMESTAMP)",
                        "INSERT INTO price_units VALUES ('600519.SH', 'CNY', now()::TIMESTAMP)"],
}
LEGACY_SELECT = "SELECT ts, ts_code, served_by, latency_ms, error FROM provider_audit_log LIMIT 0"


class AuditLog:
    """The warehouse, opened once read-write for the life of the process (lifespan-style)."""

    def __init__(self, path: str, version: str = "dev", migration: str | None = None):
        import duckdb  # here, not at import: keeps `--healthcheck` and imports cheap

        self._con = duckdb.connect(path)
        self._con.execute(AUDIT_DDL)
        columns = {r[0] for r in self._con.execute(
            "SELECT column_name FROM information_schema.columns WHERE table_name = 'provider_audit_log'").fetchall()}
        if migration in MIGRATIONS and not is_legacy(version) and (migration != "schema-regressed" or "served_by" in columns):
            for stmt in MIGRATIONS[migration]:
                self._con.execute(stmt)
            log_line(f"migrated the warehouse: {migration} (twin release fault)")
        if is_legacy(version):
            try:
                self._con.execute(LEGACY_SELECT)    # what v0.2.0's code selects: it cannot read a regressed schema
            except duckdb.Error as e:
                self._con.close()
                raise RuntimeError(f"lifespan startup failed: provider_audit_log is not the v0.2.0 schema: {e}") from None
        self._con.execute("CHECKPOINT")
        self._lock = threading.Lock()
        self.closed = False
        _match_dir_owner(Path(path))

    def record(self, ts: datetime, ts_code: str | None, served_by: str | None, chain: tuple[str, ...],
               state: str | None, latency_ms: float, status: int, error: str | None, version: str, fault: str | None) -> None:
        naive_utc = ts.astimezone(timezone.utc).replace(tzinfo=None)
        with self._lock:
            if self.closed:
                return
            self._con.execute(
                "INSERT INTO provider_audit_log VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                [naive_utc, ts_code, served_by, list(chain), state, latency_ms, status, error, version, fault],
            )

    def close(self) -> None:
        with self._lock:
            if not self.closed:
                self.closed = True
                self._con.execute("CHECKPOINT")
                self._con.close()


# ----------------------------------------------------------------------------- the application


@dataclasses.dataclass(frozen=True)
class Config:
    token: str
    version: str
    warehouse: str
    cache_ttl: float
    data_dir: Path

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> Config:
        return cls(
            token=env.get("OPERATOR_TOKEN", ""),
            version=env.get("TWILIGHT_IMAGE_VERSION", "dev"),
            warehouse=env.get("WAREHOUSE", "/data/warehouse.duckdb"),
            cache_ttl=float(env.get("CACHE_TTL_SECONDS", "60")),
            data_dir=Path(env.get("TWILIGHT_DATA_DIR", "/data")),
        )


def log_line(text: str) -> None:
    sys.stderr.write(f"{datetime.now(timezone.utc).isoformat(timespec='milliseconds')} {text}\n")
    sys.stderr.flush()


def _parse_date(query: Mapping[str, list[str]]) -> date | None:
    raw = (query.get("date") or [""])[0]
    if not raw:
        return None
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", raw):
        try:
            return date.fromisoformat(raw)
        except ValueError:
            pass
    raise QuoteError(400, "BadRequest", f"date {raw[:32]!r} is not a YYYY-MM-DD calendar date")


class App:
    def __init__(self, config: Config, audit: AuditLog | None):
        self.config = config
        self.audit = audit
        self.cache = QuoteCache(config.cache_ttl)
        self.gate = EveryNth()
        self._warned: set[str] = set()
        self._calendar: tuple[tuple[int, int], TradeCalendar | None] | None = None  # (mtime_ns, size), parsed
        self._calendar_lock = threading.Lock()

    def _read_json(self, name: str) -> Any:
        path = self.config.data_dir / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            self.warn_once(f"WARNING ignoring unreadable {path}: {e}")
            return None

    def release_fault(self) -> str | None:
        """This version's entry in release_faults.json (never-healthy, restart-loop), if any."""
        raw = self._read_json("release_faults.json")
        value = raw.get(self.config.version) if isinstance(raw, dict) else None
        return value if value in ("never-healthy", "restart-loop") else None

    def warn_once(self, text: str) -> None:
        if text not in self._warned:
            self._warned.add(text)
            log_line(text)

    def now(self) -> datetime:
        raw = self._read_json("clock.json")
        offset = raw.get("offset_seconds", 0) if isinstance(raw, dict) else 0
        if not isinstance(offset, (int, float)) or isinstance(offset, bool) or not math.isfinite(offset):
            self.warn_once(f"WARNING clock.json offset_seconds {offset!r} is not a number; using 0")
            offset = 0
        return datetime.now(timezone.utc) + timedelta(seconds=offset)

    def cache_ttl(self) -> float:
        """cache.json {"ttl_seconds": N} if present and valid, else CACHE_TTL_SECONDS."""
        raw = self._read_json("cache.json")
        ttl = raw.get("ttl_seconds") if isinstance(raw, dict) else None
        if ttl is None:
            return self.config.cache_ttl
        if isinstance(ttl, bool) or not isinstance(ttl, (int, float)) or not 0 <= ttl <= 86400:
            self.warn_once(f"WARNING cache.json ttl_seconds {ttl!r} is not 0..86400 seconds; using {self.config.cache_ttl:g}")
            return self.config.cache_ttl
        return float(ttl)

    def calendar(self) -> TradeCalendar | None:
        """trade_cal.json, parsed again only when the file changes; None without one (weekdays trade)."""
        path = self.config.data_dir / "trade_cal.json"
        try:
            st = path.stat()
        except FileNotFoundError:
            return None
        key = (st.st_mtime_ns, st.st_size)
        with self._calendar_lock:     # one request parses; the others wait for it (under load, every request
            return self._calendar_for(path, key)   # thread parsing at once starved them all: /price hung)

    def _calendar_for(self, path: Path, key: tuple[int, int]) -> TradeCalendar | None:
        if self._calendar is None or self._calendar[0] != key:
            try:
                parsed: TradeCalendar | None = parse_trade_cal(json.loads(path.read_text()))
            except (OSError, ValueError) as e:
                self.warn_once(f"WARNING ignoring trade_cal seed {path}: {e}; every weekday trades")
                parsed = None
            self._calendar = (key, parsed)
        return self._calendar[1]

    def authorized(self, header: str | None) -> bool:
        if not self.config.token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.config.token.encode())

    def price(self, query: Mapping[str, list[str]], now: datetime, faults: list[str], params: Mapping[str, Any],
              calendar: TradeCalendar | None = None, ttl: float | None = None) -> Reply:
        """The /price reply for an authorized request (pure given `now`, the faults, the calendar
        and the App's counters: the cache and the every-Nth gate)."""
        code = (query.get("code") or [""])[0]
        try:
            day = _parse_date(query)
            if day is not None and day != now.astimezone(SHANGHAI).date():
                quote = fetch_quote(code, now, day, calendar=calendar)  # history (or a future date: 400)
            elif code in LISTINGS:
                state = market_state(now, calendar)

                def fetch() -> Quote:  # a cache miss: the Composer walks its chain
                    ok = state not in LIVE_STATES or not self.gate.fires("akshare", akshare_fail_rate(faults, params, self.warn_once))
                    return fetch_quote(code, now, calendar=calendar, akshare_ok=ok)

                quote = self.cache.get(code, now, fetch, ttl=ttl, state=state)
            else:
                quote = fetch_quote(code, now, calendar=calendar)  # raises: malformed (400) or unknown (502)
        except QuoteError as e:
            reply = Reply(e.status, {"error": e.error, "detail": e.detail, "ts_code": code[:32] or None, "source_chain": list(e.chain)},
                          error=e.error, chain=e.chain)
            return apply_faults(reply, faults, params, self.warn_once, self.gate)
        body = legacy_envelope(quote) if is_legacy(self.config.version) else w4_envelope(quote, now, new_tool_call_id())
        reply = Reply(200, body, quote=quote, chain=quote.source_chain)
        return apply_faults(reply, faults, params, self.warn_once, self.gate)

    def serve_price(self, query: Mapping[str, list[str]], auth: str | None) -> Reply:
        """Authenticate, answer, audit and log one /price request."""
        started = time.monotonic()
        if not self.authorized(auth):
            reply = Reply(401, {"error": "Unauthorized", "detail": "send Authorization: Bearer <operator token>"}, error="Unauthorized")
            log_line("HTTP 401 GET /price error=Unauthorized")
            return reply
        now = self.now()
        faults, params = parse_faults(self._read_json("faults.json"), self.config.version)
        calendar = self.calendar()
        try:
            reply = self.price(query, now, faults, params, calendar=calendar, ttl=self.cache_ttl())
        except Exception as e:  # a bug here must still answer, log and audit like any 500
            reply = Reply(500, {"error": "InternalServerError", "detail": type(e).__name__}, error="InternalServerError",
                          note="ERROR unhandled: " + " | ".join(traceback.format_exception(e)[-3:]).replace("\n", " "))
        if reply.delay:
            time.sleep(reply.delay)  # the injected latency itself, not a wait
        latency_ms = (time.monotonic() - started) * 1000
        quote = reply.quote
        code = (query.get("code") or [""])[0] or None
        state = quote.market_state if quote else market_state(now, calendar)
        served_by = quote.source if quote and reply.status == 200 else None
        if self.audit is not None and reply.audited:
            self.audit.record(now, code[:32] if code else None, served_by, reply.chain, state, latency_ms,
                              reply.status, reply.error, self.config.version, ",".join(faults) or None)
        if reply.note:
            log_line(reply.note)
        if reply.status == 200:
            detail = f"served_by={served_by}" + (f" chain={','.join(reply.chain)}" if len(reply.chain) > 1 else "")
        else:
            detail = f"error={reply.error} chain={','.join(reply.chain) or '-'}"
        log_line(f"HTTP {reply.status} GET /price code={code} state={state} {detail} latency_ms={latency_ms:.1f}")
        return reply


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:  # http.server's naming
        url = urlsplit(self.path)
        app = self.server.app
        if url.path == "/healthz":
            fault = app.release_fault()
            if fault == "never-healthy":
                app.warn_once("ERROR lifespan startup incomplete: provider chain not ready (twin fault never-healthy)")
                self._send(503, {"ok": False, "error": "ProviderChainNotReady"})
            elif fault == "restart-loop":       # its start-up never completes: it exits before it is healthy
                self._send(503, {"ok": False, "error": "LifespanStartupIncomplete"})
            else:
                self._send(200, {"ok": True})
        elif url.path == "/version":
            self._send(200, {"version": app.config.version})
        elif url.path == "/price":
            reply = app.serve_price(parse_qs(url.query), self.headers.get("Authorization"))
            self._send(reply.status, reply.body)
        else:
            self._send(404, {"error": "NotFound", "detail": f"no route {url.path}"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body, ensure_ascii=False).encode()
        self.send_response(status, HTTPStatus(status).phrase)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: Any) -> None:  # /price logs its own line
        if not self.path.startswith(("/price", "/healthz")):
            log_line(f"{self.command} {self.path} " + format % args)


class Server(ThreadingHTTPServer):
    daemon_threads = True
    app: App


CRASH_AFTER_SECONDS = 1.0  # the restart-loop fault: exit this long after start


def release_migration(data_dir: Path, version: str) -> str | None:
    """This version's schema fault in release_faults.json (schema-regressed, schema-additive), if any."""
    try:
        raw = json.loads((data_dir / "release_faults.json").read_text())
    except (OSError, ValueError):
        return None
    value = raw.get(version) if isinstance(raw, dict) else None
    return value if value in MIGRATIONS else None


def healthcheck(port: int) -> int:
    """Exit status for the compose healthcheck: 0 when /healthz says ok."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as r:
            return 0 if r.status == 200 and json.load(r).get("ok") is True else 1
    except (OSError, ValueError):
        return 1


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="twilight-drive stand-in backend")
    parser.add_argument("--host", default="0.0.0.0")
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument("--healthcheck", action="store_true", help="probe /healthz on 127.0.0.1:PORT and exit 0/1")
    args = parser.parse_args(argv)
    if args.healthcheck:
        return healthcheck(args.port)

    try:
        config = Config.from_env(os.environ)
    except ValueError as e:
        log_line(f"FATAL bad environment: {e}")
        return 2
    try:
        audit = AuditLog(config.warehouse, config.version, release_migration(config.data_dir, config.version))
    except Exception as e:  # duckdb.IOException on a held lock, a bad path, ...
        log_line(f"FATAL cannot open warehouse {config.warehouse}: {e}")
        return 3
    server = Server((args.host, args.port), Handler)
    server.app = App(config, audit)
    if not config.token:
        log_line("WARNING OPERATOR_TOKEN is empty: every /price request will get 401")

    def stop(signum: int, frame: Any) -> None:
        log_line(f"received {signal.Signals(signum).name}, shutting down")
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    host, port = str(server.server_address[0]), int(server.server_address[1])
    log_line(f"listening on {host}:{port} version={config.version} warehouse={config.warehouse} cache_ttl={config.cache_ttl:g}s")
    crashed = threading.Event()
    if server.app.release_fault() == "restart-loop":
        def crash() -> None:
            log_line("FATAL lifespan startup failed: AuditLog flush thread died (twin fault restart-loop); exiting 1")
            crashed.set()
            server.shutdown()

        threading.Timer(CRASH_AFTER_SECONDS, crash).start()
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        audit.close()
        log_line("warehouse checkpointed and closed; bye")
    return 1 if crashed.is_set() else 0


if __name__ == "__main__":
    sys.exit(main())
