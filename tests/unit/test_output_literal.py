"""Issue 15 §4: the tool's consoles print step names and remote text literally — no emoji
codes (`deploy#1:up:` is 🆙 to rich), no markup."""
from __future__ import annotations

from twilight_ops import output
from twilight_ops.health import ServiceStatus
from twilight_ops.phases.status import StatusReport
from twilight_ops.render.status import render as render_status

UP = "\U0001f199"


def test_a_step_name_with_an_emoji_code_prints_literally(capsys):
    output.console.print("- 2026-12-03T10:00:00+00:00 deploy#1:up: ok", markup=False)
    output.err_console.print("rollback#2:up: ok :smile:", markup=False)
    got = capsys.readouterr()
    assert "deploy#1:up: ok" in got.out and UP not in got.out
    assert "rollback#2:up: ok :smile:" in got.err


def test_status_table_cells_from_compose_are_neither_markup_nor_emoji(capsys):
    svc = ServiceStatus("backend", "running:up:", "healthy", 0, "img", "v[b]x[/b]", "r@s:ab")
    report = StatusReport("tvps", (svc,), "legacy", "HTTP 200 :up:", None, ("journal-v0.3.0:up:.json",))
    render_status(report, output.console)
    out = capsys.readouterr().out
    assert "running:up:" in out and "v[b]x[/b]" in out and "HTTP 200 :up:" in out
    assert "journal-v0.3.0:up:.json" in out and UP not in out
