"""The stand-in backend behaves like the real one (issue 11): the Composer chain, the trade_cal
calendar and its "closing" state, partial fault rates, the AuditLog failure, history without
close_qfq, the cache faults and a configurable TTL.  Pure logic first, then one real server.
"""
from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import pytest

from tests.unit.test_twin_backend import Backend, at, make_app, price, set_clock
from tests.unit.test_twin_backend import app

UTC = timezone.utc
WED = date(2026, 12, 2)
THU = date(2026, 12, 3)
SPOT, DAILY = "akshare-spot", "tushare-daily"


def calendar(first=date(2026, 1, 1), last=date(2026, 12, 31), holidays=()):
    return app.parse_trade_cal(app.trade_cal_seed(first, last, tuple(holidays)))


def fetches(a, n: int, now: datetime, code: str = "600519.SH", faults=(), params=None, cal=None) -> list[dict]:
    """n consecutive cache misses (TTL 0) for `code` at `now`."""
    return [a.price({"code": [code]}, now, list(faults), params or {}, calendar=cal, ttl=0).body for _ in range(n)]


# --------------------------------------------------------------------------- every-Nth shares


def test_every_nth_spreads_a_share_evenly_and_exactly():
    gate = app.EveryNth()
    assert [gate.fires("a", 0.3) for _ in range(10)] == [False, False, False, True, False, False, True, False, False, True]
    assert sum(gate.fires("b", 0.06) for _ in range(100)) == 6
    assert not any(gate.fires("c", 0) for _ in range(50)) and all(gate.fires("d", 1) for _ in range(50))
    assert [gate.fires("a", 0.5) for _ in range(4)] == [False, True, False, True]  # a new rate restarts the count
    assert sum(gate.fires("e", 0.3) for _ in range(1000)) == 300


# --------------------------------------------------------------------------- the Composer chain


def test_during_open_akshare_serves_70_percent_and_tushare_the_rest(tmp_path):
    bodies = fetches(make_app(tmp_path), 100, at(WED, 10, 0))
    assert Counter(b["source"] for b in bodies) == {SPOT: 70, DAILY: 30}
    for b in bodies:
        assert b["source_chain"] == ([SPOT] if b["source"] == SPOT else [SPOT, DAILY])
        assert b["cite"]["source"] == b["source"] and b["market_state"] == "open"
        assert b["freshness_seconds"] == 0  # the fallback serves the same intraday snapshot
    assert {b["close_raw"] for b in bodies} == {bodies[0]["close_raw"]}


@pytest.mark.parametrize("faults, params, akshare", [
    ((), {"akshare_fail_rate": 0}, 20),            # the Composer never falls back: source_chain length 1 always
    ((), {"akshare_fail_rate": 0.5}, 10),
    (("akshare_down",), {}, 0),                    # akshare broken: 0 % share during OPEN
    (("akshare_down",), {"rates": {"akshare_down": 0.25}}, 15),
    ((), {"akshare_fail_rate": "lots"}, 14),       # a bad knob: the default 30 %, with a warning
])
def test_the_akshare_failure_share_is_a_knob(tmp_path, faults, params, akshare):
    bodies = fetches(make_app(tmp_path), 20, at(WED, 13, 30), faults=faults, params=params)
    assert sum(b["source"] == SPOT for b in bodies) == akshare


def test_outside_open_tushare_serves_first_and_no_akshare_call_is_counted(tmp_path):
    a = make_app(tmp_path)
    for b in fetches(a, 5, at(WED, 16, 0), faults=["akshare_down"]):
        assert (b["source"], b["source_chain"], b["market_state"]) == (DAILY, [DAILY], "closed_final")
    assert [b["source"] for b in fetches(a, 4, at(WED, 10, 0))] == [SPOT, SPOT, SPOT, DAILY]


