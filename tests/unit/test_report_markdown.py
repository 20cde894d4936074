"""The cutover report is a Markdown post-mortem to paste into docs/status (issue 21 item 9): rendered with
python-markdown, its sections are there in order, the machine ids and paths sit in the final appendix only,
the decision sentence carries no command, and the spec link resolves from docs/status/."""
from __future__ import annotations

import html
import io
import posixpath
import re

import markdown
from rich.console import Console

from twilight_ops.journal import Journal, Step
from twilight_ops.render import report

V = "v0.3.0-w4-cutover"
BUDGETS = {"cutover": 60, "rollback": 30, "preflight": 5, "tag_push": 10, "smoke": 5, "hermes_reinstall": 10,
           "agent_smoke": 15, "closeout": 5}
PRE = "127.0.0.1:5000/twilight-backend@sha256:" + "a" * 64
HOST_SNAPSHOT = "/home/deploy/twilight/data/warehouse.duckdb.pre-w4"
RUN_HINT = ("roll back — run: inv -f /home/op/twin/invoke.yaml rollback --version v0.3.0-w4-cutover "
            "--reason 'health-gate: backend running, not healthy'")
LOGS = "backend-1  | INFO starting\nbackend-1  | ERROR lifespan startup incomplete\nbackend-1  | INFO bye\n"


def at(minute: int, second: int = 0) -> str:
    return f"2026-12-03T10:{minute:02d}:{second:02d}+00:00"


def step(name: str, minute: int, outcome: str = "ok", note: str = "", end: int | None = None, **evidence) -> Step:
    return Step(name, at(minute), at(end if end is not None else minute, 30), outcome, evidence, note)


DECIDE_EV = {"verdict": "ROLLBACK",
             "reason": "red flag and no <5-min forward fix (runbook T+00:50): T+00:05 deploy health: health-gate "
                       "failed: backend running, not healthy after 60 s",
             "next_step": f"inv -f /home/op/twin/invoke.yaml cutover --version {V} --resume --yes",
             "inputs": [{"title": "T+00:05 deploy health", "state": "red", "at": at(6),
                         "summary": "health-gate failed: backend running, not healthy after 60 s"},
                        {"title": "T+00:15 server smoke", "state": "missing", "summary": "no smoke recorded",
                         "run": "not needed: the decision is ROLLBACK"}]}


def rolled_back_journal() -> Journal:
    steps = [step("cutover:preflight", 0, end=1), step("preflight", 0, checks=[
                 {"id": "dependency_prs", "status": "PASS", "reason": "all merged"},
                 {"id": "no_traffic", "status": "PASS", "reason": "0 client calls"}]),
             step("cutover:tag-push", 2, end=4), step("tag-push", 2, end=4, commit="c" * 40, digest="repo@sha256:" + "b" * 64,
                                                      run_url="https://ci/run/1", waited_s=40),
             step("cutover:deploy", 5, "red", end=7),
             step("deploy#1:pull", 5, exited=0), step("deploy#1:up", 5),
             step("deploy#1:health-gate", 6, "failed", f"backend running, not healthy after 60 s — {RUN_HINT}",
                  backend_logs_tail200=LOGS),
             step("decide", 8, note="ROLLBACK", **DECIDE_EV),
             step("decide", 12, note="ROLLBACK", **DECIDE_EV),
             step("rollback#1:data-plan", 12), step("rollback#1:pin", 12), step("rollback#1:health", 13),
             step("rollback#1", 14, to="v0.2.0@sha256:" + "a" * 64,
                  steps=[{"name": "pin", "seconds": 3.1, "budget_min": 5, "how": "TWILIGHT_VERSION pinned"}])]
    facts = {"cutover": {"started_at": at(0), "operator": "op@laptop", "outcome": "rolled-back", "finished_at": at(15),
                         "decision": {"verdict": "ROLLBACK", "confirmed_by": "op@laptop", "how": "--yes", "at": at(12)}},
             "pre_version": "v0.2.0", "pre_digest": PRE, "deploy_attempt": 1, "cutover_commit": "c" * 40,
             "snapshot": {"host_path": HOST_SNAPSHOT, "sha256": "d" * 64, "bytes": 12288, "tables": ["provider_audit_log"]},
             "rolled_back": {"at": at(14), "to": "v0.2.0@sha256:" + "a" * 64,
                             "trigger": "cutover decision ROLLBACK: deploy: deploy_failed",
                             "evidence": {"restored_db": "restored"}},
             "data_plan": {"line": "schema changed since T+00:00: provider_audit_log + served_by", "done": "restored"},
             "db_restore": {"rollback_attempt": 1, "failed": "/home/deploy/twilight/data/warehouse.duckdb.failed-w4"}}
    return Journal(version=V, host="tvps", operator="op@laptop", created_at=at(0), updated_at=at(15), facts=facts,
                   steps=steps)


def sections(md: str) -> tuple[list[str], list[str]]:
    doc = markdown.markdown(md, extensions=["tables", "fenced_code"])
    h1 = [html.unescape(re.sub("<[^>]+>", "", x)) for x in re.findall(r"<h1>(.*?)</h1>", doc)]
    h2 = [html.unescape(re.sub("<[^>]+>", "", x)) for x in re.findall(r"<h2>(.*?)</h2>", doc)]
    return h1, h2


def test_a_rolled_back_cutover_renders_as_a_post_mortem_with_its_sections_in_order():
    md = report.markdown(rolled_back_journal(), BUDGETS, "127.0.0.1:5000/twilight-backend")
    h1, h2 = sections(md)
    assert h1 == [f"W4 /price cutover: v0.2.0 → {V} on tvps"]
    assert h2 == ["Summary", "Timeline", "Decision (T+00:50)", "Root cause", "Rollback (§2)", "Follow-up issue",
                  "Digests", "Checks", "Appendix: machine details"]
    doc = markdown.markdown(md, extensions=["tables", "fenced_code"])
    assert doc.count("<table>") >= 4 and "outcome: <strong>rolled-back</strong>" in doc


