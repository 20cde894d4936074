"""`inv agent-smoke` (T+00:35) through the twin, continued from test_agent_twin.py (same fixtures,
same assertions; its own module so that under `make test`, --dist loadfile, another worker runs it
beside that one): the operator-side Hermes faults, the model endpoint down, an agent's long-form
wording, a stale trade_cal and the cache check outside OPEN.  W4 runs for this module too, at the
same OPEN time with the 6 s TTL (the w4_open fixture, set up and undone here once)."""
from __future__ import annotations

import datetime as dt
import json

import pytest

from tests.conftest import inv
from tests.integration.test_agent_twin import (AFTER_CLOSE, OPEN, W4, ENV, as_json, faults, flags,  # noqa: F401  fixtures
                                               local_journal, rows, run, skill, twin_task, w4_open)
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import control

pytestmark = pytest.mark.twin


@pytest.mark.parametrize("hermes, flag", [("legacy_prompt", "hermes_legacy_prompt"), ("price_unavailable", "price_unavailable"),
                                          ("verbose_unavailable", "price_unavailable")])   # "I couldn't retrieve a live quote"
def test_each_hermes_fault_raises_its_own_red_flag(skill, faults, hermes, flag):
    _, hermes_fault = faults
    hermes_fault(hermes)
    r = run(skill, "agent-smoke", "--json")
    report = as_json(r)
    assert r.returncode == 1, json.dumps(report, indent=1)
    row = rows(report)[("latest_quote", "agent")]
    assert row["status"] == "FAIL" and flag in [f["code"] for f in row["red_flags"]], row
    assert all(v["status"] == "PASS" for (c, lvl), v in rows(report).items() if lvl == "api")   # the API is fine
    if hermes == "legacy_prompt":
        r = inv("diagnose", "--json", cfg=skill.invoke_yaml)          # the §4 Hermes hook reads these transcripts
        assert "Traceback" not in r.stderr
        out = json.loads(r.stdout)
        assert out["checks"]["hermes_value_and_close_raw"] == "found"
        assert any(f["code"] == "hermes_value_and_close_raw" for f in out["findings"])


def test_the_model_endpoint_down_is_incomplete_never_green(skill, faults, twin_settings):
    """Issue 19 item 3: real Hermes prints `API call failed after N retries: Connection error.` on stdout in
    place of an answer (`chat -Q -q` exits 1, `-z` exits 0); that wording would pass the unknown-code check. Each agent check is
    INCOMPLETE (UNREACHABLE, exit 3) with the agent's own line, and inv decide says INCOMPLETE."""
    _, hermes_fault = faults
    hermes_fault("model_down")
    r = run(skill, "agent-smoke", "--json")
    report = as_json(r)
    assert r.returncode == 3, json.dumps(report, indent=1) + r.stderr
    assert report["verdict"] == "red" and flags(report) == set()
    assert agent_statuses(report) == {"latest_quote": "UNREACHABLE", "historical": "UNREACHABLE", "cache": "SKIP",
                                      "unknown_code": "UNREACHABLE"}
    unknown = rows(report)[("unknown_code", "agent")]
    assert unknown["evidence"]["reason"].startswith("incomplete: no answer after 2 attempt(s): the agent reported: "
                                                    "API call failed after"), unknown
    assert "Connection error" in unknown["evidence"]["agent_error"]
    assert all(v["status"] == "PASS" for (c, lvl), v in rows(report).items() if lvl == "api" and c != "cache")
    step = [s for s in local_journal(twin_settings)["steps"] if s["name"] == "agent-smoke"][-1]
    assert step["outcome"] == "red" and all(not t["answer"] and t["error"] for t in step["evidence"]["transcripts"])
    d = inv("decide", "--version", W4, "--json", cfg=skill.invoke_yaml, env=ENV)
    decision = json.loads(d.stdout)
    agent = {i["id"]: i for i in decision["inputs"]}["agent"]
    assert d.returncode == 1 and decision["verdict"] == "INCOMPLETE", d.stdout + d.stderr
    assert agent["state"] == "missing" and "API call failed after" in agent["summary"], agent
    assert "unknown_code (agent)" in agent["summary"] and "API call failed" in decision["reason"]


def agent_statuses(report: dict) -> dict[str, str]:
    return {c: v["status"] for (c, lvl), v in rows(report).items() if lvl == "agent"}


def test_a_verbose_agent_in_british_long_form_is_green_and_its_wrong_date_is_red(skill, faults):
    """Issue 15 item 3: contractions, British spelling, "Tuesday 2nd January 2024", ¥1,685.01 are judged as
    answers (dateparser, negative wording); the same agent naming the day after stays red."""
    _, hermes_fault = faults
    hermes_fault("verbose_wording")
    r = run(skill, "agent-smoke", "--json")
    report = as_json(r)
    assert r.returncode == 0, json.dumps(report, indent=1) + r.stderr
    assert report["verdict"] == "green" and flags(report) == set()
    assert agent_statuses(report) == {"latest_quote": "PASS", "historical": "PASS", "cache": "SKIP", "unknown_code": "PASS"}
    got = rows(report)
    assert "On Tuesday 2nd January 2024, 600519.SH closed at ¥" in got[("historical", "agent")]["evidence"]["answer"]
    assert "I couldn't find 999999.SH: it isn't a recognised code" in got[("unknown_code", "agent")]["evidence"]["answer"]
    assert "Shanghai time on Monday 11th May 2026" in got[("latest_quote", "agent")]["evidence"]["answer"]

    hermes_fault("verbose_wrong_date")
    r = run(skill, "agent-smoke", "--json")
    report = as_json(r)
    assert r.returncode == 1, json.dumps(report, indent=1)
    assert agent_statuses(report) == {"latest_quote": "PASS", "historical": "FAIL", "cache": "SKIP", "unknown_code": "PASS"}
    hist = rows(report)[("historical", "agent")]
    assert hist["evidence"]["reason"] == "the answer does not give the date 2024-01-02" and hist["red_flags"] == []
    assert "Wednesday 3rd January 2024" in hist["evidence"]["answer"]


def test_stale_trade_cal_is_cache_never_hit_and_a_state_mismatch(skill, twin_settings):
    with SSHExecutor(twin_settings) as ex:
        control.set_trade_cal(ex, twin_settings, control.trade_cal_seed(stale_before=dt.date(2026, 5, 11)))
        try:
            report = as_json(run(skill, "agent-smoke", "--json"))
        finally:
            control.set_trade_cal(ex, twin_settings, control.trade_cal_seed())
    assert report["verdict"] == "red"
    assert {"market_state_mismatch", "cache_never_hit"} <= flags(report)


def test_outside_open_the_cache_check_is_skip_with_the_reason(skill):
    twin_task("twin.clock", "--at", AFTER_CLOSE)
    try:
        r = run(skill, "agent-smoke", "--json")
    finally:
        twin_task("twin.clock", "--at", OPEN)
    report = as_json(r)
    got = rows(report)
    assert got[("cache", "api")]["status"] == "SKIP"
    assert "only meaningful during OPEN; the market is closed_final" in got[("cache", "api")]["evidence"]["reason"]
    assert got[("latest_quote", "api")]["status"] == "PASS" and r.returncode == 0, json.dumps(report, indent=1)
