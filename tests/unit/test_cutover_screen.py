"""Issue 21 §8: the clock (real elapsed T+mm:ss, the runbook's slot), the summary block `inv cutover`
ends with, and a PASS the runbook's literal rule would flag saying why (plain values)."""
from __future__ import annotations

import io

from rich.console import Console

from twilight_ops.phases.agent_smoke import literal_rule_note
from twilight_ops.phases.cutover import CutoverReport, elapsed
from twilight_ops.render import summary
from twilight_ops.screen import Lines

PRE = "ghcr.io/twilight/backend@sha256:" + "a" * 64
POST = "ghcr.io/twilight/backend@sha256:" + "b" * 64


def test_elapsed_is_minutes_and_seconds():
    assert elapsed(0) == "T+00:00"
    assert elapsed(3 + 12 / 60) == "T+03:12"
    assert elapsed(75.05) == "T+75:03"
    assert elapsed(-1) == "T+00:00"


def test_a_pass_the_literal_rule_would_flag_says_why():
    assert literal_rule_note(230908, "pre_open") == ("freshness 230908 s: pre_open serves the last session's close "
                                                     "(the runbook's literal rule flags > 86400 s outside CLOSED_FINAL)")
    assert literal_rule_note(230908, "closed_final") == ""
    assert literal_rule_note(35, "open") == ""
    assert literal_rule_note(None, "pre_open") == ""


def test_the_summary_of_a_closed_out_cutover():
    facts = {"pre_digest": PRE, "post_digest": POST, "cutover": {
        "started_at": "2026-12-07T01:00:00+00:00", "finished_at": "2026-12-07T01:42:30+00:00", "outcome": "closed-out",
        "decision": {"verdict": "GO", "reason": "every input green", "confirmed_by": "alice", "how": "typed yes"}}}
    report = CutoverReport("v0.3.0-w4-cutover", "closed-out", {"verdict": "GO"}, "/home/a/reports/tvps/v.md", 0)
    assert summary.lines(report, facts, 60, "2026-12-07T02:00:00+00:00") == [
        "cutover v0.3.0-w4-cutover: closed out",
        "  elapsed   42 min 30 s of the 60-minute budget",
        f"  before    {PRE}",
        f"  after     {POST}",
        "  decision  GO: every input green; confirmed by alice (typed yes)",
        "  report    /home/a/reports/tvps/v.md",
    ]


def test_the_summary_of_a_rollback_over_budget_and_of_a_stop():
    facts = {"pre_digest": PRE, "post_digest": POST, "rolled_back": {"to": "v0.2.0@sha256:" + "a" * 64}, "cutover": {
        "started_at": "2026-12-07T01:00:00+00:00", "finished_at": "2026-12-07T02:15:00+00:00",
        "decision": {"verdict": "ROLLBACK", "reason": "smoke: 5xx", "confirmed_by": "", "how": "--auto-rollback"}}}
    report = CutoverReport("v0.3.0-w4-cutover", "rolled-back", {}, "r.md", 1)
    got = summary.lines(report, facts, 60, "2026-12-07T03:00:00+00:00")
    assert got[1] == "  elapsed   75 min 00 s of the 60-minute budget, 15 min over"
    assert got[3] == f"  after     {POST}, rolled back to v0.2.0@sha256:{'a' * 64}"
    assert got[4] == "  decision  ROLLBACK: smoke: 5xx; --auto-rollback"
    stopped = CutoverReport("v", "stopped", {"stopped": "preflight: NO-GO"}, "r.md", 1)
    got = summary.lines(stopped, {"cutover": {"started_at": "2026-12-07T01:00:00+00:00"}}, 60, "2026-12-07T01:02:00+00:00")
    assert got == ["cutover v: stopped before the decision", "  elapsed   2 min 00 s of the 60-minute budget",
                   "  before    -", "  after     -", "  stopped   preflight: NO-GO", "  report    r.md"]


def test_a_phase_heading_is_bold_on_a_terminal():
    buf = io.StringIO()
    Lines(Console(file=buf, force_terminal=True, width=100)).heading("T+03:12  deploy  (slot T+00:05, budget 10 min)")
    assert "\x1b[1m" in buf.getvalue() and "T+03:12  deploy  (slot T+00:05" in buf.getvalue()