def test_machine_ids_raw_json_and_paths_only_in_the_appendix():
    md = report.markdown(rolled_back_journal(), BUDGETS, "repo")
    body, appendix = md.split("## Appendix: machine details")
    for internal in ("deploy#1:pull", "exited=0", "commit_pinned", "dependency_prs", HOST_SNAPSHOT, "/home/op/",
                     "warehouse.duckdb.failed-w4`", "{\"", "rollback#1:pin"):
        assert internal not in body.replace("`warehouse.duckdb.failed-w4`", ""), internal
    assert "| deploy#1:pull |" in appendix and "| dependency_prs | PASS | all merged |" in appendix
    assert HOST_SNAPSHOT in appendix
    assert "W4 dependency PRs merged" in body                  # the check's title in the body


def test_the_decision_sentence_has_no_command_and_every_decision_is_listed_with_the_operators_answer():
    md = report.markdown(rolled_back_journal(), BUDGETS, "repo")
    decision = md.split("## Decision (T+00:50)")[1].split("\n## ")[0]
    assert "run: " not in decision and "inv " not in decision
    assert "**ROLLBACK** — red flag and no <5-min forward fix" in decision
    assert "earlier, at 2026-12-03T10:08:30+00:00: ROLLBACK, not confirmed (the operator said no" in decision
    timeline = md.split("## Timeline")[1].split("\n## ")[0]
    assert "| decide | T+00:50 | T+00:08 |" in timeline and "ROLLBACK, not confirmed (the operator said no" in timeline
    assert "ROLLBACK, confirmed (--yes) |" in timeline
    assert "| T+00:15 server smoke | missing | no smoke recorded (not needed: the decision is ROLLBACK) | - |" in decision
    assert "run: inv" not in timeline


def test_root_cause_follow_up_and_whether_the_duckdb_was_restored():
    md = report.markdown(rolled_back_journal(), BUDGETS, "repo")
    assert "the deploy's health-gate failed: backend running, not healthy after 60 s" in md.split("## Root cause")[1]
    assert "ERROR lifespan startup incomplete" in md
    issue = md.split("## Follow-up issue")[1].split("\n## ")[0]
    assert "Title: W4 /price cutover v0.3.0-w4-cutover rolled back — the deploy's health-gate failed" in issue
    assert "Do not retry the cutover today (runbook §2.4)." in issue
    assert "DuckDB warehouse: restored: the T+00:00 snapshot is back in place" in md.split("## Summary")[1]
    assert "### §2.3 data plan" in md and "provider_audit_log + served_by" in md


def test_the_spec_link_resolves_from_docs_status():
    md = report.markdown(rolled_back_journal(), BUDGETS, "repo")
    (link,) = re.findall(r"\[W4 /price route cutover\]\(([^)]+)\)", md)
    assert posixpath.normpath(posixpath.join("docs/status", link)) == report.SPEC_PATH


def test_a_no_go_preflight_keeps_its_failing_row_and_says_where_it_stopped():
    steps = [step("cutover:preflight", 0, "failed", "NO-GO: dependency_prs", checks=[
        {"id": "dependency_prs", "status": "FAIL", "reason": "not merged: #41"}])]
    j = Journal(version=V, host="tvps", operator="op", created_at=at(0), updated_at=at(1),
                facts={"cutover": {"started_at": at(0), "outcome": "stopped", "finished_at": at(1)}}, steps=steps)
    md = report.markdown(j, BUDGETS, "repo")
    h1, h2 = sections(md)
    assert h1 == [f"W4 /price cutover: {V} on tvps"] and "Follow-up issue" not in h2     # no T+00:00: before unknown
    assert h2[:4] == ["Summary", "Timeline", "Decision (T+00:50)", "Root cause"]
    assert "stopped before the decision point" in md and "| W4 dependency PRs merged | FAIL | not merged: #41 |" in md
    assert "Root cause: preflight said NO-GO (runbook §0): W4 dependency PRs merged: not merged: #41" in md
    assert "| dependency_prs | FAIL | not merged: #41" in md        # the id, in the appendix


def test_inv_report_on_a_terminal_renders_the_markdown_with_rich():
    buf = io.StringIO()
    report.show(report.markdown(rolled_back_journal(), BUDGETS, "repo"),
                Console(file=buf, width=120, force_terminal=False, emoji=False))
    out = buf.getvalue()
    assert "W4 /price cutover: v0.2.0 → v0.3.0-w4-cutover on tvps" in out
    assert "## Timeline" not in out and "Timeline" in out and "```" not in out


def test_no_command_or_local_path_anywhere_in_the_report():
    md = report.markdown(rolled_back_journal(), BUDGETS, "repo")
    assert "run: inv" not in md and "/home/op/" not in md and "invoke.yaml" not in md


def test_the_tag_a_rollback_leaves_on_origin_is_named_without_a_local_path():
    from twilight_ops.phases.rollback import tag_left_line

    j = rolled_back_journal()
    j.steps[-1].evidence["left_behind"] = tag_left_line(V, "c" * 40, "/home/op/twilight drive")
    md = report.markdown(j, BUDGETS, "repo")
    section = md.split("## Rollback (§2)")[1].split("\n## ")[0]
    assert (f"- left behind: tag {V} stays on origin (at cccccccccccc); if {V} will not be retried as it is, delete it: "
            f"git push origin :refs/tags/{V} && git tag -d {V} (in the twilight-drive checkout)") in section
    assert "/home/op/" not in md
