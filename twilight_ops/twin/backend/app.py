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
    clock.json   {"offset_seconds": N}   backend now = wall clock + N (same as the tool's
                                         twilight.clock_offset_seconds)
    faults.json  {"price": "<fault>" | ["<fault>", ...], "slow_ms": 800}   (FAULTS below)
        close_raw_null  qfq_without_raw  legacy_body  mixed_envelope  stale_freshness_zero
        http_500  canonical_unit_violation  chain_exhausted (502)  slow (+slow_ms latency)
        Unknown names are ignored with one stderr warning.

Known market states (Asia/Shanghai session hours, Mon-Fri; holidays are not modelled):
    pre_open      before 09:30
    open          09:30-11:30 and 13:00-15:00
    lunch_break   11:30-13:00
    closed_final  from 15:00; also every historical (?date=) quote
    closed        Saturday and Sunday

Warehouse file: opened once at start-up and held read-write until SIGTERM (CHECKPOINT, then
close), so no other process can open it meanwhile.  When running as root it is chowned to the
owner of its directory (the operator on the host), like a file the operator could restore.

Audit: one provider_audit_log row per /price request that passed authentication —
successes and every error (400, 404, 5xx, 502).  401s are not recorded: unauthenticated
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

MARKET_STATES = ("pre_open", "open", "lunch_break", "closed_final", "closed")
SHANGHAI = timezone(timedelta(hours=8), "Asia/Shanghai")  # no DST since 1991; needs no tzdata
SESSIONS = ((dtime(9, 30), dtime(11, 30)), (dtime(13, 0), dtime(15, 0)))
SESSION_MINUTES = 240
SPOT, DAILY = "akshare-spot", "tushare-daily"
UNITS = {"close_raw": "yuan", "close_qfq": "yuan", "close_hfq": "yuan", "open_raw": "yuan",
         "high_raw": "yuan", "low_raw": "yuan", "volume": "hand", "amount": "kyuan"}
CODE_RE = re.compile(r"^\d{6}\.(?:SH|SZ|BJ)$")


# ----------------------------------------------------------------------------- clock and sessions


def market_state(now: datetime) -> str:
    """The session state at `now` (any timezone-aware instant)."""
    local = now.astimezone(SHANGHAI)
    if local.weekday() >= 5:
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


def at_shanghai(day: date, t: dtime) -> datetime:
    return datetime.combine(day, t, SHANGHAI)


def served_session(now: datetime) -> tuple[date, datetime]:
    """Outside "open": (trade_date, close instant) of the session whose data is served."""
    local = now.astimezone(SHANGHAI)
    state = market_state(now)
    if state == "lunch_break":
        return local.date(), at_shanghai(local.date(), SESSIONS[0][1])
    if state == "closed_final":
        return local.date(), at_shanghai(local.date(), SESSIONS[1][1])
    day = previous_weekday(local.date())  # pre_open and weekends serve the last full session
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


class QuoteError(Exception):
    """A /price request that cannot be served: HTTP status, error name, one-line detail."""

    def __init__(self, status: int, error: str, detail: str, chain: tuple[str, ...] = ()):
        super().__init__(detail)
        self.status, self.error, self.detail, self.chain = status, error, detail, chain


def provider_chain(state: str) -> tuple[str, ...]:
    return (SPOT, DAILY) if state == "open" else (DAILY, SPOT)


def fetch_quote(code: str, now: datetime, day: date | None = None) -> Quote:
    """What the provider chain returns for `code` at `now` (latest) or on `day` (history)."""
    if not CODE_RE.fullmatch(code or ""):
        raise QuoteError(400, "BadRequest", f"code {code[:32]!r} is not a ts_code like 600519.SH")
    today = now.astimezone(SHANGHAI).date()
    if day is not None and day > today:
        raise QuoteError(400, "BadRequest", f"date {day} is in the future")
    state = "closed_final" if day is not None and day < today else market_state(now)
    chain = provider_chain(state)
    if code not in LISTINGS:
        raise QuoteError(502, "ChainExhausted", f"no provider in {list(chain)} knows {code}", chain)
    latest = adj_factor(code, today)
    if day is not None and day < today:
        if day.weekday() >= 5:
            raise QuoteError(404, "NoTradingDay", f"{day} is not a trading day")
        close_at = at_shanghai(day, SESSIONS[1][1])
        return Quote(code, day, daily_bar(code, day), adj_factor(code, day), latest, close_at, DAILY, chain[:1], state)
    if state == "open":
        bar = daily_bar(code, today, session_progress(now))
        return Quote(code, today, bar, latest, latest, now, SPOT, chain[:1], state)
    trade_date, close_at = served_session(now)
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
    """Per-code cache of quotes fetched during "open"; an entry lives `ttl` seconds."""

    def __init__(self, ttl: float):
        self.ttl = ttl
        self._entries: dict[str, Quote] = {}
        self._lock = threading.Lock()

    def get(self, code: str, now: datetime, fetch: Callable[[], Quote]) -> Quote:
        with self._lock:
            hit = self._entries.get(code)
            if hit is not None and 0 <= (now - hit.as_of).total_seconds() < self.ttl and market_state(now) == "open":
                return hit
            quote = fetch()
            if quote.market_state == "open":
                self._entries[code] = quote
            else:
                self._entries.pop(code, None)
            return quote


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


