"""The twin's stand-in backend (twilight_ops/twin/backend/app.py): pure logic, then one real server.

app.py ships inside the image as a script, so it is loaded here from its file.
"""
from __future__ import annotations

import importlib.util
import json
import os
import queue
import re
import signal
import subprocess
import sys
import threading
import time
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb
import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

APP_PATH = Path(__file__).resolve().parents[2] / "twilight_ops" / "twin" / "backend" / "app.py"


def _load_app():
    spec = importlib.util.spec_from_file_location("twin_backend_app", APP_PATH)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


app = _load_app()
CST = app.SHANGHAI
UTC = timezone.utc
WED = date(2026, 12, 2)  # a Wednesday
MON, FRI, SAT = date(2026, 11, 30), date(2026, 12, 4), date(2026, 12, 5)
TOKEN = "op-test-token-5c1d"

# The runbook's T+00:15 sample: every field, its JSON type.
W4_FIELDS = {
    "ts_code": str, "trade_date": str, "close_raw": float, "close_qfq": float, "close_hfq": float,
    "open_raw": float, "high_raw": float, "low_raw": float, "volume": int, "amount": float,
    "adj_factor": float, "adj_factor_latest": float, "as_of": str, "freshness_seconds": int,
    "source": str, "source_chain": list, "market_state": str, "units": dict, "cite": dict,
}
UNITS = {"close_raw": "yuan", "close_qfq": "yuan", "close_hfq": "yuan", "open_raw": "yuan",
         "high_raw": "yuan", "low_raw": "yuan", "volume": "hand", "amount": "kyuan"}


def at(day: date, hh: int, mm: int = 0, ss: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hh, mm, ss, tzinfo=CST)


def make_app(tmp_path: Path, version: str = "v0.3.0-w4-cutover", ttl: float = 60):
    config = app.Config(token=TOKEN, version=version, warehouse=str(tmp_path / "wh.duckdb"), cache_ttl=ttl, data_dir=tmp_path)
    return app.App(config, audit=None)


def price(a, now: datetime, code: str = "600519.SH", day: str | None = None, faults=(), params=None):
    query = {"code": [code]} | ({"date": [day]} if day else {})
    return a.price(query, now, list(faults), params or {})


# --------------------------------------------------------------------------- market state


@pytest.mark.parametrize("instant, state", [
    (at(WED, 0, 0), "pre_open"),
    (at(WED, 9, 29, 59), "pre_open"),
    (at(WED, 9, 30), "open"),
    (at(WED, 11, 29, 59), "open"),
    (at(WED, 11, 30), "lunch_break"),
    (at(WED, 12, 59, 59), "lunch_break"),
    (at(WED, 13, 0), "open"),
    (at(WED, 14, 59, 59), "open"),
    (at(WED, 15, 0), "closed_final"),
    (at(WED, 23, 59, 59), "closed_final"),
    (at(SAT, 10, 0), "closed"),
    (at(SAT + timedelta(days=1), 14, 0), "closed"),
    (datetime(2026, 12, 2, 2, 0, tzinfo=UTC), "open"),  # 10:00 in Shanghai
    (datetime(2026, 12, 4, 16, 0, tzinfo=UTC), "closed"),  # Saturday 00:00 in Shanghai
])
def test_market_state_follows_shanghai_session_hours(instant, state):
    assert app.market_state(instant) == state
    assert state in app.MARKET_STATES


@pytest.mark.parametrize("instant, trade_date, close", [
    (at(WED, 12, 0), WED, at(WED, 11, 30)),
    (at(WED, 16, 0), WED, at(WED, 15, 0)),
    (at(MON, 8, 0), date(2026, 11, 27), at(date(2026, 11, 27), 15, 0)),  # Monday pre-open -> Friday
    (at(SAT, 10, 0), FRI, at(FRI, 15, 0)),
])
def test_outside_open_the_last_session_is_served(instant, trade_date, close):
    assert app.served_session(instant) == (trade_date, close)


# --------------------------------------------------------------------------- envelopes


