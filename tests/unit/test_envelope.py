"""The /price smoke core: contracts, red flags, warnings, next steps, rendering.

Bodies under tests/data/envelopes are /price responses as curl/httpx receive them
(runbook §1 T+00:15 sample and its failure modes); variations are built from
w4_ok.json with one field changed, so each test names the one thing it breaks.
"""
from __future__ import annotations

import datetime as dt
import io
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from jsonschema import Draft202012Validator
from rich.console import Console

from twilight_ops import envelope
from twilight_ops.config import DEFAULTS, load_settings
from twilight_ops.envelope import MEANINGS, Verdict, classify, classify_text, evaluate, load_schema
from twilight_ops.render.smoke import render

DATA = Path(__file__).resolve().parents[1] / "data" / "envelopes"
NOW = dt.datetime(2026, 5, 11, 8, 0, tzinfo=dt.timezone.utc)   # after every fixture's as_of
TOLERANCE = load_settings(DEFAULTS).thresholds.adj_tolerance   # 0.01, as the task will pass it
VERDICT_KEYS = {"verdict", "envelope", "status", "red_flags", "warnings"}
RED_FLAG_KEYS = {"code", "message", "pointer"}
WARNING_KEYS = {"code", "message"}
NEXT_STEPS = {"continue", "rollback", "investigate", "fix-forward"}
GOOD_W4 = ["w4_ok.json", "w4_runbook_sample.json", "w4_open_akshare.json", "w4_no_factor.json"]


def raw(name: str) -> bytes:
    return (DATA / name).read_bytes()


def w4_ok(**changes: Any) -> dict[str, Any]:
    body = json.loads(raw("w4_ok.json"))
    body.update(changes)
    return body


def judge(status: int | None, body: Any, expect: str = "w4", **kwargs: Any) -> Verdict:
    text = body if body is None or isinstance(body, (str, bytes)) else json.dumps(body)
    return evaluate(status, text, expect, NOW, TOLERANCE, **kwargs)  # type: ignore[arg-type]


def codes(flags: tuple[envelope.Flag, ...]) -> list[str]:
    return [f.code for f in flags]


def pointers(v: Verdict) -> set[str | None]:
    return {f.pointer for f in v.red_flags}


def assert_well_formed(v: Verdict) -> None:
    out = v.to_json()
    assert set(out) == VERDICT_KEYS
    assert all(set(f) == RED_FLAG_KEYS for f in out["red_flags"])
    assert all(set(f) == WARNING_KEYS for f in out["warnings"])
    assert out["verdict"] == ("red" if out["red_flags"] else "green")
    assert out["envelope"] in {"w4", "legacy", "mixed", "unknown"}
    assert v.next_step in NEXT_STEPS and v.next_action
    assert (v.next_step == "continue") == (v.verdict == "green")
    json.dumps(out, allow_nan=False)


# ---------------------------------------------------------------- the schema itself


def test_schema_is_a_valid_draft_2020_12_schema():
    schema = load_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    Draft202012Validator.check_schema(schema)
    assert {"w4", "legacy", "provider"} <= set(schema["$defs"])


def test_schema_is_read_from_the_repo_schemas_dir():
    assert envelope.schema_path().resolve() == Path(__file__).resolve().parents[2] / "schemas" / "price-envelope.schema.json"


@pytest.mark.parametrize("name", GOOD_W4 + ["legacy_ok.json"])
def test_good_bodies_match_exactly_one_contract_at_the_top_level(name):
    validator = Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert list(validator.iter_errors(json.loads(raw(name)))) == []


def test_a_mixed_body_matches_neither_contract():
    mixed = json.loads(raw("mixed.json"))
    validator = Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER)
    assert not validator.is_valid(mixed)
    w4_only = Draft202012Validator({"$ref": "#/$defs/w4", "$defs": load_schema()["$defs"]})
    assert [e.validator for e in w4_only.iter_errors(mixed)] == ["not"]