def test_a_cache_hit_reports_the_provider_that_served_the_cached_quote(tmp_path):
    a, t0 = make_app(tmp_path, ttl=60), at(WED, 10, 0)
    first = price(a, t0, faults=["akshare_down"]).body
    hit = price(a, t0 + timedelta(seconds=20)).body            # the fault is gone; the cached quote stays
    assert first["source_chain"] == hit["source_chain"] == [SPOT, DAILY] and hit["source"] == DAILY
    assert hit["freshness_seconds"] == 20 and hit["as_of"] == first["as_of"]


def test_the_audit_row_records_who_served_and_the_chain_tried(tmp_path):
    backend_app = app.App(app.Config(token="t", version="v0.3.0-w4-cutover", warehouse=str(tmp_path / "wh.duckdb"),
                                     cache_ttl=0, data_dir=tmp_path), app.AuditLog(str(tmp_path / "wh.duckdb")))
    set_clock(tmp_path, at(WED, 10, 0))
    for _ in range(10):
        assert backend_app.serve_price({"code": ["600519.SH"]}, "Bearer t").status == 200
    backend_app.audit.close()
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT served_by, len(source_chain), count(*) FROM provider_audit_log GROUP BY ALL ORDER BY 1").fetchall()
    assert rows == [(SPOT, 1, 7), (DAILY, 2, 3)]


# --------------------------------------------------------------------------- the trade calendar


def test_trade_cal_seed_is_tushares_answer_and_parses_back():
    seed = app.trade_cal_seed(date(2026, 9, 30), date(2026, 10, 9), (date(2026, 10, 1), date(2026, 10, 2)))
    assert seed["data"]["fields"] == ["exchange", "cal_date", "is_open", "pretrade_date"]
    assert seed["data"]["items"][:3] == [["SSE", "20260930", 1, None], ["SSE", "20261001", 0, "20260930"],
                                         ["SSE", "20261002", 0, "20260930"]]
    assert seed["data"]["items"][-1] == ["SSE", "20261009", 1, "20261008"]
    cal = app.parse_trade_cal(json.loads(json.dumps(seed)))
    assert (cal.first, cal.last) == (date(2026, 9, 30), date(2026, 10, 9))
    assert cal.closed == {date(2026, 10, 1), date(2026, 10, 2), date(2026, 10, 3), date(2026, 10, 4)}
    assert cal.is_open(date(2026, 10, 9)) is True and cal.is_open(date(2026, 10, 1)) is False
    assert cal.is_open(date(2026, 10, 10)) is None and cal.is_open(date(2026, 9, 29)) is None


@pytest.mark.parametrize("raw, words", [
    ({}, "not a trade_cal answer"),
    ({"data": {"fields": ["exchange"], "items": []}}, "lack cal_date"),
    ({"data": {"fields": ["cal_date", "is_open"], "items": [["2026-10-01", 1]]}}, "is not [exchange"),
    ({"data": {"fields": ["cal_date", "is_open"], "items": []}}, "no items"),
])
def test_a_bad_trade_cal_seed_says_what_is_wrong(raw, words):
    with pytest.raises(ValueError, match=None) as e:
        app.parse_trade_cal(raw)
    assert words in str(e.value)


def test_calendar_closed_days_and_a_stale_seed():
    cal = calendar(holidays=[WED])
    assert app.market_state(at(WED, 10, 0), cal) == "closed"
    assert app.market_state(at(THU, 10, 0), cal) == "open" and app.market_state(at(THU, 12, 0), cal) == "lunch_break"
    assert app.served_session(at(THU, 8, 0), cal) == (date(2026, 12, 1), at(date(2026, 12, 1), 15, 0))  # skips the holiday
    assert app.served_session(at(WED, 10, 0), cal) == (date(2026, 12, 1), at(date(2026, 12, 1), 15, 0))
    stale = calendar(last=date(2026, 11, 30))
    assert {app.market_state(at(WED, h, 0), stale) for h in (0, 9, 10, 12, 14, 16, 23)} == {"closing"}
    assert app.market_state(at(date(2026, 11, 30), 10, 0), stale) == "open"   # still covered: unchanged