def test_w4_envelope_has_every_runbook_field_with_its_type(tmp_path):
    now = at(WED, 16, 0)
    body = price(make_app(tmp_path), now).body
    assert list(body) == list(W4_FIELDS)
    for field, kind in W4_FIELDS.items():
        assert isinstance(body[field], kind) and not isinstance(body[field], bool), field
    assert body["units"] == UNITS
    assert body["ts_code"] == "600519.SH" and body["trade_date"] == "2026-12-02"
    assert body["market_state"] == "closed_final" and body["source"] == "tushare-daily"
    assert body["as_of"] == "2026-12-02T07:00:00+00:00"
    assert body["freshness_seconds"] == 3600
    assert re.fullmatch(r"tc_[0-9a-f]+", body["cite"]["tool_call_id"])
    assert body["cite"] == {"kind": "tool", "tool_call_id": body["cite"]["tool_call_id"], "source": "tushare-daily"}


@settings(max_examples=300, deadline=None)
@given(
    instant=st.datetimes(min_value=datetime(2015, 1, 1), max_value=datetime(2030, 12, 31), timezones=st.just(UTC)),
    code=st.sampled_from(sorted(app.LISTINGS)),
)
def test_w4_numbers_are_consistent_at_any_instant(instant, code):
    quote = app.fetch_quote(code, instant)
    body = app.w4_envelope(quote, instant, "tc_00")
    assert body["low_raw"] <= body["open_raw"] <= body["high_raw"]
    assert body["low_raw"] <= body["close_raw"] <= body["high_raw"]
    assert body["close_qfq"] == pytest.approx(body["close_raw"] * body["adj_factor"] / body["adj_factor_latest"], abs=1e-3)
    assert body["close_hfq"] == pytest.approx(body["close_raw"] * body["adj_factor"], abs=1e-3)
    assert body["source"] in body["source_chain"]
    assert body["source"] == ("akshare-spot" if body["market_state"] == "open" else "tushare-daily")
    assert body["freshness_seconds"] >= 0 and body["volume"] >= 0
    as_of = datetime.fromisoformat(body["as_of"])
    assert body["as_of"].endswith("+00:00") and as_of <= instant


def test_open_quote_is_spot_and_as_of_now(tmp_path):
    now = at(WED, 10, 15)
    body = price(make_app(tmp_path), now).body
    assert body["market_state"] == "open" and body["source"] == "akshare-spot"
    assert body["source_chain"] == ["akshare-spot"] and body["freshness_seconds"] == 0
    assert body["trade_date"] == "2026-12-02" and body["adj_factor"] == body["adj_factor_latest"]
    assert body["close_qfq"] == body["close_raw"]


def test_history_is_closed_final_with_static_factors(tmp_path):
    reply = price(make_app(tmp_path), at(WED, 10, 15), day="2024-01-02")
    body = reply.body
    assert reply.status == 200 and body["trade_date"] == "2024-01-02" and body["market_state"] == "closed_final"
    assert body["source"] == "tushare-daily" and body["close_qfq"] is not None
    assert body["adj_factor"] < body["adj_factor_latest"]  # dividends since 2024
    assert body["as_of"] == "2024-01-02T07:00:00+00:00"


def test_legacy_tag_serves_the_old_envelope(tmp_path):
    body = price(make_app(tmp_path, version="v0.2.0"), at(WED, 16, 0)).body
    assert set(body) == {"code", "metric", "value", "unit", "trade_date", "source", "as_of"}
    assert body["metric"] == "close" and body["code"] == "600519.SH" and isinstance(body["value"], float)
    assert app.is_legacy("v0.2.7") and not app.is_legacy("v0.3.0-w4-cutover") and not app.is_legacy("v0.20.0")


@pytest.mark.parametrize("code, day, status, error", [
    ("999999.SH", None, 502, "ChainExhausted"),
    ("60051", None, 400, "BadRequest"),
    ("", None, 400, "BadRequest"),
    ("600519.SH", "2024-13-01", 400, "BadRequest"),
    ("600519.SH", "2027-01-04", 400, "BadRequest"),  # future
    ("600519.SH", "2024-01-06", 404, "NoTradingDay"),  # a Saturday
])
def test_errors(tmp_path, code, day, status, error):
    reply = price(make_app(tmp_path), at(WED, 10, 0), code=code, day=day)
    assert (reply.status, reply.body["error"], reply.error) == (status, error, error)
    assert reply.quote is None