def test_format_is_only_enforced_with_a_format_checker():
    bad = json.loads(raw("bad_date.json"))
    assert Draft202012Validator(load_schema()).is_valid(bad)   # format as a mere annotation
    assert not Draft202012Validator(load_schema(), format_checker=Draft202012Validator.FORMAT_CHECKER).is_valid(bad)


# ---------------------------------------------------------------- green


@pytest.mark.parametrize("name", GOOD_W4)
def test_good_w4_bodies_are_green_with_nothing_to_note(name):
    v = judge(200, raw(name))
    assert (v.verdict, v.envelope, v.next_step) == ("green", "w4", "continue")
    assert v.red_flags == () and v.warnings == ()
    assert "T+00:25" in v.next_action


@pytest.mark.parametrize("state", [[], {}, ["open"]])
def test_a_stale_quote_with_a_non_string_market_state_is_judged_not_raised(state):
    """Found by the property test below: `state in IN_SESSION` raised TypeError on a list."""
    v = judge(200, w4_ok(freshness_seconds=3e16, market_state=state))
    assert_well_formed(v)
    assert not v.green and "stale_quote" not in codes(v.red_flags)


def test_close_qfq_null_is_fine_when_tushare_returned_no_factor():
    v = judge(200, raw("w4_no_factor.json"))
    assert v.body is not None and v.body["close_qfq"] is None and v.body["adj_factor"] is None
    assert v.green


def test_historical_qfq_with_differing_factors_is_green():
    v = judge(200, w4_ok(trade_date="2024-01-02", adj_factor=7.9, close_qfq=round(1712.3 * 7.9 / 8.4188, 2),
                         close_hfq=round(1712.3 * 7.9, 2)))
    assert v.green and v.warnings == ()


# ---------------------------------------------------------------- T+00:15 red flags (expect w4)


def test_close_raw_null_is_a_rollback():
    v = judge(200, raw("close_raw_null.json"))
    assert codes(v.red_flags) == ["close_raw_missing"]
    assert v.red_flags[0].pointer == "/close_raw"
    assert "Composer didn't return a Quote" in v.red_flags[0].message
    assert v.next_step == "rollback"


def test_close_raw_absent_is_reported_once_not_again_as_a_schema_error():
    body = w4_ok(close_qfq=None)
    del body["close_raw"]
    v = judge(200, body)
    assert codes(v.red_flags) == ["close_raw_missing"]
    assert "absent" in v.red_flags[0].detail


@pytest.mark.parametrize("name", ["qfq_without_raw.json", "close_raw_absent.json"])
def test_qfq_without_raw_cites_runbook_section_4(name):
    v = judge(200, raw(name))
    assert codes(v.red_flags) == ["close_raw_missing"]
    message = v.red_flags[0].message
    assert "adj_factor math returning when raw not" in message and "§4 row 1" in message
    assert "rollback if recurring" in message
    assert v.next_step == "investigate" and "recurs" in v.next_action


def test_old_envelope_means_the_pull_did_not_take():
    v = judge(200, raw("legacy_ok.json"))
    assert (v.envelope, codes(v.red_flags), v.next_step) == ("legacy", ["legacy_envelope"], "rollback")
    assert "pull didn't take" in v.red_flags[0].message
    assert v.red_flags[0].pointer == "/value"


def test_w4_with_value_and_metric_is_mixed():
    v = judge(200, raw("mixed.json"))
    assert (v.envelope, codes(v.red_flags), v.next_step) == ("mixed", ["mixed_envelope"], "rollback")


@pytest.mark.parametrize("name", ["canonical_unit_violation_500.json", "canonical_unit_violation_500_error_field.json"])
def test_500_with_canonical_unit_violation_is_fix_forward_never_rollback(name):
    v = judge(500, raw(name))
    assert codes(v.red_flags) == ["http_5xx"]
    message = v.red_flags[0].message
    assert "CanonicalUnitViolation" in message and "do not roll back" in message and "fix forward" in message
    assert v.next_step == "fix-forward"
    assert "do NOT roll back" in v.next_action


