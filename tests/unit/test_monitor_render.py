"""What the operator reads: the report and one line per watch round."""
from __future__ import annotations

from rich.console import Console

from monitor_samples import THRESHOLDS, metrics
from twilight_ops.monitor.metrics import assess
from twilight_ops.render.monitor import CROSSED, render_report, round_line


def text_of(m) -> str:
    console = Console(record=True, width=220, color_system=None)
    render_report(console, assess(m, THRESHOLDS))
    return console.export_text()


def test_report_healthy_direct():
    out = text_of(metrics())
    assert "0.50 %" in out and "300 ms" in out and "70.00 %" in out
    assert "verdict: HEALTHY" in out
    assert "read directly, read-only" in out
    assert "served_by" in out and "akshare-spot" in out


def test_report_akshare_broken_from_copy():
    out = text_of(metrics(read_via="copy", copied_at="2026-05-12T03:30:01.2Z", akshare_spot_share_open_pct=0.0))
    assert "falls to 0 %: akshare provider broken" in out
    assert "verdict: INVESTIGATE" in out
    assert "read from a consistent copy taken at 2026-05-12T03:30:01.2Z" in out


def test_report_notes_for_skipped_metrics():
    m = metrics(market_state=None, open_total=None, akshare_spot_share_open_pct=None,
                notes=("market_state column missing (older schema): …",))
    out = text_of(m)
    assert "market_state not recorded (older schema)" in out
    assert "note: market_state column missing" in out


def test_report_empty_window():
    out = text_of(metrics(total=0, errors=0, err_pct=None, p95_ms=None, served_by=(), open_total=0,
                          akshare_spot_share_open_pct=None, market_state=(), source_chain_len=()))
    assert "no /price calls in the window" in out and "no OPEN rows in the window" in out
    assert "verdict: NO DATA" in out and "HEALTHY" not in out
    assert "AuditLog is not writing" in out and "inv smoke" in out


def test_round_line_trend_and_first_crossing():
    r1 = assess(metrics(err_pct=0.5, p95_ms=300.0), THRESHOLDS)
    r2 = assess(metrics(err_pct=4.0, p95_ms=250.0), THRESHOLDS)
    r3 = assess(metrics(err_pct=5.0, p95_ms=250.0), THRESHOLDS)
    first = round_line(None, r1, 1)
    assert first.startswith("#1 03:30:00Z n=200 err 0.50%   p95 300ms   ak 70% healthy")
    second = round_line(r1, r2, 2)
    assert "err 4.00% ▲" in second and "p95 250ms ▼" in second
    assert second.endswith(f"{CROSSED} (err_pct)")
    third = round_line(r2, r3, 3)
    assert "investigate" in third and CROSSED not in third      # still there, not crossing again
    assert "p95 250ms =" in third


def test_round_line_marks_copy_reads():
    assert round_line(None, assess(metrics(read_via="copy"), THRESHOLDS), 1).endswith("[copy]")


def test_report_and_round_line_say_how_many_own_calls_were_left_out():
    from twilight_ops.monitor.metrics import OwnLeftOut

    m = metrics(own=OwnLeftOut(left_out=4, recorded=5, by_kind=(("agent", 1), ("api", 3))))
    assert "4 of twilight-ops's own calls left out" in text_of(m)
    assert " (own 4 left out) " in round_line(None, assess(m, THRESHOLDS), 1)
    assert "own" not in round_line(None, assess(metrics(), THRESHOLDS), 1)
