"""Bands, verdict and the JSON shape: plain values, boundaries included."""
from __future__ import annotations

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from monitor_samples import BASE, THRESHOLDS, metrics
from twilight_ops.errors import BadInput, CheckFailed, Unreachable
from twilight_ops.monitor.metrics import (
    Band,
    Metrics,
    assess,
    bands,
    parse_probe_json,
    parse_probe_output,
    to_json,
    verdict,
)

H, W, I, NA = Band.HEALTHY, Band.WATCH, Band.INVESTIGATE, Band.NA


@pytest.mark.parametrize(
    "err_pct, total, band",
    [(0.0, 10, H), (0.99, 10, H), (1.0, 10, W), (2.0, 10, W), (3.0, 10, W), (3.01, 10, I), (100.0, 10, I), (None, 0, NA)],
)
def test_err_pct_band(err_pct, total, band):
    assert bands(metrics(err_pct=err_pct, total=total, errors=0), THRESHOLDS)["err_pct"] is band


@pytest.mark.parametrize("p95, band", [(10.0, H), (399.9, H), (400.0, W), (600.0, W), (600.1, I), (None, NA)])
def test_p95_band(p95, band):
    assert bands(metrics(p95_ms=p95), THRESHOLDS)["p95_ms"] is band


def test_p95_is_na_without_rows():
    assert bands(metrics(total=0, errors=0, err_pct=None, p95_ms=None), THRESHOLDS)["p95_ms"] is NA


@pytest.mark.parametrize(
    "share, band",
    [(0.0, I), (0.1, W), (49.99, W), (50.0, H), (70.0, H), (90.0, H), (90.01, W), (100.0, W), (None, NA)],
)
def test_akshare_share_band(share, band):
    assert bands(metrics(akshare_spot_share_open_pct=share), THRESHOLDS)["akshare_share"] is band


def test_akshare_share_is_na_without_open_rows_or_column():
    assert bands(metrics(open_total=0, akshare_spot_share_open_pct=None), THRESHOLDS)["akshare_share"] is NA
    assert bands(metrics(open_total=None, market_state=None, akshare_spot_share_open_pct=None), THRESHOLDS)["akshare_share"] is NA


def test_verdict():
    assert verdict({"err_pct": H, "p95_ms": H, "akshare_share": H}) == "healthy"
    assert verdict({"err_pct": W, "p95_ms": W, "akshare_share": NA}) == "healthy"
    assert verdict({"err_pct": H, "p95_ms": H, "akshare_share": I}) == "investigate"
    assert verdict({"err_pct": NA, "p95_ms": NA, "akshare_share": NA}) == "healthy"


@given(st.floats(min_value=0, max_value=100, allow_nan=False))
def test_err_pct_band_follows_the_thresholds(x):
    band = bands(metrics(err_pct=x), THRESHOLDS)["err_pct"]
    expected = H if x < THRESHOLDS.err_pct_healthy else I if x > THRESHOLDS.err_pct_investigate else W
    assert band is expected


def test_to_json_shape_is_exact():
    m = metrics(read_via="copy", copied_at="2026-05-12T03:30:01.000000Z", notes=("a note",))
    a = assess(m, THRESHOLDS)
    out = to_json(m, a.bands, a.verdict, 1.0, "copy")
    assert list(out) == [
        "window_hours", "read_via", "total", "errors", "err_pct", "p95_ms", "served_by",
        "akshare_spot_share_open_pct", "market_state", "source_chain_len", "bands", "verdict",
        "copied_at", "notes",
    ]
    assert out == {
        "window_hours": 1.0,
        "read_via": "copy",
        "total": 200,
        "errors": 1,
        "err_pct": 0.5,
        "p95_ms": 300.0,
        "served_by": [
            {"served_by": "akshare-spot", "n": 140, "share_pct": 70.0},
            {"served_by": "tushare-daily", "n": 60, "share_pct": 30.0},
        ],
        "akshare_spot_share_open_pct": 70.0,
        "market_state": [{"market_state": "open", "n": 200}],
        "source_chain_len": [{"len": 1, "n": 140}, {"len": 2, "n": 60}],
        "bands": {"err_pct": "healthy", "p95_ms": "healthy", "akshare_share": "healthy"},
        "verdict": "healthy",
        "copied_at": "2026-05-12T03:30:01.000000Z",
        "notes": ["a note"],
    }
    json.dumps(out, allow_nan=False)