@pytest.mark.parametrize("status", [500, 503, 504])
def test_other_5xx_is_a_rollback_and_points_at_the_backend_logs(status):
    v = judge(status, raw("internal_error_500.txt"))
    assert codes(v.red_flags) == ["http_5xx"]
    assert "Composer or AuditLog is failing" in v.red_flags[0].message
    assert "docker compose logs backend --tail=200" in v.red_flags[0].message
    assert v.next_step == "rollback"


@pytest.mark.parametrize("name", ["chain_exhausted_502.json", "chain_exhausted_502_error_field.json"])
def test_502_chain_exhausted_is_investigate_because_rollback_wont_help(name):
    v = judge(502, raw(name))
    assert codes(v.red_flags) == ["http_5xx"]
    assert "rollback won't help" in v.red_flags[0].message
    assert "ChainExhausted" in v.red_flags[0].detail
    assert v.next_step == "investigate"


@pytest.mark.parametrize("status", [401, 403])
def test_unauthorized_blocks_but_is_not_a_rollback(status):
    v = judge(status, raw("unauthorized_401.json"))
    assert (v.verdict, codes(v.red_flags), v.next_step) == ("red", ["unauthorized"], "investigate")
    assert "token problem" in v.red_flags[0].message and "not a rollback trigger" in v.red_flags[0].message


def test_transport_error_is_its_own_flag():
    v = judge(None, None, transport_error="ConnectTimeout: timed out after 10.0 s")
    assert (v.status, v.envelope, codes(v.red_flags), v.next_step) == (None, "unknown", ["transport_error"], "investigate")
    assert "ConnectTimeout" in v.red_flags[0].detail


def test_no_status_without_an_error_text_is_still_a_transport_error():
    assert codes(judge(None, raw("w4_ok.json")).red_flags) == ["transport_error"]


def test_transport_error_wins_over_a_partial_response():
    assert codes(judge(200, raw("w4_ok.json"), transport_error="ReadError: connection reset").red_flags) == ["transport_error"]


@pytest.mark.parametrize("status", [301, 404, 422, 429])
def test_unexpected_status_is_investigated(status):
    v = judge(status, '{"detail":"Not Found"}')
    assert codes(v.red_flags) == ["http_status"] and v.next_step == "investigate"


# ---------------------------------------------------------------- schema violations


@pytest.mark.parametrize("body", [raw("not_json.txt"), raw("empty.txt"), None, b"   \n", raw("nan.json"),
                                  b"\xff\xfe\x00garbage", b'{"close_raw": 1e400}', b"[" * 100_000])
def test_a_body_that_is_not_a_json_document_is_a_schema_violation(body):
    v = judge(200, body)
    assert codes(v.red_flags) == ["schema_violation"]
    assert v.red_flags[0].pointer is None
    assert (v.envelope, v.next_step) == ("unknown", "rollback")


@pytest.mark.parametrize("text", ["[]", "42", '"600519.SH"', "null", "true"])
def test_json_that_is_not_an_object_is_a_schema_violation_at_the_root(text):
    v = judge(200, text)
    assert codes(v.red_flags) == ["schema_violation"] and pointers(v) == {""}
    assert "not of type 'object'" in v.red_flags[0].message


def test_bad_date_fails_the_date_format():
    v = judge(200, raw("bad_date.json"))
    assert codes(v.red_flags) == ["schema_violation"]
    assert v.red_flags[0].pointer == "/trade_date"
    assert "'2026-02-30' is not a 'date'" in v.red_flags[0].message


def test_bad_datetime_fails_the_rfc3339_format():
    v = judge(200, raw("bad_datetime.json"))
    assert codes(v.red_flags) == ["schema_violation"]
    assert v.red_flags[0].pointer == "/as_of"
    assert "is not a 'date-time'" in v.red_flags[0].message


