"""The §2 guard's decisions over plain values, its config keys, its probe aggregate on a real
DuckDB file, and its round line."""
from __future__ import annotations

import copy
import dataclasses
import datetime as dt

import duckdb
import pytest

from tests.unit.monitor_samples import metrics
from twilight_ops import envelope
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.diagnose import value_parse_error
from twilight_ops.errors import BadInput
from twilight_ops.guard import (GuardConfig, GuardState, HermesEvidence, PriceProbe, RoundEvidence, check_5xx,
                                check_close_raw, check_hermes, evaluate)
from twilight_ops.monitor.metrics import Metrics, StatusCount
from twilight_ops.monitor.script import run_local
from twilight_ops.render.guard import round_line, trigger_lines
from twilight_ops.twin.seed import AuditRow, TableShape, seed_rows

CFG = GuardConfig(max_5xx_pct=5.0, min_calls=20, null_rounds=3)
NOW = dt.datetime(2026, 5, 12, 3, 30, tzinfo=dt.timezone.utc)


def statuses(*pairs: tuple[int, int], not_liquid_502: int | None = 0, **kw) -> Metrics:
    total = sum(n for _, n in pairs)
    errors = sum(n for s, n in pairs if s != 200)
    return metrics(total=total, errors=errors, err_pct=100 * errors / total if total else None,
                   status=tuple(StatusCount(s, n) for s, n in pairs), not_liquid_502=not_liquid_502, **kw)


W4_BODY = ('{"ts_code": "600519.SH", "trade_date": "2026-05-12", "close_raw": %s, "close_qfq": null, "close_hfq": null,'
           ' "open_raw": 1695.0, "high_raw": 1710.0, "low_raw": 1690.0, "volume": 1, "amount": 1.0, "adj_factor": null,'
           ' "adj_factor_latest": null, "as_of": "2026-05-12T03:29:00+00:00", "freshness_seconds": 60,'
           ' "source": "tushare-daily", "source_chain": ["tushare-daily"], "market_state": "open",'
           ' "units": {"close_raw": "yuan", "volume": "hand", "amount": "kyuan"},'
           ' "cite": {"kind": "tool", "tool_call_id": "tc_1"}}')


def probe(code: str, status: int | None, body: str = "", transport: str | None = None) -> PriceProbe:
    verdict = envelope.evaluate(status, body, "w4", NOW, 0.01, transport)
    return PriceProbe.from_verdict(code, verdict)


NULL = lambda code="600519.SH": probe(code, 200, W4_BODY % "null")        # noqa: E731
PRESENT = lambda code="600519.SH": probe(code, 200, W4_BODY % "1700.5")   # noqa: E731


# ---------------------------------------------------------------- 5xx

def test_5xx_above_the_threshold_trips_with_its_evidence():
    t = check_5xx(statuses((200, 90), (500, 10)), CFG)
    assert t.state == "tripped" and "10.0%" in t.summary and "10 of 100" in t.summary
    assert any("500 ×10" in e for e in t.evidence)


def test_5xx_at_the_threshold_does_not_trip():
    assert check_5xx(statuses((200, 95), (500, 5)), CFG).state == "ok"
    assert check_5xx(statuses((200, 94), (503, 6)), CFG).state == "tripped"


def test_502_on_unknown_codes_is_not_counted_but_on_liquid_codes_it_is():
    unknown = check_5xx(statuses((200, 80), (502, 20), not_liquid_502=20), CFG)
    assert unknown.state == "ok" and any("not counted" in e for e in unknown.evidence)
    liquid = check_5xx(statuses((200, 80), (502, 20), not_liquid_502=0), CFG)
    assert liquid.state == "tripped" and any("rollback won't help" in e for e in liquid.evidence)


def test_4xx_is_not_5xx():
    assert check_5xx(statuses((200, 50), (400, 30), (404, 20)), CFG).state == "ok"


def test_too_few_calls_say_nothing_yet():
    t = check_5xx(statuses((200, 2), (500, 3)), CFG)
    assert t.state == "unknown" and "too few calls" in t.summary


def test_no_rows_or_no_metrics_is_unknown_never_ok():
    assert check_5xx(statuses(), CFG).state == "unknown"
    assert check_5xx(None, CFG, "audit log not read: x").state == "unknown"


def test_without_a_status_column_errors_bound_the_share():
    ok = check_5xx(metrics(total=100, errors=3, status=None), CFG)
    assert ok.state == "ok"
    assert check_5xx(metrics(total=100, errors=30, status=None), CFG).state == "unknown"