def test_history_on_a_calendar_holiday_is_no_trading_day(tmp_path):
    a, cal = make_app(tmp_path), calendar(holidays=[date(2026, 10, 1)])
    reply = a.price({"code": ["600519.SH"], "date": ["2026-10-01"]}, at(WED, 10, 0), [], {}, calendar=cal)
    assert (reply.status, reply.error) == (404, "NoTradingDay")


def test_closing_quotes_are_live_never_cached_so_freshness_stays_zero(tmp_path):
    a, stale, t0 = make_app(tmp_path, ttl=60), calendar(last=date(2026, 11, 30)), at(WED, 16, 30)
    bodies = [a.price({"code": ["600519.SH"]}, t0 + timedelta(seconds=s), [], {}, calendar=stale).body for s in (0, 20, 45)]
    assert [b["market_state"] for b in bodies] == ["closing"] * 3
    assert [b["freshness_seconds"] for b in bodies] == [0, 0, 0]
    assert len({b["as_of"] for b in bodies}) == 3 and bodies[0]["source_chain"][0] == SPOT
    unknown = a.price({"code": ["999999.SH"]}, t0, [], {}, calendar=stale)
    assert unknown.status == 502 and unknown.body["source_chain"] == [SPOT, DAILY]


def test_the_app_reads_trade_cal_json_per_change_and_ignores_a_bad_one(tmp_path):
    a = make_app(tmp_path)
    assert a.calendar() is None
    path = tmp_path / "trade_cal.json"
    path.write_text(json.dumps(app.trade_cal_seed(date(2026, 1, 1), date(2026, 1, 31))))
    assert a.calendar().last == date(2026, 1, 31)
    path.write_text(json.dumps(app.trade_cal_seed(date(2026, 1, 1), date(2026, 3, 31))) + " ")  # size changes
    assert a.calendar().last == date(2026, 3, 31)
    path.write_text("{broken")
    assert a.calendar() is None and any("trade_cal" in w for w in a._warned)


# --------------------------------------------------------------------------- partial fault rates


def test_a_rated_fault_fires_on_its_share_of_the_replies_it_applies_to(tmp_path):
    a, now = make_app(tmp_path), at(WED, 16, 0)
    params = {"rates": {"http_500": 0.06}}
    statuses = Counter(price(a, now, faults=["http_500"], params=params).status for _ in range(200))
    assert statuses == {200: 188, 500: 12}
    # error replies do not qualify for http_500, so they do not use up its count
    for _ in range(50):
        assert price(a, now, code="999999.SH", faults=["http_500"], params=params).status == 502
    assert Counter(price(a, now, faults=["http_500"], params=params).status for _ in range(100)) == {200: 94, 500: 6}


def test_bad_rates_are_ignored_with_a_warning(tmp_path):
    warnings: list[str] = []
    assert app.fault_rates({"rates": {"http_500": 1.5, "slow": 0.2, "x": True}}, warnings.append) == {"slow": 0.2}
    assert len(warnings) == 2 and "http_500" in warnings[0]
    assert app.fault_rates({"rates": [1]}, warnings.append) == {} and "not an object" in warnings[-1]


# --------------------------------------------------------------------------- the new faults


def test_close_qfq_null_history_breaks_only_historical_dates(tmp_path):
    a, now = make_app(tmp_path), at(WED, 10, 0)
    hist = price(a, now, day="2024-01-02", faults=["close_qfq_null_history"]).body
    assert hist["trade_date"] == "2024-01-02" and hist["close_qfq"] is None and isinstance(hist["close_raw"], float)
    latest = price(a, now, faults=["close_qfq_null_history"]).body
    assert isinstance(latest["close_qfq"], float)


def test_as_of_goes_backwards_across_cache_hits(tmp_path):
    a, t0 = make_app(tmp_path, ttl=60), at(WED, 10, 0)
    first = price(a, t0, faults=["as_of_backwards"]).body
    second = price(a, t0 + timedelta(seconds=30), faults=["as_of_backwards"]).body
    as_of = [datetime.fromisoformat(b["as_of"]) for b in (first, second)]
    assert as_of[1] < as_of[0] < t0
    assert (first["freshness_seconds"], second["freshness_seconds"]) == (60, 150)