@pytest.mark.parametrize("as_of", ["2026-05-08T07:30:00", "2026-05-08T25:30:00+00:00", "2026-05-08", "08/05/2026 07:30"])
def test_date_times_without_offset_or_out_of_range_fail(as_of):
    assert pointers(judge(200, w4_ok(as_of=as_of))) == {"/as_of"}


@pytest.mark.parametrize("trade_date", ["2026-13-01", "2026-5-8", "20260508", "2026-05-08T00:00:00Z"])
def test_bad_trade_dates_fail(trade_date):
    assert pointers(judge(200, w4_ok(trade_date=trade_date))) == {"/trade_date"}


def test_units_must_be_canonical():
    v = judge(200, raw("wrong_units.json"))
    assert set(codes(v.red_flags)) == {"schema_violation"}
    assert pointers(v) == {"/units/volume", "/units/amount"}


def test_market_state_is_lowercase_as_served():
    assert pointers(judge(200, raw("market_state_upper.json"))) == {"/market_state"}


@pytest.mark.parametrize("changes, pointer", [
    ({"ts_code": "600519"}, "/ts_code"),
    ({"ts_code": "600519.HK"}, "/ts_code"),
    ({"source": "sina"}, "/source"),
    ({"source_chain": ["tushare-daily", "eastmoney"]}, "/source_chain/1"),
    ({"source_chain": []}, "/source_chain"),
    ({"low_raw": -1.0}, "/low_raw"),
    ({"close_hfq": "14415.51"}, "/close_hfq"),
    ({"volume": -5}, "/volume"),
    ({"freshness_seconds": 4.5}, "/freshness_seconds"),
    ({"freshness_seconds": -1}, "/freshness_seconds"),
    ({"adj_factor": 0}, "/adj_factor"),
    ({"cite": {"tool_call_id": "tc_1"}}, "/cite"),
    ({"units": {"close_raw": "yuan", "amount": "kyuan"}}, "/units"),
    ({"units": {"close_raw": "yuan", "volume": "hand", "amount": "kyuan", "turnover": "pct"}}, "/units/turnover"),
])
def test_field_rules(changes, pointer):
    v = judge(200, w4_ok(**changes))
    assert codes(v.red_flags) == ["schema_violation"]
    assert pointers(v) == {pointer}
    assert v.next_step == "rollback"


def test_a_missing_required_field_points_at_the_object():
    body = w4_ok()
    del body["units"]
    v = judge(200, body)
    assert [(f.pointer, f.detail) for f in v.red_flags] == [("", "'units' is a required property")]


def test_schema_errors_are_best_first_and_capped():
    body = w4_ok(trade_date="2026-02-30", low_raw=-1)
    del body["cite"]
    v = judge(200, body)
    assert [f.pointer for f in v.red_flags] == ["", "/low_raw", "/trade_date"]

    v = judge(200, {"detail": "ok"})   # an object that is neither contract: every field missing
    assert codes(v.red_flags) == ["schema_violation"] * envelope.MAX_SCHEMA_FLAGS
    assert codes(v.warnings) == ["schema_errors_truncated"]
    assert v.envelope == "unknown"


# ---------------------------------------------------------------- after a rollback (expect legacy, §2.4)


def test_after_rollback_the_legacy_body_is_green():
    v = judge(200, raw("legacy_ok.json"), "legacy")
    assert (v.verdict, v.envelope, v.next_step) == ("green", "legacy", "continue")
    assert "§2.4" in v.next_action


@pytest.mark.parametrize("name", GOOD_W4 + ["close_raw_null.json"])
def test_after_rollback_a_w4_body_means_the_revert_did_not_take(name):
    v = judge(200, raw(name), "legacy")
    assert (v.envelope, codes(v.red_flags), v.next_step) == ("w4", ["w4_envelope"], "rollback")
    assert "revert didn't take" in v.red_flags[0].message and "§2.1" in v.next_action


def test_after_rollback_mixed_is_investigated():
    v = judge(200, raw("mixed.json"), "legacy")
    assert (codes(v.red_flags), v.next_step) == (["mixed_envelope"], "investigate")