def test_unknown_code_during_open_exhausts_the_whole_chain(tmp_path):
    reply = price(make_app(tmp_path), at(WED, 10, 0), code="999999.SH")
    assert reply.body["source_chain"] == ["akshare-spot", "tushare-daily"]


# --------------------------------------------------------------------------- faults


def test_each_fault_changes_what_it_names(tmp_path):
    a, now = make_app(tmp_path), at(WED, 16, 0)
    clean = price(a, now).body

    body = price(a, now, faults=["close_raw_null"]).body
    assert body["close_raw"] is None and body["close_qfq"] is None

    body = price(a, now, faults=["qfq_without_raw"]).body
    assert "close_raw" not in body and body["close_qfq"] == clean["close_qfq"]

    body = price(a, now, faults=["legacy_body"]).body
    assert "value" in body and "close_raw" not in body

    body = price(a, now, faults=["mixed_envelope"]).body
    assert set(W4_FIELDS) <= set(body) and body["value"] == clean["close_raw"] and body["metric"] == "close"

    reply = price(a, now, faults=["http_500"])
    assert reply.status == 500 and reply.error == "InternalServerError"

    reply = price(a, now, faults=["canonical_unit_violation"])
    assert reply.status == 500 and reply.body["error"] == "CanonicalUnitViolation" and reply.body["detail"]
    assert "CanonicalUnitViolation" in reply.note

    reply = price(a, now, faults=["chain_exhausted"])
    assert reply.status == 502 and reply.body["error"] == "ChainExhausted"

    assert price(a, now, faults=["slow"], params={"slow_ms": 900}).delay == pytest.approx(0.9)
    assert price(a, now, faults=["slow"]).delay > 0

    assert clean["freshness_seconds"] > 0
    assert price(a, now, faults=["stale_freshness_zero"]).body["freshness_seconds"] == 0


def test_every_fault_is_covered_above():
    # the issue-11 faults are covered in tests/unit/test_twin_backend_realism.py
    assert set(app.FAULTS) == {"close_raw_null", "qfq_without_raw", "legacy_body", "mixed_envelope", "http_500",
                               "canonical_unit_violation", "chain_exhausted", "slow", "stale_freshness_zero",
                               "close_qfq_null_history", "as_of_backwards", "unknown_code_500", "audit_write_failed"}
    assert set(app.FETCH_FAULTS) == {"akshare_down"}


def test_unknown_fault_is_ignored_with_a_warning():
    warnings: list[str] = []
    reply = app.Reply(200, {"close_raw": 1.0})
    assert app.apply_faults(reply, ["no_such_fault"], {}, warnings.append) == reply
    assert len(warnings) == 1 and "no_such_fault" in warnings[0]


def test_body_faults_leave_error_replies_alone(tmp_path):
    reply = price(make_app(tmp_path), at(WED, 10, 0), code="999999.SH", faults=["close_raw_null", "http_500", "slow"])
    assert reply.status == 502 and reply.delay > 0


@pytest.mark.parametrize("raw, names, params", [
    ({"price": "slow", "slow_ms": 5}, ["slow"], {"slow_ms": 5}),
    ({"price": ["http_500", 3, "slow"]}, ["http_500", "slow"], {}),
    ({}, [], {}),
    (None, [], {}),
    (["slow"], [], {}),
    ({"price": 5}, [], {}),
])
def test_parse_faults(raw, names, params):
    assert app.parse_faults(raw) == (names, params)


# --------------------------------------------------------------------------- cache, clock, auth


def test_open_cache_holds_a_quote_for_the_ttl_then_refetches(tmp_path):
    a, t0 = make_app(tmp_path, ttl=60), at(WED, 10, 0)
    first = price(a, t0).body
    cached = price(a, t0 + timedelta(seconds=30)).body
    assert first["freshness_seconds"] == 0 and cached["freshness_seconds"] == 30
    assert cached["as_of"] == first["as_of"] and cached["close_raw"] == first["close_raw"]
    assert price(a, t0 + timedelta(seconds=59)).body["freshness_seconds"] == 59
    fresh = price(a, t0 + timedelta(seconds=61)).body
    assert fresh["freshness_seconds"] == 0 and fresh["as_of"] != first["as_of"]


