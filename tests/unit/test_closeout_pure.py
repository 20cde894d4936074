"""closeout's pure parts: git argv (exact text), the status line, the edit classes, ready(), refusal()."""
from __future__ import annotations

import dataclasses

from twilight_ops.builders import git
from twilight_ops.executor import render
from twilight_ops.journal import Step, new_journal
from twilight_ops.phases import closeout as co

PAGE = "# twilight-drive status\n\n- v0.2.0: legacy /price envelope.\n"
LINE = co.status_line("2026-12-03")


def test_closeout_git_builders_exact_text():
    assert render(git.current_branch()) == "git symbolic-ref --quiet --short HEAD"
    assert render(git.fetch_branch("origin", "main")) == "git fetch --quiet origin refs/heads/main:refs/remotes/origin/main"
    assert render(git.staged_paths()) == "git diff --cached --name-only --no-renames -z HEAD --"
    assert render(git.show_index("docs/status/index.md")) == "git show :docs/status/index.md"
    assert render(git.commit_only("docs(status): W4 /price cutover complete", "docs/status/index.md")) == (
        "git commit --quiet --only -m 'docs(status): W4 /price cutover complete' -- docs/status/index.md")
    assert render(git.last_commit_adding("refs/remotes/origin/main", "v0.3.0 W4 /price cutover completed",
                                         "docs/status/index.md")) == (
        "git log -1 --format=%H --fixed-strings -S 'v0.3.0 W4 /price cutover completed' refs/remotes/origin/main"
        " -- docs/status/index.md")
    assert render(git.push_branch("origin", "main")) == "git push --quiet origin refs/heads/main:refs/heads/main"


def test_the_status_line_links_the_spec_relative_to_docs_status():
    assert LINE == ("v0.3.0 W4 /price cutover completed 2026-12-03; "
                    "[spec](../planning/superpowers/specs/2026-05-11-w4-price-route-cutover.md)")


def test_the_day_is_asia_shanghai():
    import datetime as dt

    utc = dt.timezone.utc
    assert co.shanghai_day(dt.datetime(2026, 12, 3, 15, 59, tzinfo=utc)) == "2026-12-03"
    assert co.shanghai_day(dt.datetime(2026, 12, 3, 16, 0, tzinfo=utc)) == "2026-12-04"


def test_appended_follows_the_pages_list_and_mends_a_missing_newline():
    assert co.appended(PAGE, LINE) == PAGE + "- " + LINE + "\n"
    assert co.appended("# status\n\ntext\n", LINE) == "# status\n\ntext\n" + LINE + "\n"
    assert co.appended("- a", LINE) == "- a\n- " + LINE + "\n"
    assert co.appended("- a long item\n  continued\n", LINE) == "- a long item\n  continued\n- " + LINE + "\n"
    assert co.appended("- a\n\nA closing paragraph.\n", LINE).endswith("paragraph.\n" + LINE + "\n")
    assert co.closeout_line_in(co.appended(PAGE, LINE)) == "- " + LINE
    assert co.closeout_line_in(PAGE) is None


def test_edit_kind_tells_our_line_from_local_work():
    assert co.edit_kind(PAGE, PAGE) == "same"
    assert co.edit_kind(PAGE, co.appended(PAGE, LINE)) == "ours"
    assert co.edit_kind(PAGE, PAGE + LINE + "\n") == "ours"             # added by hand, as the runbook says
    assert co.edit_kind(PAGE, PAGE + "- a local note\n") == "theirs"
    assert co.edit_kind(PAGE, co.appended(PAGE, LINE) + "- more\n") == "theirs"
    assert co.edit_kind(PAGE, "x\n" + co.appended(PAGE, LINE)) == "theirs"
    assert co.edit_kind(PAGE, PAGE.replace("legacy", "old")) == "theirs"


def journal(*steps: tuple[str, str], **facts):
    j = new_journal("v0.3.0-w4-cutover", "tvps", "op")
    j.steps = [Step(name=n, started_at="2026-12-03T00:00:00+00:00", outcome=o) for n, o in steps]
    j.facts.update(facts)
    return j


GO = (("deploy#1", "ok"), ("smoke-w4", "ok"), ("hermes-verify", "ok"), ("agent-smoke", "ok"))
GREEN = {"smoke-w4": {"verdict": "green", "envelope": "w4", "status": 200, "red_flags": []},
         "agent-smoke": {"checks": [{"id": "latest_quote", "level": "agent", "status": "PASS", "red_flags": []}]}}


def go_journal(*extra: tuple[str, str], **facts):
    j = journal(*GO, *extra, **{"deploy_attempt": 1, **facts})
    for s in j.steps:
        s.evidence = dict(GREEN.get(s.name, {}))
    return j