@pytest.mark.parametrize("body, pointer", [
    ({"code": "600519.SH", "metric": "close"}, ""),
    ({"code": "600519.SH", "metric": "close", "value": "1712.3"}, "/value"),
    ({"code": "", "metric": "close", "value": 1712.3}, "/code"),
])
def test_after_rollback_the_legacy_contract_is_validated(body, pointer):
    v = judge(200, body, "legacy")
    assert codes(v.red_flags) == ["schema_violation"] and pointers(v) == {pointer}
    assert "legacy (v0.2.0)" in v.red_flags[0].message
    assert v.next_step == "investigate"


@pytest.mark.parametrize("status, name", [(500, "canonical_unit_violation_500.json"), (503, "internal_error_500.txt")])
def test_after_rollback_5xx_is_investigated_not_rolled_back_further(status, name):
    v = judge(status, raw(name), "legacy")
    assert (codes(v.red_flags), v.next_step) == (["http_5xx"], "investigate")


@pytest.mark.parametrize("expect, now, tolerance, error", [
    ("v3", NOW, TOLERANCE, ValueError),
    ("w4", "2026-05-11T08:00:00Z", TOLERANCE, TypeError),
    ("w4", NOW, "0.01", ValueError),          # config defaults are strings until load_settings()
    ("w4", NOW, -0.01, ValueError),
    ("w4", NOW, float("nan"), ValueError),
])
def test_bad_caller_arguments_fail_whatever_the_response(expect, now, tolerance, error):
    for status, body in [(200, raw("w4_ok.json")), (None, None)]:
        with pytest.raises(error):
            evaluate(status, body, expect, now, tolerance)


# ---------------------------------------------------------------- warnings


@pytest.mark.parametrize("changes, code, pointer", [
    ({"source": "akshare-spot"}, "source_not_in_chain", "/source"),
    ({"high_raw": 1710.0}, "ohlc_inconsistent", None),           # close 1712.3 above the high
    ({"low_raw": 1705.0}, "ohlc_inconsistent", None),            # open 1701.0 below the low
    ({"as_of": "2026-05-11T08:10:00+00:00"}, "as_of_in_future", "/as_of"),
    ({"as_of": "2026-05-11T16:10:00+08:00"}, "as_of_in_future", "/as_of"),
    ({"close_qfq": 1650.0}, "qfq_mismatch", "/close_qfq"),
    ({"close_hfq": 1712.3}, "hfq_mismatch", "/close_hfq"),
    ({"adj_factor_latest": 9.1}, "qfq_mismatch", "/close_qfq"),
    ({"close_qfq": None}, "qfq_null", "/close_qfq"),
    ({"freshness_seconds": 90_000, "market_state": "open"}, "stale_quote", "/freshness_seconds"),
    ({"freshness_seconds": 90_000, "market_state": "lunch_break"}, "stale_quote", "/freshness_seconds"),
])
def test_each_warning_is_noted_without_blocking(changes, code, pointer):
    v = judge(200, w4_ok(**changes))
    assert (v.verdict, v.next_step) == ("green", "continue")
    assert codes(v.warnings) == [code]
    assert v.warnings[0].pointer == pointer
    assert v.warnings[0].meaning == MEANINGS[code].meaning


@pytest.mark.parametrize("changes", [
    {"as_of": "2026-05-11T08:01:30+00:00"},                          # 90 s ahead: within the clock skew
    {"close_qfq": round(1712.3 * 1.009, 2)},                          # inside the 1 % tolerance
    {"close_hfq": round(1712.3 * 8.4188 * 0.992, 2)},
    {"freshness_seconds": 90_000, "market_state": "closed_final"},    # the last close is a day old…
    {"freshness_seconds": 240_000, "market_state": "closed"},         # …or a weekend old
    {"freshness_seconds": 66 * 3600, "market_state": "pre_open"},     # Monday 09:00, Friday's close
    {"close_qfq": None, "close_hfq": None, "adj_factor": None, "adj_factor_latest": None},
])
def test_no_warning_inside_the_limits(changes):
    assert judge(200, w4_ok(**changes)).warnings == ()