def test_cache_is_per_code_and_a_backward_clock_refetches(tmp_path):
    a, t0 = make_app(tmp_path, ttl=60), at(WED, 10, 0)
    price(a, t0)
    assert price(a, t0 + timedelta(seconds=10), code="000001.SZ").body["freshness_seconds"] == 0
    assert price(a, t0 - timedelta(seconds=5)).body["freshness_seconds"] == 0


def test_outside_open_freshness_counts_from_the_session_close(tmp_path):
    a = make_app(tmp_path, ttl=60)
    assert price(a, at(WED, 15, 0, 42)).body["freshness_seconds"] == 42
    assert price(a, at(WED, 12, 0)).body["freshness_seconds"] == 1800  # since 11:30
    assert price(a, at(SAT, 15, 0)).body["freshness_seconds"] == 86400


def test_clock_offset_is_read_from_clock_json(tmp_path):
    a = make_app(tmp_path)
    assert abs((a.now() - datetime.now(UTC)).total_seconds()) < 5
    (tmp_path / "clock.json").write_text(json.dumps({"offset_seconds": 86400.5}))
    assert abs((a.now() - datetime.now(UTC)).total_seconds() - 86400.5) < 5
    (tmp_path / "clock.json").write_text("{not json")
    assert abs((a.now() - datetime.now(UTC)).total_seconds()) < 5


@pytest.mark.parametrize("header, ok", [
    (f"Bearer {TOKEN}", True), ("Bearer wrong", False), (TOKEN, False), (None, False), ("", False),
])
def test_bearer_token(tmp_path, header, ok):
    assert make_app(tmp_path).authorized(header) is ok


def test_an_empty_configured_token_accepts_nobody(tmp_path):
    config = app.Config(token="", version="v0.3.0", warehouse="x", cache_ttl=60, data_dir=tmp_path)
    assert not app.App(config, None).authorized("Bearer ")


def test_audit_log_writes_naive_utc_rows(tmp_path):
    path = tmp_path / "wh.duckdb"
    log = app.AuditLog(str(path))
    log.record(at(WED, 10, 0), "600519.SH", "akshare-spot", ("akshare-spot",), "open", 1.5, 200, None, "v0.3.0", None)
    log.close()
    log.record(at(WED, 10, 1), "600519.SH", None, (), "open", 1.0, 500, "x", "v0.3.0", None)  # after close: dropped
    with duckdb.connect(str(path), read_only=True) as con:
        rows = con.execute("SELECT ts, ts_code, served_by, source_chain, market_state, latency_ms, status, error "
                           "FROM provider_audit_log").fetchall()
    assert rows == [(datetime(2026, 12, 2, 2, 0), "600519.SH", "akshare-spot", ["akshare-spot"], "open", 1.5, 200, None)]


# --------------------------------------------------------------------------- the real server


class Backend:
    """app.py as a subprocess on a loopback port; stderr collected line by line."""

    def __init__(self, tmp_path: Path, version: str = "v0.3.0-w4-cutover"):
        env = {k: v for k, v in os.environ.items() if not k.startswith(("OPERATOR_", "TWILIGHT_", "WAREHOUSE", "CACHE_"))}
        env |= {"OPERATOR_TOKEN": TOKEN, "TWILIGHT_IMAGE_VERSION": version, "WAREHOUSE": str(tmp_path / "wh.duckdb"),
                "TWILIGHT_DATA_DIR": str(tmp_path), "CACHE_TTL_SECONDS": "60"}
        self.proc = subprocess.Popen([sys.executable, str(APP_PATH), "--host", "127.0.0.1", "--port", "0"],
                                     env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        self.lines: queue.Queue[str] = queue.Queue()
        self.log: list[str] = []
        threading.Thread(target=lambda: [self.lines.put(line) for line in self.proc.stderr], daemon=True).start()
        self.port = int(self.wait_for(r"listening on 127\.0\.0\.1:(\d+)").group(1))
        self.http = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=5, trust_env=False)

    def wait_for(self, pattern: str, timeout: float = 10.0) -> re.Match:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.lines.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                break
            self.log.append(line)
            if m := re.search(pattern, line):
                return m
        raise AssertionError(f"no stderr line matching {pattern!r} in {timeout} s; got {self.log}")

    def get(self, code: str, auth: bool = True) -> httpx.Response:
        headers = {"Authorization": f"Bearer {TOKEN}"} if auth else {}
        return self.http.get("/price", params={"code": code}, headers=headers)

    def stop(self) -> int:
        self.http.close()
        self.proc.send_signal(signal.SIGTERM)
        code = self.proc.wait(timeout=10)
        self.wait_for("checkpointed and closed")
        return code