_UNIT_DETAIL = "akshare-spot returned amount in yuan; canonical unit is kyuan"

# name -> transform of a successful reply.  Add a fault by adding an entry.
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
}
ALWAYS = {"slow"}  # faults that also apply to error replies


def apply_faults(reply: Reply, names: list[str], params: Mapping[str, Any], warn: Callable[[str], None]) -> Reply:
    for name in names:
        fault = FAULTS.get(name)
        if fault is None:
            warn(f"WARNING unknown fault {name!r} ignored; known: {', '.join(sorted(FAULTS))}")
        elif reply.status == 200 or name in ALWAYS:
            reply = fault(reply, params)
    return reply


def parse_faults(raw: Any) -> tuple[list[str], dict[str, Any]]:
    """faults.json -> (fault names for /price, parameters)."""
    if not isinstance(raw, dict):
        return [], {}
    names = raw.get("price", [])
    if isinstance(names, str):
        names = [names]
    elif not isinstance(names, list):
        names = []
    return [n for n in names if isinstance(n, str)], {k: v for k, v in raw.items() if k != "price"}


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


class AuditLog:
    """The warehouse, opened once read-write for the life of the process (lifespan-style)."""

    def __init__(self, path: str):
        import duckdb  # here, not at import: keeps `--healthcheck` and imports cheap

        self._con = duckdb.connect(path)
        self._con.execute(AUDIT_DDL)
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
        self._warned: set[str] = set()

    def _read_json(self, name: str) -> Any:
        path = self.config.data_dir / name
        try:
            return json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as e:
            self.warn_once(f"WARNING ignoring unreadable {path}: {e}")
            return None

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

    def authorized(self, header: str | None) -> bool:
        if not self.config.token or not header or not header.startswith("Bearer "):
            return False
        return hmac.compare_digest(header[7:].strip().encode(), self.config.token.encode())

    def price(self, query: Mapping[str, list[str]], now: datetime, faults: list[str], params: Mapping[str, Any]) -> Reply:
        """The /price reply for an authorized request (pure given `now` and the faults)."""
        code = (query.get("code") or [""])[0]
        try:
            day = _parse_date(query)
            if day is not None and day != now.astimezone(SHANGHAI).date():
                quote = fetch_quote(code, now, day)  # history (or a future date: 400)
            elif code in LISTINGS:
                quote = self.cache.get(code, now, lambda: fetch_quote(code, now))
            else:
                quote = fetch_quote(code, now)  # raises: malformed (400) or unknown (502)
        except QuoteError as e:
            reply = Reply(e.status, {"error": e.error, "detail": e.detail, "ts_code": code[:32] or None, "source_chain": list(e.chain)},
                          error=e.error, chain=e.chain)
            return apply_faults(reply, faults, params, self.warn_once)
        body = legacy_envelope(quote) if is_legacy(self.config.version) else w4_envelope(quote, now, new_tool_call_id())
        reply = Reply(200, body, quote=quote, chain=quote.source_chain)
        return apply_faults(reply, faults, params, self.warn_once)

    def serve_price(self, query: Mapping[str, list[str]], auth: str | None) -> Reply:
        """Authenticate, answer, audit and log one /price request."""
        started = time.monotonic()
        if not self.authorized(auth):
            reply = Reply(401, {"error": "Unauthorized", "detail": "send Authorization: Bearer <operator token>"}, error="Unauthorized")
            log_line("HTTP 401 GET /price error=Unauthorized")
            return reply
        now = self.now()
        faults, params = parse_faults(self._read_json("faults.json"))
        try:
            reply = self.price(query, now, faults, params)
        except Exception as e:  # a bug here must still answer, log and audit like any 500
            reply = Reply(500, {"error": "InternalServerError", "detail": type(e).__name__}, error="InternalServerError",
                          note="ERROR unhandled: " + " | ".join(traceback.format_exception(e)[-3:]).replace("\n", " "))
        if reply.delay:
            time.sleep(reply.delay)  # the injected latency itself, not a wait
        latency_ms = (time.monotonic() - started) * 1000
        quote = reply.quote
        code = (query.get("code") or [""])[0] or None
        state = quote.market_state if quote else market_state(now)
        served_by = quote.source if quote and reply.status == 200 else None
        if self.audit is not None:
            self.audit.record(now, code[:32] if code else None, served_by, reply.chain, state, latency_ms,
                              reply.status, reply.error, self.config.version, ",".join(faults) or None)
        if reply.note:
            log_line(reply.note)
        detail = f"served_by={served_by}" if reply.status == 200 else f"error={reply.error} chain={','.join(reply.chain) or '-'}"
        log_line(f"HTTP {reply.status} GET /price code={code} state={state} {detail} latency_ms={latency_ms:.1f}")
        return reply


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: Server

    def do_GET(self) -> None:  # http.server's naming
        url = urlsplit(self.path)
        app = self.server.app
        if url.path == "/healthz":
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
        audit = AuditLog(config.warehouse)
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
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        audit.close()
        log_line("warehouse checkpointed and closed; bye")
    return 0


if __name__ == "__main__":
    sys.exit(main())