def test_tolerance_is_the_callers():
    body = w4_ok(close_qfq=round(1712.3 * 1.009, 2))
    assert codes(evaluate(200, json.dumps(body), "w4", NOW, 0.001).warnings) == ["qfq_mismatch"]


def test_a_naive_now_is_taken_as_utc():
    body = json.dumps(w4_ok(as_of="2026-05-11T08:10:00+00:00"))
    assert codes(evaluate(200, body, "w4", NOW.replace(tzinfo=None), TOLERANCE).warnings) == ["as_of_in_future"]


def test_warnings_come_with_red_flags_when_both_apply():
    v = judge(200, w4_ok(trade_date="2026-02-30", source="akshare-spot"))
    assert codes(v.red_flags) == ["schema_violation"] and codes(v.warnings) == ["source_not_in_chain"]


# ---------------------------------------------------------------- classify, to_json, meanings


@pytest.mark.parametrize("body, kind", [
    (json.loads(raw("w4_ok.json")), "w4"),
    (json.loads(raw("legacy_ok.json")), "legacy"),
    (json.loads(raw("mixed.json")), "mixed"),
    ({"close_qfq": 1700.5}, "w4"),
    ({"value": 1700.5}, "legacy"),
    ({"ts_code": "600519.SH", "metric": "close"}, "mixed"),
    ({"source": "tushare-daily", "as_of": "2026-05-08T07:30:12+00:00"}, "unknown"),
    ({}, "unknown"),
    ([], "unknown"),
    (None, "unknown"),
])
def test_classify(body, kind):
    assert classify(body) == kind


def test_classify_text_reads_raw_bodies():
    assert classify_text(raw("w4_ok.json")) == "w4"
    assert classify_text(raw("legacy_ok.json").decode()) == "legacy"
    assert classify_text(raw("not_json.txt")) == "unknown"
    assert classify_text(None) == "unknown"


def test_to_json_has_exactly_the_agreed_keys():
    red = judge(200, raw("wrong_units.json")).to_json()
    assert set(red) == VERDICT_KEYS
    assert red["verdict"] == "red" and red["envelope"] == "w4" and red["status"] == 200
    assert [set(f) for f in red["red_flags"]] == [RED_FLAG_KEYS, RED_FLAG_KEYS]
    green = judge(200, w4_ok(source="akshare-spot")).to_json()
    assert green["red_flags"] == [] and [set(f) for f in green["warnings"]] == [WARNING_KEYS]
    assert green["warnings"][0]["message"].startswith("source 'akshare-spot' is not in source_chain")


def test_every_code_has_a_meaning_and_a_next_step():
    red_codes = {"close_raw_missing", "legacy_envelope", "mixed_envelope", "http_5xx", "schema_violation",
                 "unauthorized", "transport_error", "http_status", "w4_envelope"}
    warning_codes = {"source_not_in_chain", "ohlc_inconsistent", "as_of_in_future", "qfq_mismatch",
                     "hfq_mismatch", "qfq_null", "stale_quote", "schema_errors_truncated"}
    assert set(MEANINGS) == red_codes | warning_codes
    assert all(m.next_step in NEXT_STEPS and m.meaning and m.action for m in MEANINGS.values())
    assert {c for c in red_codes if MEANINGS[c].next_step == "continue"} == set()
    assert {MEANINGS[c].next_step for c in warning_codes} == {"continue"}


def test_verdict_is_immutable_and_compares_by_value():
    a, b = judge(200, raw("w4_ok.json")), judge(200, raw("w4_ok.json"))
    assert a == b and hash(a) == hash(b)
    with pytest.raises(AttributeError):
        a.verdict = "red"  # type: ignore[misc]
    with pytest.raises(TypeError):
        a.body["close_raw"] = 0  # type: ignore[index]