# ---------------------------------------------------------------- close_raw

def rounds(*per_round, cfg=CFG):
    state, out = GuardState(), []
    for probes in per_round:
        state, t = check_close_raw(probes, state, cfg)
        out.append(t)
    return out


def test_close_raw_null_trips_only_after_n_consecutive_rounds():
    ts = rounds([NULL()], [NULL()], [NULL()])
    assert [t.state for t in ts] == ["ok", "ok", "tripped"]
    assert "1/3" in ts[0].summary and "600519.SH in 3 consecutive rounds" in ts[2].summary


def test_a_present_close_raw_resets_the_streak():
    ts = rounds([NULL()], [NULL()], [PRESENT()], [NULL()], [NULL()])
    assert all(t.state == "ok" for t in ts)


def test_a_round_without_a_w4_answer_neither_counts_nor_resets():
    ts = rounds([NULL()], [probe("600519.SH", 500, '{"error": "InternalServerError"}')], [NULL()], [NULL()])
    assert [t.state for t in ts] == ["ok", "ok", "ok", "tripped"]


def test_streaks_are_per_code():
    a, b = "600519.SH", "000001.SZ"
    ts = rounds([NULL(a), PRESENT(b)], [PRESENT(a), NULL(b)], [NULL(a), NULL(b)])
    assert all(t.state == "ok" for t in ts)


def test_absent_close_raw_counts_as_null_and_transport_errors_are_unknown():
    absent = probe("600519.SH", 200, W4_BODY.replace('"close_raw": %s, ', ""))
    assert absent.close_raw_null
    (t,) = rounds([probe("600519.SH", None, transport="ConnectError: refused")])
    assert t.state == "unknown"
    (t,) = rounds([])
    assert t.state == "unknown"


def test_legacy_envelope_is_not_close_raw_null():
    legacy = probe("600519.SH", 200, '{"code": "600519.SH", "value": 1700.5, "metric": "close"}')
    assert not legacy.close_raw_null and not legacy.close_raw_present


# ---------------------------------------------------------------- Hermes

def test_value_parse_error_in_an_agent_answer_or_the_log_trips():
    t = check_hermes(HermesEvidence(("The price is 1700.5 yuan.", "Error: could not parse value from the response"),
                                    "agent-smoke at 2026-05-12T03:00:00+00:00", "/h/logs/startup.log", "ok\n"))
    assert t.tripped and "answer 2" in t.evidence[0]
    t = check_hermes(HermesEvidence((), "", "/h/agent.log", "INFO start\nERROR KeyError: 'value'\n"))
    assert t.tripped and t.evidence[0].startswith("/h/agent.log:2:")


def test_value_beside_close_raw_is_section_4_not_this_trigger():
    answer = "close_raw 1700.5 (value: 1700.5)"
    assert value_parse_error(answer) is None
    assert check_hermes(HermesEvidence((answer,), "agent-smoke", "", None)).state == "ok"


def test_no_hermes_evidence_is_unknown():
    assert check_hermes(HermesEvidence((), "", "/h/startup.log", None, "does not exist")).state == "unknown"


# ---------------------------------------------------------------- a round

def test_a_green_round_lists_every_trigger_and_w7_as_not_applicable():
    ev = RoundEvidence(statuses((200, 100)), (PRESENT(),), HermesEvidence(("1700.5 yuan",), "agent-smoke", "", None))
    state, rnd = evaluate(GuardState(), ev, CFG)
    assert [t.key for t in rnd.triggers] == ["price_5xx", "close_raw_null", "hermes_value_error", "w7_critical_diffs"]
    assert not rnd.tripped and state.rounds == 1
    assert rnd.triggers[3].state == "n/a" and "v0.3.0" in rnd.triggers[3].summary
    line = round_line(rnd)
    assert line.startswith("guard #1 03:30:00Z") and line.endswith("→ no trigger") and "\n" not in line


def test_a_tripped_round_gives_a_one_line_reason_without_quotes():
    ev = RoundEvidence(statuses((200, 90), (500, 10)), (PRESENT(),), HermesEvidence())
    _, rnd = evaluate(GuardState(), ev, CFG)
    assert [t.key for t in rnd.tripped] == ["price_5xx"]
    assert rnd.reason().startswith("guard round 1: /price 5xx 10.0%") and "'" not in rnd.reason()
    assert round_line(rnd).endswith("→ TRIGGER: 5xx")
    assert trigger_lines(rnd.tripped[0])[0] == "TRIGGER (runbook §2): /price returns 5xx on >5% of traffic"


