"""Issue 11 through the twin: the stand-in backend behaves like the real one on live traffic.

`inv twin.load` drives /price with the twin's clock at an OPEN time, and `inv monitor --json`
reads what the backend audited: the akshare-spot share lands inside the runbook's 50–90 %
band while healthy and falls to 0 % with akshare broken; a partial 5xx rate shows as such;
an AuditLog failure answers 500 and leaves no row; a stale trade_cal seed makes every call
"closing" and `inv diagnose` names it.

Each test moves the clock to a weekday no audit row belongs to, so its window holds only its
own traffic, and leaves faults, clock, cache TTL and trade_cal seed as twin.up left them.
"""
from __future__ import annotations

import datetime as dt
import json
import subprocess

import pytest

from tests.container_scripts import free_days
from tests.conftest import TWIN_DIR, inv
from twilight_ops.builders.layout import layout
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.twin import control, seed_remote

pytestmark = pytest.mark.twin

W4 = "v0.3.0-w4-cutover"
PREVIOUS = "v0.2.0"
CST = dt.timezone(dt.timedelta(hours=8))

def twin_task(*args: str) -> subprocess.CompletedProcess:
    r = inv(*args, "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr
    return r


def clock_at(day: dt.date, hh: int, mm: int = 0) -> None:
    twin_task("twin.clock", "--at", dt.datetime(day.year, day.month, day.day, hh, mm, tzinfo=CST).isoformat())


def load(*args: str) -> dict:
    return json.loads(twin_task("twin.load", "--json", *args).stdout)


def monitor_json(twin) -> tuple[int, dict]:
    r = inv("monitor", "--hours", "1", "--json", cfg=twin.invoke_yaml)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    return r.returncode, json.loads(r.stdout)


def by(rows: list[dict], key: str) -> dict:
    return {r[key]: r["n"] for r in rows}


@pytest.fixture(scope="module")
def days(twin, twin_settings):
    """Weekdays no audit row and no recorded own call belongs to (tests/container_scripts.free_days)."""
    return free_days(twin_settings)


@pytest.fixture(autouse=True)
def back_to_baseline(twin, twin_settings):
    yield
    from twilight_ops.remote import SSHExecutor

    with SSHExecutor(twin_settings) as ex:
        control.clear_faults(ex, twin_settings)
        control.set_cache_ttl(ex, twin_settings, None, twin.invoke_yaml)
        control.set_trade_cal(ex, twin_settings, control.trade_cal_seed())
        control.set_clock(ex, twin_settings, 0.0, twin.invoke_yaml)


@pytest.fixture
def w4(twin, twin_settings):
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.twin import ci_release

    ci_release.ensure_published(twin, W4)  # W4 reaches the registry only through the twin's CI

    def deploy(version: str) -> None:
        with SSHExecutor(twin_settings) as ex:
            if seed_remote.running_version(ex, twin_settings) != version:
                control.run_version(ex, twin_settings, version)

    deploy(W4)
    yield
    deploy(PREVIOUS)


# ---------------------------------------------------------------- the Composer chain on live traffic

def test_healthy_live_traffic_puts_the_akshare_share_inside_the_band(twin, days):
    clock_at(next(days), 10)
    # TTL 0: every liquid call reaches the Composer (a cache hit only repeats the provider of its fetch)
    twin_task("twin.cache", "--ttl", "0")
    report = load("--seconds", "4", "--rps", "20", "--unknown-pct", "0", "--history-pct", "10", "--seed", "11")
    k = {"liquid": 0, "history": 0, **report["by_kind"]}
    assert report["by_status"] == {"200": report["sent"]} and k["liquid"] >= 50

    code, out = monitor_json(twin)
    assert out["total"] == report["sent"] and by(out["market_state"], "market_state") == {"open": k["liquid"], "closed_final": k["history"]}
    assert 50 <= out["akshare_spot_share_open_pct"] <= 90
    assert out["akshare_spot_share_open_pct"] == pytest.approx(70, abs=100 / k["liquid"] + 0.01)  # every-Nth: 7 of 10
    assert out["bands"]["akshare_share"] == "healthy"
    served = by(out["served_by"], "served_by")
    fallbacks = k["liquid"] - served["akshare-spot"]
    assert served["tushare-daily"] == k["history"] + fallbacks
    assert by(out["source_chain_len"], "len") == {1: served["akshare-spot"] + k["history"], 2: fallbacks}


def test_akshare_broken_drops_the_share_to_zero(twin, days):
    clock_at(next(days), 10, 30)
    twin_task("twin.fault", "--name", "akshare_down")
    report = load("--seconds", "2", "--rps", "20", "--unknown-pct", "0", "--history-pct", "0", "--seed", "12")
    assert report["by_status"] == {"200": report["sent"]}
    code, out = monitor_json(twin)
    assert out["total"] == report["sent"] and by(out["market_state"], "market_state") == {"open": report["sent"]}
    assert out["akshare_spot_share_open_pct"] == 0.0
    assert out["bands"]["akshare_share"] == "investigate" and code == 1
    assert by(out["served_by"], "served_by") == {"tushare-daily": report["sent"]}
    assert by(out["source_chain_len"], "len") == {2: report["sent"]}


# ---------------------------------------------------------------- partial 5xx, the AuditLog failure

def test_a_six_percent_500_rate_shows_on_live_traffic(twin, days):
    clock_at(next(days), 13, 30)
    twin_task("twin.fault", "--name", "http_500", "--rate", "0.06")
    report = load("--seconds", "10", "--rps", "20", "--unknown-pct", "0", "--history-pct", "10", "--seed", "13")
    sent, failed = report["sent"], report["by_status"].get("500", 0)
    assert sent >= 100 and set(report["by_status"]) == {"200", "500"}
    assert abs(failed - 0.06 * sent) < 1                               # every-Nth: 6 of every 100 consecutive
    code, out = monitor_json(twin)
    assert out["total"] == sent and out["errors"] == failed
    assert out["err_pct"] > 5 and out["bands"]["err_pct"] == "investigate" and code == 1


def test_audit_write_failures_answer_500_log_it_and_leave_no_row(twin, ex, twin_settings, days):
    clock_at(next(days), 10)
    twin_task("twin.fault", "--name", "audit_write_failed", "--rate", "0.1")
    report = load("--seconds", "2", "--rps", "25", "--unknown-pct", "0", "--history-pct", "0", "--seed", "14")
    failed = report["by_status"].get("500", 0)
    assert set(report["by_status"]) == {"200", "500"} and abs(failed - 0.1 * report["sent"]) < 1
    _, out = monitor_json(twin)
    assert out["total"] == report["by_status"]["200"] and out["errors"] == 0   # failed writes leave no row
    lay = layout(twin_settings, ex.home)
    logs = ex.run(compose_cmd.compose(lay, "logs", "--tail", "200", lay.service), timeout=120).stdout
    assert "ERROR AuditLog write failed" in logs and "error=AuditLogWriteError" in logs


# ---------------------------------------------------------------- a stale trade_cal seed: all "closing"

def test_a_stale_trade_cal_makes_every_call_closing_and_diagnose_says_so(twin, days, w4):
    clock_at(next(days), 10)
    twin_task("twin.trade-cal", "--stale")
    load("--seconds", "2", "--rps", "10", "--unknown-pct", "0", "--history-pct", "0", "--seed", "15")
    _, out = monitor_json(twin)
    assert by(out["market_state"], "market_state") == {"closing": out["total"]} and out["total"] == 20
    assert out["akshare_spot_share_open_pct"] is None             # no call was "open"

    r = inv("diagnose", "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 1, r.stderr
    diag = json.loads(r.stdout)
    (f,) = [f for f in diag["findings"] if f["code"] == "freshness_stuck_zero"]
    assert "the trade_cal seed is stale" in f["detail"]