# ---------------------------------------------------------------- never raises


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False) | st.text(),
    lambda children: st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=12), children, max_size=6),
    max_leaves=40,
)
statuses = st.none() | st.sampled_from([200, 201, 204, 301, 401, 403, 404, 500, 502, 503]) | st.integers(-1, 1000)
expects = st.sampled_from(["w4", "legacy"])
W4_KEYS = list(json.loads(raw("w4_ok.json"))) + ["value", "metric", "code"]


@settings(max_examples=300, suppress_health_check=[HealthCheck.too_slow])
@given(value=json_values, status=statuses, expect=expects)
def test_evaluate_never_raises_on_any_json(value, status, expect):
    assert_well_formed(evaluate(status, json.dumps(value), expect, NOW, TOLERANCE))


@settings(max_examples=300)
@given(body=st.binary(max_size=300), status=statuses, expect=expects)
def test_evaluate_never_raises_on_any_bytes(body, status, expect):
    assert_well_formed(evaluate(status, body, expect, NOW, TOLERANCE))


@settings(max_examples=200, suppress_health_check=[HealthCheck.too_slow])
@given(changes=st.dictionaries(st.sampled_from(W4_KEYS), json_values, max_size=6), expect=expects,
       tolerance=st.floats(min_value=0, max_value=1))
def test_evaluate_and_render_never_raise_on_w4_bodies_with_arbitrary_fields(changes, expect, tolerance):
    v = evaluate(200, json.dumps(w4_ok(**changes)), expect, NOW, tolerance)
    assert_well_formed(v)
    render(v, Console(file=io.StringIO(), width=100))


@pytest.mark.parametrize("changes", [
    {"close_raw": 10**400}, {"adj_factor": 10**400, "adj_factor_latest": 1e-300},
    {"as_of": "9999-12-31T23:59:60.999999999-23:59"}, {"as_of": "0001-01-01T00:00:00+23:59"},
])
def test_extreme_values_do_not_raise(changes):
    assert_well_formed(judge(200, w4_ok(**changes)))


# ---------------------------------------------------------------- rendering


def rendered(v: Verdict) -> str:
    out = io.StringIO()
    render(v, Console(file=out, width=140, color_system=None))
    return out.getvalue()


def test_render_green_shows_fields_with_units_and_the_next_step():
    text = rendered(judge(200, raw("w4_ok.json")))
    assert "GREEN" in text and "envelope w4 (expected w4)" in text and "HTTP 200" in text
    assert "1712.3 yuan" in text and "29871.0 hand" in text and "closed_final" in text
    assert "NEXT STEP: CONTINUE" in text


def test_render_red_shows_each_flag_with_its_meaning():
    text = rendered(judge(500, raw("canonical_unit_violation_500.json")))
    assert "http_5xx" in text and "fix forward" in text
    assert "NEXT STEP: FIX-FORWARD" in text and "do NOT roll back" in text


def test_render_marks_absent_fields():
    body = w4_ok()
    del body["close_raw"]
    text = rendered(judge(200, body))
    assert "absent" in text and "close_raw_missing" in text


def test_render_never_prints_anything_token_like():
    token = "3f9c2a7be41d08c65e7f1a2b9d4c8e0f1a3b5c7d9e2f4a6b8c0d1e3f"   # a Tushare-shaped token
    jwt = "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJvcGVyYXRvciJ9.c2lnbmF0dXJl"
    body = w4_ok(cite={"kind": "tool", "token": token, "note": f"Bearer {jwt}"}, trade_date=token)
    text = rendered(judge(200, body)) + rendered(judge(500, f"CanonicalUnitViolation Authorization: Bearer {token}"))
    text += rendered(judge(None, None, transport_error=f"ConnectError for https://api.fsagent.cc?token={token}"))
    assert token not in text and jwt not in text and "***" in text


def test_render_does_not_interpret_body_text_as_markup():
    text = rendered(judge(200, w4_ok(ts_code="[bold red]600519[/]")))
    assert "[bold red]600519[/]" in text