def test_to_json_with_nothing_computed():
    m = metrics(total=0, errors=0, err_pct=None, p95_ms=None, served_by=(), open_total=None,
                akshare_spot_share_open_pct=None, market_state=None, source_chain_len=None)
    a = assess(m, THRESHOLDS)
    out = to_json(m, a.bands, a.verdict, 2.0, "direct")
    assert out["err_pct"] is None and out["market_state"] is None and out["source_chain_len"] is None
    assert out["bands"] == {"err_pct": "n/a", "p95_ms": "n/a", "akshare_share": "n/a"}
    assert out["verdict"] == "no_data" and out["copied_at"] is None   # an empty window is not healthy


# ---------------------------------------------------------------- parsing

@pytest.mark.parametrize("text", ["", "Traceback (most recent call last):\n  boom", "[1, 2]", "{not json", '{"a": 1}\n{"b": 2}'])
def test_garbage_is_a_domain_error(text):
    with pytest.raises(CheckFailed):
        parse_probe_output(text)


def test_wrong_shape_is_a_domain_error():
    with pytest.raises(CheckFailed, match="expected shape"):
        parse_probe_output('{"read_via": "direct", "total": 1}')
    with pytest.raises(CheckFailed):
        parse_probe_output(json.dumps({"read_via": "somewhere"}))


@pytest.mark.parametrize(
    "kind, cls, code",
    [("missing_file", BadInput, 2), ("missing_table", BadInput, 2), ("schema", BadInput, 2),
     ("torn_copy", Unreachable, 3), ("no_space", Unreachable, 3), ("duckdb", Unreachable, 3),
     ("internal", CheckFailed, 1), ("never-heard-of", CheckFailed, 1)],
)
def test_probe_errors_become_domain_errors(kind, cls, code):
    with pytest.raises(cls) as e:
        parse_probe_json(json.dumps({"error": "it broke", "kind": kind}))
    assert e.value.exit_code == code and "it broke" in e.value.line()


def test_garbage_message_names_the_last_stderr_line():
    with pytest.raises(CheckFailed, match="exited 127: python: not found"):
        parse_probe_json("", exited=127, stderr="sh: 1\npython: not found\n")


def test_metrics_round_trip_through_probe_dict():
    d = {
        "probe": 1, "read_via": "direct", "copied_at": None,
        "window": {"hours": 1.0, "start_utc": BASE.window_start_utc, "end_utc": BASE.window_end_utc},
        "ts_type": "TIMESTAMP", "total": 200, "errors": 1, "err_pct": 0.5, "p95_ms": 300.0,
        "newest_utc": BASE.newest_utc,
        "served_by": [{"served_by": "akshare-spot", "n": 140, "share_pct": 70.0},
                      {"served_by": "tushare-daily", "n": 60, "share_pct": 30.0}],
        "open_total": 200, "akshare_spot_share_open_pct": 70.0,
        "market_state": [{"market_state": "open", "n": 200}],
        "source_chain_len": [{"len": 1, "n": 140}, {"len": 2, "n": 60}],
        "source_chain_len_errors": [{"len": 2, "n": 1}],
        "status": [{"status": 200, "n": 199}, {"status": 502, "n": 1}],
        "status_open": [{"status": 200, "n": 199}, {"status": 502, "n": 1}],
        "liquid_502_open": 0, "unit_violation_errors": 0, "notes": [], "elapsed_ms": 3.2,
    }
    assert Metrics.from_probe(d) == BASE