def test_remote_text_in_the_round_line_cannot_drive_the_terminal():
    evil = dataclasses.replace(PRESENT(), detail="HTTP 200 w4\x1b]0;owned\x07")
    _, rnd = evaluate(GuardState(), RoundEvidence(statuses((200, 100)), (evil,), HermesEvidence()), CFG)
    assert "\x1b" not in round_line(rnd) and all("\x1b" not in line for line in trigger_lines(rnd.triggers[1]))


# ---------------------------------------------------------------- config

def cfg(**over):
    c = copy.deepcopy(DEFAULTS)
    c.update(over)
    return c


def test_guard_defaults_and_overrides():
    s = load_settings(cfg())
    assert (s.guard_5xx_pct, s.guard_min_calls, s.guard_null_rounds, s.guard_hermes_log) == (5.0, 20, 3, None)
    assert GuardConfig.from_settings(s) == GuardConfig(5.0, 20, 3)
    s = load_settings(cfg(guard_5xx_pct="2.5", guard_null_rounds="5", guard_hermes_log="~/h.log"))
    assert s.guard_5xx_pct == 2.5 and s.guard_null_rounds == 5 and str(s.guard_hermes_log).endswith("/h.log")


@pytest.mark.parametrize("key,value", [
    ("guard_5xx_pct", "101"), ("guard_5xx_pct", "-1"), ("guard_5xx_pct", "five"),
    ("guard_null_rounds", "0"), ("guard_null_rounds", "1.5"), ("guard_null_rounds", "101"),
    ("guard_min_calls", "0"), ("guard_min_calls", "100001"), ("guard_min_calls", "١٠"),
])
def test_bad_guard_keys_are_one_line_naming_the_key(key, value):
    with pytest.raises(BadInput) as e:
        load_settings(cfg(**{key: value}))
    assert e.value.exit_code == 2 and f"twilight.{key}" in e.value.line() and "\n" not in e.value.line()


# ---------------------------------------------------------------- the probe's aggregate, on a real DuckDB file

def test_probe_counts_502s_outside_the_liquid_list(tmp_path):
    at = lambda m: dt.datetime(2026, 5, 12, 3, m, tzinfo=dt.timezone.utc)  # noqa: E731
    rows = [AuditRow(at(10), status=200),
            AuditRow(at(11), None, error="ChainExhausted", status=502, ts_code="999999.SH"),
            AuditRow(at(12), None, error="ChainExhausted", status=502, ts_code="000000.SZ"),
            AuditRow(at(13), None, error="ChainExhausted", status=502, ts_code="600519.SH"),
            AuditRow(at(14), None, error="InternalServerError", status=500, ts_code="600519.SH")]
    db = tmp_path / "w.duckdb"
    seed_rows(db, rows, shape=TableShape("TIMESTAMP"))
    out = run_local(db, 1, NOW, liquid_codes=("600519.SH",))
    assert out["not_liquid_502"] == 2
    m = Metrics.from_probe(out)
    t = check_5xx(m, GuardConfig(5.0, 1, 3))
    assert t.state == "tripped" and "2 of 5 calls" in t.summary      # the liquid 502 and the 500
    bare = tmp_path / "bare.duckdb"        # an older schema: status but no ts_code
    con = duckdb.connect(str(bare))
    con.execute("CREATE TABLE provider_audit_log (ts TIMESTAMP, served_by VARCHAR, latency_ms DOUBLE, error VARCHAR, "
                "status INTEGER)")
    con.execute("INSERT INTO provider_audit_log VALUES ('2026-05-12 03:11:00', NULL, 1.0, 'ChainExhausted', 502)")
    con.close()
    out = run_local(bare, 1, NOW, liquid_codes=("600519.SH",))
    assert out["total"] == 1 and out["not_liquid_502"] is None
    assert check_5xx(Metrics.from_probe(out), GuardConfig(5.0, 1, 3)).state == "tripped"   # all 502s count then


# ---------------------------------------------------------------- the journal the guard's step lives in