def test_ready_wants_the_decision_go_and_no_rollback():
    assert "not GO" in co.ready(journal()) and "INCOMPLETE" in co.ready(journal())
    assert "not GO" in co.ready(journal(("deploy#1:pull", "ok"), ("deploy#1", "failed"), deploy_attempt=1))
    assert "INCOMPLETE" in co.ready(journal(("deploy#1", "ok"), deploy_attempt=1))       # no smoke, no agent checks
    assert co.ready(go_journal()) is None
    assert "rolled back" in co.ready(go_journal(rolled_back={"at": "t", "attempt": 1}))
    assert "rolled back" in co.ready(go_journal(rolled_back={"at": "t"}))
    again = go_journal(deploy_attempt=2, rolled_back={"at": "t", "attempt": 1})     # redeployed after a rollback
    again.steps[0].name = "deploy#2"
    assert co.ready(again) is None


STATE = co.RepoState(branch="main", head="h", behind=0, ahead=0, staged=(), head_text=PAGE, index_text=PAGE,
                     work_text=PAGE, origin_line="", origin_commit="")


def test_refusal_names_what_is_wrong():
    assert co.refusal(STATE) is None
    assert co.refusal(dataclasses.replace(STATE, work_text=co.appended(PAGE, LINE))) is None   # a cut-off run's write
    assert "behind origin/main" in co.refusal(dataclasses.replace(STATE, behind=2))[0]
    why = co.refusal(dataclasses.replace(STATE, staged=("docs/status/index.md", "backend/app.py")))
    assert why[0].startswith("other changes are staged (backend/app.py);")
    assert "local edits" in co.refusal(dataclasses.replace(STATE, work_text=PAGE + "- note\n"))[0]
    assert "staged changes" in co.refusal(dataclasses.replace(STATE, staged=("docs/status/index.md",),
                                                              index_text=PAGE + "- note\n",
                                                              work_text=PAGE + "- note\n"))[0]
    assert "no docs/status/index.md" in co.refusal(dataclasses.replace(STATE, head_text=""))[0]


def _git(cwd, *args):
    import subprocess
    return subprocess.run(["git", "-C", str(cwd), *args], capture_output=True, text=True)


def test_a_push_race_is_named_with_the_way_on_from_real_git_output(tmp_path):
    """Two clones of one bare origin; the other pushes first: our push is rejected (real git's words)."""
    origin, ours, theirs = tmp_path / "origin.git", tmp_path / "ours", tmp_path / "theirs"
    assert _git(tmp_path, "init", "-q", "--bare", "-b", "main", str(origin)).returncode == 0
    for clone in (ours, theirs):
        assert _git(tmp_path, "clone", "-q", str(origin), str(clone)).returncode == 0
        _git(clone, "config", "user.email", "op@example.org"); _git(clone, "config", "user.name", "op")
    (theirs / "a").write_text("a\n"); _git(theirs, "add", "a"); _git(theirs, "commit", "-qm", "a")
    assert _git(theirs, "push", "-q", "origin", "HEAD:main").returncode == 0
    (ours / "b").write_text("b\n"); _git(ours, "add", "b"); _git(ours, "commit", "-qm", "b")
    pushed = _git(ours, "push", "origin", "main")
    assert pushed.returncode != 0
    e = co.push_refused(pushed.stderr, "main", "inv closeout --version v0.3.0-w4-cutover")
    assert e.message == ("origin/main moved while closing out (someone pushed in between): the closeout commit is made "
                         "locally and not pushed")
    assert e.hint == "`git pull --rebase origin main` (it keeps the commit), then: inv closeout --version v0.3.0-w4-cutover"


def test_a_push_that_cannot_reach_origin_names_git_s_own_error(tmp_path):
    clone = tmp_path / "c"
    assert _git(tmp_path, "init", "-q", "-b", "main", str(clone)).returncode == 0
    _git(clone, "config", "user.email", "op@example.org"); _git(clone, "config", "user.name", "op")
    (clone / "a").write_text("a\n"); _git(clone, "add", "a"); _git(clone, "commit", "-qm", "a")
    _git(clone, "remote", "add", "origin", str(tmp_path / "gone.git"))
    pushed = _git(clone, "push", "origin", "main")
    assert pushed.returncode != 0
    e = co.push_refused(pushed.stderr, "main", "inv closeout")
    assert e.message.startswith("git push origin main failed: fatal: ") and "not pushed" in e.message
    assert "Traceback" not in e.message and e.hint.endswith("then: inv closeout")