def set_clock(tmp_path: Path, target: datetime) -> None:
    (tmp_path / "clock.json").write_text(json.dumps({"offset_seconds": target.timestamp() - time.time()}))


def test_server_answers_and_audits_each_authenticated_call_once(tmp_path):
    t0 = at(WED, 10, 0)
    backend = Backend(tmp_path)
    try:
        assert backend.http.get("/healthz").json() == {"ok": True}
        r = backend.get("600519.SH", auth=False)
        assert r.status_code == 401 and r.json()["error"] == "Unauthorized"

        set_clock(tmp_path, t0)  # backend now = t0 (+ the milliseconds until the call lands)
        first = backend.get("600519.SH")
        assert first.status_code == 200 and first.json()["market_state"] == "open"
        assert first.json()["freshness_seconds"] <= 1
        set_clock(tmp_path, t0 + timedelta(seconds=30))
        assert 29 <= backend.get("600519.SH").json()["freshness_seconds"] <= 31

        r = backend.get("999999.SH")
        assert r.status_code == 502 and r.json()["error"] == "ChainExhausted"
        backend.wait_for(r"HTTP 502 GET /price code=999999\.SH")
        assert backend.get("bogus").status_code == 400

        (tmp_path / "faults.json").write_text(json.dumps({"price": "canonical_unit_violation"}))
        r = backend.get("600519.SH")
        assert r.status_code == 500 and r.json()["error"] == "CanonicalUnitViolation"
        backend.wait_for(r"ERROR CanonicalUnitViolation")

        with pytest.raises(duckdb.IOException, match="lock"):  # held open read-write for the process's life
            duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True)
    finally:
        exit_code = backend.stop()
    assert exit_code == 0

    with duckdb.connect(str(tmp_path / "wh.duckdb"), read_only=True) as con:
        rows = con.execute("SELECT ts_code, status, error, served_by, market_state, latency_ms >= 0 "
                           "FROM provider_audit_log ORDER BY ts").fetchall()
        ts = con.execute("SELECT min(ts), max(ts) FROM provider_audit_log").fetchone()
    assert rows == [
        ("600519.SH", 200, None, "akshare-spot", "open", True),
        ("600519.SH", 200, None, "akshare-spot", "open", True),
        ("999999.SH", 502, "ChainExhausted", None, "open", True),
        ("bogus", 400, "BadRequest", None, "open", True),
        ("600519.SH", 500, "CanonicalUnitViolation", None, "open", True),
    ]
    naive_utc = t0.astimezone(UTC).replace(tzinfo=None)
    assert abs((ts[0] - naive_utc).total_seconds()) < 5 and ts[1] > ts[0]


@pytest.mark.parametrize("version, names, params", [
    ("v0.3.0-w4-cutover", ["close_raw_null"], {"rates": {"close_raw_null": 0.5}}),
    ("v0.2.0", [], {}),                   # the fault ships with W4 and leaves with its rollback
])
def test_parse_faults_scoped_to_versions(version, names, params):
    raw = {"price": ["close_raw_null"], "rates": {"close_raw_null": 0.5}, "versions": ["v0.3.0-w4-cutover"]}
    assert app.parse_faults(raw, version) == (names, params)