def test_the_guard_step_keeps_what_the_rollback_saved_meanwhile(tmp_path):
    """once() holds the run's one Journal object while the rollback inside it writes its own steps and
    facts into the same object: the final save keeps them all, with the guard's step in its place."""
    from twilight_ops.builders.layout import layout
    from twilight_ops.config import DEFAULTS, load_settings
    from twilight_ops.journal import JournalStore
    from twilight_ops.phases.guard import step_name

    settings = load_settings(dict(DEFAULTS, state_dir=str(tmp_path)))
    store = JournalStore(tmp_path, "tvps", layout(settings, "/home/ops"), None)
    journal = store.held("v0.3.0-w4-cutover", host="tvps", operator="op")
    journal.facts["deploy_attempt"] = 2

    def rollback(step) -> None:             # what rollback.drive does, through the same store and object
        same = store.held("v0.3.0-w4-cutover")
        for name in ("rollback#1:pin", "rollback#1"):
            with store.step(same, name):
                pass
        same.facts["rolled_back"] = {"attempt": 2, "to": "v0.2.0@sha256:ab"}
        store.save(same)

    ours, how = store.once(journal, step_name(journal), rollback)
    assert how == "ran"
    on_disk = JournalStore(tmp_path, "tvps", layout(settings, "/home/ops"), None).load("v0.3.0-w4-cutover")
    assert [s.name for s in on_disk.steps] == ["guard-rollback#2", "rollback#1:pin", "rollback#1"]
    assert journal.steps[0] is ours and on_disk.facts["rolled_back"]["to"] == "v0.2.0@sha256:ab"
    assert step_name(on_disk) == "guard-rollback#2"


# ---------------------------------------------------------------- inv --dry

def test_dry_guard_with_auto_rollback_prints_the_plan_and_connects_nowhere(tmp_path):
    from tests.conftest import inv
    from tests.nowhere import CountingListener, write_config

    lst = CountingListener()
    try:
        cfg = write_config(tmp_path, lst.port, local_repo=str(tmp_path / "repo"))
        r = inv("--dry", "monitor", "--watch", "5", "--guard", "--auto-rollback", "--version", "v0.3.0-w4-cutover", cfg=cfg)
        assert r.returncode == 0, r.stdout + r.stderr
        assert "guard-rollback#" in r.stdout and "TWILIGHT_VERSION=<tag>@sha256" in r.stdout
        assert lst.attempts == 0 and "Traceback" not in r.stderr
    finally:
        lst.close()


def test_on_a_terminal_a_round_is_one_row_under_a_header_printed_once():
    import io

    from rich.console import Console

    from twilight_ops.render.guard import print_round

    out = io.StringIO()
    con = Console(file=out, force_terminal=True, width=200, color_system=None)
    ev = RoundEvidence(statuses((200, 90), (500, 10)), (PRESENT(),), HermesEvidence())
    _, rnd = evaluate(GuardState(), ev, CFG)
    print_round(con, rnd)
    text = out.getvalue()
    # issue 21 item 6: one line per round under a header printed once (was: a whole table per round)
    assert "   #1  03:30:00Z  TRIPPED" in text and text.rstrip().endswith("→ TRIGGER: 5xx") and "TRIPPED" in text
    for title in ("/price returns 5xx on >5% of traffic", "close_raw consistently null", "Hermes profile reports",
                  ">10 critical diffs"):
        assert title in text                                   # the legend names each §2 trigger
    assert not text.startswith("guard #")
    _, second = evaluate(GuardState(rounds=1), ev, CFG)
    print_round(con, second, first=False)
    lines = out.getvalue().splitlines()
    assert len(lines) == 8 and lines[5].startswith("round  time") and lines[7].startswith("   #2  03:30:00Z  TRIPPED")
    assert lines[6].index("→") == lines[7].index("→")            # stable widths
    assert sum(line.startswith("round  time") for line in lines) == 1


def test_the_5xx_share_is_over_client_calls_and_says_how_many_own_calls_were_left_out():
    from twilight_ops.monitor.metrics import OwnLeftOut

    m = statuses((200, 30), own=OwnLeftOut(left_out=6, recorded=9, by_kind=(("agent", 0), ("api", 6))))
    t = check_5xx(m, CFG)
    assert t.state == "ok" and t.summary == "5xx 0.0% (0 of 30 calls in 1 h, 6 own left out)"
    assert any(e.startswith("6 of twilight-ops's own calls left out") for e in t.evidence)
    none = check_5xx(statuses((200, 30), own=OwnLeftOut(0, 0)), CFG)
    assert none.summary == "5xx 0.0% (0 of 30 calls in 1 h)"
    assert any(e.startswith("no own call of twilight-ops to leave out") for e in none.evidence)