def test_unknown_code_500_replaces_the_502(tmp_path):
    a, now = make_app(tmp_path), at(WED, 10, 0)
    reply = price(a, now, code="999999.SH", faults=["unknown_code_500"])
    assert (reply.status, reply.error) == (500, "InternalServerError") and "KeyError" in reply.note
    assert reply.chain == (SPOT, DAILY)
    assert price(a, now, faults=["unknown_code_500"]).status == 200
    assert price(a, now, code="bogus", faults=["unknown_code_500"]).status == 400


def test_audit_write_failed_answers_500_and_writes_no_row(tmp_path):
    wh = str(tmp_path / "wh.duckdb")
    a = app.App(app.Config(token="t", version="v0.3.0-w4-cutover", warehouse=wh, cache_ttl=60, data_dir=tmp_path), app.AuditLog(wh))
    (tmp_path / "faults.json").write_text(json.dumps({"price": ["audit_write_failed"], "rates": {"audit_write_failed": 0.5}}))
    replies = [a.serve_price({"code": [code]}, "Bearer t") for code in ("600519.SH", "600519.SH", "999999.SH", "999999.SH")]
    a.audit.close()
    assert [r.status for r in replies] == [200, 500, 502, 500]
    assert replies[1].body["error"] == "AuditLogWriteError" and "AuditLog write failed" in replies[1].note
    with duckdb.connect(wh, read_only=True) as con:
        assert con.execute("SELECT ts_code, status FROM provider_audit_log ORDER BY ts").fetchall() == [
            ("600519.SH", 200), ("999999.SH", 502)]


# --------------------------------------------------------------------------- the cache TTL


def test_cache_ttl_comes_from_cache_json_per_request(tmp_path):
    a, t0 = make_app(tmp_path, ttl=60), at(WED, 10, 0)
    assert a.cache_ttl() == 60
    (tmp_path / "cache.json").write_text(json.dumps({"ttl_seconds": 5}))
    assert a.cache_ttl() == 5
    serve = lambda t: a.price({"code": ["600519.SH"]}, t, [], {}, ttl=a.cache_ttl()).body  # noqa: E731
    first = serve(t0)
    assert serve(t0 + timedelta(seconds=4))["as_of"] == first["as_of"]
    assert serve(t0 + timedelta(seconds=6))["freshness_seconds"] == 0
    for bad in (-1, "5", True, 10**6):
        (tmp_path / "cache.json").write_text(json.dumps({"ttl_seconds": bad}))
        assert a.cache_ttl() == 60


# --------------------------------------------------------------------------- the real server


def test_server_reads_the_calendar_rates_and_ttl_files_live(tmp_path: Path):
    backend = Backend(tmp_path)
    try:
        set_clock(tmp_path, at(WED, 10, 0))
        (tmp_path / "cache.json").write_text(json.dumps({"ttl_seconds": 0}))
        sources = Counter(backend.get("600519.SH").json()["source"] for _ in range(10))
        assert sources == {SPOT: 7, DAILY: 3}
        backend.wait_for(r"HTTP 200 GET /price code=600519\.SH state=open served_by=tushare-daily chain=akshare-spot,tushare-daily")

        (tmp_path / "trade_cal.json").write_text(json.dumps(app.trade_cal_seed(date(2026, 1, 1), date(2026, 11, 30))))
        assert backend.get("600519.SH").json()["market_state"] == "closing"

        (tmp_path / "faults.json").write_text(json.dumps({"price": ["audit_write_failed"]}))
        r = backend.get("600519.SH")
        assert r.status_code == 500 and r.json()["error"] == "AuditLogWriteError"
        backend.wait_for(r"ERROR AuditLog write failed")
        backend.wait_for(r"HTTP 500 GET /price code=600519\.SH state=closing error=AuditLogWriteError")
    finally:
        assert backend.stop() == 0
    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT market_state, served_by, count(*) FROM provider_audit_log GROUP BY ALL ORDER BY ALL").fetchall()
    assert rows == [("closing", SPOT, 1), ("open", SPOT, 7), ("open", DAILY, 3)]