# ---------------------------------------------------------------- issue 24: a release that migrates the warehouse

def test_schema_regressed_renames_for_w4_and_v020_then_refuses_to_start(tmp_path):
    import duckdb

    db = str(tmp_path / "warehouse.duckdb")
    app.AuditLog(db, "v0.2.0").close()
    w4 = app.AuditLog(db, "v0.3.0-w4-cutover", "schema-regressed")
    w4.record(app.datetime.now(app.timezone.utc), "600519.SH", "tushare", ("tushare",), "open", 1.0, 200, None, "w4", None)
    w4.close()
    cols = [r[0] for r in duckdb.connect(db, read_only=True).execute(
        "SELECT column_name FROM information_schema.columns WHERE table_name = 'provider_audit_log'").fetchall()]
    assert "provider" in cols and "served_by" not in cols
    with pytest.raises(RuntimeError, match="not the v0.2.0 schema"):
        app.AuditLog(db, "v0.2.0")
    app.AuditLog(db, "v0.3.0-w4-cutover", "schema-regressed").close()     # a second W4 start: nothing to rename


def test_schema_additive_adds_a_table_v020_ignores(tmp_path):
    import duckdb

    db = str(tmp_path / "warehouse.duckdb")
    app.AuditLog(db, "v0.3.0-w4-cutover", "schema-additive").close()
    app.AuditLog(db, "v0.2.0").close()                                      # starts: it never reads price_units
    assert duckdb.connect(db, read_only=True).execute("SELECT count(*) FROM price_units").fetchone()[0] == 1


def test_release_migration_reads_only_schema_faults(tmp_path):
    (tmp_path / "release_faults.json").write_text(json.dumps({"v0.3.0-w4-cutover": "schema-additive", "v0.2.0": "never-healthy"}))
    assert app.release_migration(tmp_path, "v0.3.0-w4-cutover") == "schema-additive"
    assert app.release_migration(tmp_path, "v0.2.0") is None
    assert app.release_migration(tmp_path / "nowhere", "v0.2.0") is None


def test_restart_loop_is_never_healthy_and_exits_1(tmp_path):
    """The restart-loop release is never healthy before it exits (a healthcheck that passed in the second
    before the crash let a loaded machine's deploy gate see `healthy`, restart count 0)."""
    (tmp_path / "release_faults.json").write_text(json.dumps({"v0.3.0-w4-cutover": "restart-loop"}))
    backend = Backend(tmp_path)
    try:
        try:
            status = backend.http.get("/healthz").status_code
        except httpx.TransportError:          # it already exited: not healthy either
            status = None
        assert status in (503, None)
        assert backend.proc.wait(timeout=10) == 1
        backend.wait_for("FATAL lifespan startup failed")
    finally:
        backend.http.close()
        if backend.proc.poll() is None:
            backend.proc.kill()


def test_the_trade_cal_seed_is_parsed_once_when_requests_arrive_together(tmp_path):
    """Under a client load the first /price requests after a start all found no parsed calendar and
    parsed the ≈ 7,700-day seed at once, each slowing the others down until /price hung (the downtime
    benchmark's rollback at 20 req/s).  One parses; the others wait for it and get the same calendar."""
    from twilight_ops.twin.control import trade_cal_seed

    (tmp_path / "trade_cal.json").write_bytes(trade_cal_seed())
    a = make_app(tmp_path)
    got: list = []
    threads = [threading.Thread(target=lambda: got.append(a.calendar())) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(got) == 16 and got[0] is not None and all(c is got[0] for c in got)
    assert got[0].first == date(2015, 1, 1)


def test_a_trade_cal_date_is_eight_digits():
    for bad in ("2025011", "2025-01-01", "2025010a", ""):
        with pytest.raises(ValueError):
            app.parse_trade_cal({"data": {"fields": ["exchange", "cal_date", "is_open"], "items": [["SSE", bad, 1]]}})
    cal = app.parse_trade_cal({"data": {"fields": ["exchange", "cal_date", "is_open"], "items": [["SSE", "20250102", 0]]}})
    assert cal.first == cal.last == date(2025, 1, 2)
