"""Runbook §4: each symptom found when present, silent when not."""
from __future__ import annotations

from monitor_samples import metrics
from twilight_ops.diagnose import RUNBOOK, Observation, Evidence, diagnose, hermes_value_and_close_raw
from twilight_ops.monitor.metrics import ChainLenCount, StateCount, StatusCount

CHAIN = ("akshare-spot", "tushare-daily")


def ok(code: str = "600519.SH", **body) -> Observation:
    base = {"ts_code": code, "close_raw": 1700.5, "close_qfq": 1700.5, "freshness_seconds": 42, "market_state": "open"}
    return Observation(code, 200, {**base, **body})


def codes(evidence: Evidence) -> list[str]:
    return [f.code for f in diagnose(evidence)]


def test_healthy_evidence_finds_nothing():
    assert diagnose(Evidence(metrics(), [ok(), ok("000001.SZ")], "INFO all good", CHAIN)) == []


def test_findings_carry_the_runbook_text_word_for_word():
    [f] = diagnose(Evidence(metrics(), [ok(close_raw=None)], "", CHAIN))
    assert (f.symptom, f.likely_cause, f.action) == (
        "close_raw null but close_qfq populated",
        "adj_factor math returning when raw not — should not happen",
        "Pull logs, file bug; rollback if recurring",
    )
    assert f.as_dict()["code"] == "close_raw_null_qfq_set"


def test_close_raw_null_qfq_set():
    assert codes(Evidence(metrics(), [ok(close_raw=None), ok()])) == ["close_raw_null_qfq_set"]
    [f] = diagnose(Evidence(metrics(), [ok(close_raw=None), ok("000001.SZ", close_raw=None)]))
    assert "recurring" in f.detail
    assert codes(Evidence(metrics(), [ok(close_raw=None, close_qfq=None)])) == []   # both null: not this symptom


def test_freshness_stuck_zero_all_closing_means_stale_trade_cal():
    m = metrics(market_state=(StateCount("closing", 200),), open_total=0, akshare_spot_share_open_pct=None)
    [f] = diagnose(Evidence(m, [ok(freshness_seconds=0), ok(freshness_seconds=0)]))
    assert f.code == "freshness_stuck_zero"
    assert f.likely_cause == "Cache not hit (TTL bug or always-CLOSING state)"
    assert "trade_cal seed is stale" in f.detail


def test_freshness_stuck_zero_not_all_closing_means_ttl_bug():
    [f] = diagnose(Evidence(metrics(), [ok(freshness_seconds=0)] * 3))
    assert f.code == "freshness_stuck_zero" and "cache TTL bug" in f.detail


def test_freshness_not_stuck():
    assert codes(Evidence(metrics(), [ok(freshness_seconds=0), ok(freshness_seconds=12)])) == []
    assert codes(Evidence(metrics(), [ok(freshness_seconds=0)])) == []   # one call is not "across calls"


def test_chain_exhausted_502_from_responses_during_open():
    r = Observation("600519.SH", 502, {"detail": "chain exhausted"})
    [f] = diagnose(Evidence(metrics(), [r, r], liquid_codes=("600519.SH",)))
    assert f.code == "chain_exhausted_502" and "rollback won't help" in f.action and "600519.SH ×2" in f.detail


def test_chain_exhausted_502_from_the_audit():
    assert codes(Evidence(metrics(liquid_502_open=3))) == ["chain_exhausted_502"]


def test_502_not_liquid_or_not_open_is_not_chain_exhausted():
    illiquid = Observation("831234.BJ", 502, None)
    assert codes(Evidence(metrics(), [illiquid], liquid_codes=("600519.SH",))) == []
    closed = metrics(open_total=0, market_state=(StateCount("closed", 200),), akshare_spot_share_open_pct=None)
    assert codes(Evidence(closed, [Observation("600519.SH", 502, None)])) == []


def test_canonical_unit_violation_needs_500_and_the_error():
    log = "ERROR composer: CanonicalUnitViolation: amount in yuan, expected kyuan\n"
    r500 = Observation("600519.SH", 500, {"detail": "internal error"})
    [f] = diagnose(Evidence(metrics(), [r500], log))
    assert f.code == "canonical_unit_violation" and "do not roll back" in f.action and "1 log lines" in f.detail
    assert codes(Evidence(metrics(), [r500], "ERROR something else")) == []
    assert codes(Evidence(metrics(), [ok()], log)) == []          # the name in a log without any 500


def test_canonical_unit_violation_from_the_audit():
    m = metrics(status=(StatusCount(200, 198), StatusCount(500, 2)), unit_violation_errors=2)
    assert codes(Evidence(m)) == ["canonical_unit_violation"]


def test_source_chain_len_1_always_against_the_expected_chain():
    always_one = metrics(source_chain_len=(ChainLenCount(1, 200),), source_chain_len_errors=())
    [f] = diagnose(Evidence(always_one, expected_chain=CHAIN))
    assert f.code == "source_chain_len_1_always" and "akshare-spot → tushare-daily" in f.detail
    assert "consistent with ending on first success" in f.detail
    assert codes(Evidence(always_one, expected_chain=("tushare-daily",))) == []   # one-entry chain: by design
    assert codes(Evidence(metrics(), expected_chain=CHAIN)) == []                  # some calls fell back


def test_source_chain_len_1_with_failed_short_chains_is_a_provable_skip():
    m = metrics(source_chain_len=(ChainLenCount(1, 200),), source_chain_len_errors=(ChainLenCount(1, 4),))
    [f] = diagnose(Evidence(m, expected_chain=CHAIN))
    assert "provably skipped" in f.detail


def test_no_metrics_still_checks_responses():
    assert codes(Evidence(None, [ok(close_raw=None)], expected_chain=CHAIN)) == ["close_raw_null_qfq_set"]


def test_hermes_hook_finds_value_beside_close_raw_or_a_value_parse_error():
    assert "hermes_value_and_close_raw" in RUNBOOK
    assert hermes_value_and_close_raw([]) is None
    clean = "The latest price of 600519.SH is 1712.30 yuan (close_raw; close_qfq 1712.30), trade date 2026-05-11."
    assert hermes_value_and_close_raw([clean, "The value of a share rose; close_raw is 5."]) is None
    f = hermes_value_and_close_raw([clean, "The price of 600519.SH is 1712.30 yuan (value: 1712.30, close_raw: 1712.30)."])
    assert f is not None and f.code == "hermes_value_and_close_raw" and "1 of 2 agent answers" in f.detail
    assert "value:" in f.detail and f.likely_cause == "Old prompt template still has value mention"
    err = "I could not parse the price: the response has no `value` field (KeyError: 'value'); close_raw is 1.00."
    assert hermes_value_and_close_raw([err]) is not None
    assert codes(Evidence(None, [], agent_transcripts=['{"value": 1, "close_raw": 1}'])) == ["hermes_value_and_close_raw"]


def test_several_findings_come_in_runbook_order():
    m = metrics(liquid_502_open=1, source_chain_len=(ChainLenCount(1, 200),))
    assert codes(Evidence(m, [ok(close_raw=None)], expected_chain=CHAIN)) == [
        "close_raw_null_qfq_set", "chain_exhausted_502", "source_chain_len_1_always"]
