"""inv cutover's pure parts: the start/resume rule, the T+ clock, the Markdown report."""
from __future__ import annotations

import pytest

from twilight_ops import runbook
from twilight_ops.errors import BadInput
from twilight_ops.journal import Journal, Step
from twilight_ops.phases import cutover as c
from twilight_ops.render import report

V = "v0.3.0-w4-cutover"
BUDGETS = {"cutover": 60, "rollback": 30, "preflight": 5, "tag_push": 10, "smoke": 5, "hermes_reinstall": 10,
           "agent_smoke": 15, "closeout": 5}


def j(facts=None, steps=()) -> Journal:
    return Journal(version=V, host="tvps", operator="op@laptop", created_at="2026-12-03T10:00:00+00:00",
                   updated_at="2026-12-03T10:40:00+00:00", facts=dict(facts or {}), steps=list(steps))


def test_a_fresh_journal_starts():
    assert c.check_start(j(), c.Options(), V) == "start"


def test_an_unfinished_cutover_needs_resume_and_says_so():
    jr = j({"cutover": {"started_at": "2026-12-03T10:00:00+00:00"}},
           [Step("cutover:deploy", "2026-12-03T10:05:00+00:00", outcome="running")])
    with pytest.raises(BadInput) as e:
        c.check_start(jr, c.Options(), V)
    assert "in progress" in e.value.message and "last phase: deploy" in e.value.message
    assert e.value.hint == f"resume it: inv cutover --version {V} --resume"
    assert c.check_start(jr, c.Options(resume=True), V) == "resume"


def test_resume_without_a_cutover_is_bad_input():
    with pytest.raises(BadInput, match="no cutover"):
        c.check_start(j(), c.Options(resume=True), V)


def test_a_finished_cutover_is_finished_with_or_without_resume():
    jr = j({"cutover": {"started_at": "x", "finished_at": "y"}})
    assert c.check_start(jr, c.Options(), V) == "finished" == c.check_start(jr, c.Options(resume=True), V)


@pytest.mark.parametrize("minutes,text", [(0, "T+00:00"), (5.9, "T+00:05"), (61, "T+01:01"), (-1, "T+00:00")])
def test_tplus(minutes, text):
    assert runbook.tplus(minutes) == text


def test_report_has_timeline_budgets_decision_digests_and_escapes_remote_text():
    steps = [Step("cutover:preflight", "2026-12-03T10:00:00+00:00", "2026-12-03T10:01:00+00:00", "ok"),
             Step("preflight", "2026-12-03T10:00:50+00:00", "2026-12-03T10:01:00+00:00", "ok",
                  {"checks": [{"id": "no_traffic", "status": "PASS", "reason": "0 calls | \x1b[31mred"}]}),
             Step("cutover:agent-smoke", "2026-12-03T10:05:00+00:00", "2026-12-03T10:25:00+00:00", "ok"),
             Step("decide", "2026-12-03T10:26:00+00:00", "2026-12-03T10:26:01+00:00", "ok",
                  {"verdict": "GO", "reason": "all four agent checks green + curl smoke green", "next_step": "inv closeout",
                   "inputs": [{"title": "T+00:15 server smoke", "state": "green", "summary": "HTTP 200", "at": "t"}]})]
    facts = {"cutover": {"started_at": "2026-12-03T10:00:00+00:00", "operator": "op@laptop", "outcome": "closed-out",
                         "finished_at": "2026-12-03T10:30:00+00:00",
                         "decision": {"confirmed_by": "op@laptop", "how": "--yes", "at": "2026-12-03T10:26:01+00:00"}},
             "pre_digest": "repo@sha256:" + "a" * 64, "post_digest": "repo@sha256:" + "b" * 64}
    md = report.markdown(j(facts, steps), BUDGETS, "repo")
    assert "| preflight | T+00:00 | T+00:00 | 60.0 s | 5 min | ok |" in md
    assert "| agent-smoke | T+00:35 | T+00:05 | 1200.0 s (over budget) | 15 min | ok |" in md
    assert "**GO** — all four agent checks green" in md
    assert "confirmed by: op@laptop (--yes)" in md
    assert "a" * 64 in md and "b" * 64 in md
    assert "0 calls \\| \\x1b[31mred" in md and "\x1b" not in md
    assert "Total: 30.0 min of the runbook's 60 min" in md


def test_timeline_names():
    assert report.timeline_name("cutover:deploy") == "deploy"
    assert report.timeline_name("rollback#2") == "rollback"
    assert report.timeline_name("rollback#2:pin") is None
    assert report.timeline_name("deploy#1:up") is None



def test_the_refusal_of_a_second_start_repeats_the_runtime_file_quoted():
    jr = j({"cutover": {"started_at": "2026-12-03T10:00:00+00:00"}},
           [Step("cutover:deploy", "2026-12-03T10:05:00+00:00", outcome="running")])
    with pytest.raises(BadInput) as e:
        c.check_start(jr, c.Options(), V, "/etc/twilight ops/invoke.yaml")
    assert e.value.hint == f"resume it: inv -f '/etc/twilight ops/invoke.yaml' cutover --version {V} --resume"
    with pytest.raises(BadInput) as e:
        c.check_start(j(), c.Options(resume=True), V, "/x/invoke.yaml")
    assert e.value.hint == f"start one: inv -f /x/invoke.yaml cutover --version {V}"


def test_the_refusal_repeats_the_runs_env_settings_too_never_a_token_setting():
    jr = j({"cutover": {"started_at": "2026-12-03T10:00:00+00:00"}},
           [Step("cutover:deploy", "2026-12-03T10:05:00+00:00", outcome="running")])
    env = {"INVOKE_TWILIGHT_HOST": "tvps-b", "INVOKE_TWILIGHT_GITHUB_TOKEN_FILE": "/secret/path", "PATH": "/bin"}
    with pytest.raises(BadInput) as e:
        c.check_start(jr, c.Options(), V, "/x/invoke.yaml", env)
    assert e.value.hint == f"resume it: INVOKE_TWILIGHT_HOST=tvps-b inv -f /x/invoke.yaml cutover --version {V} --resume"
