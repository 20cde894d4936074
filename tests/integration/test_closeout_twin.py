"""`inv closeout` through the twin's real git repos (bare origin + the operator's clone):
the status line added once (one commit of that path alone, pushed; a second run on another
day is a no-op, also with the journal's step gone), refused when behind origin, with other
changes staged, with local edits to the status page, on a detached HEAD, without a GO
(and --force), and kill -9 between commit and push resumes with the push alone.

Every test ends with origin's main, the clone and the test journal as they were."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.conftest import REPO, error_lines, inv
from tests import journals
from twilight_ops.builders.layout import layout
from twilight_ops.clock import iso, now_utc
from twilight_ops.journal import JournalStore, Step, new_journal
from twilight_ops.phases import closeout as co
from twilight_ops.twin import drive_repos
from twilight_ops.twin.drive_repos import git
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

V = "v0.3.0-closeout-twin"      # a journal of its own: the W4 journal of other modules stays untouched
SKILL = "skill/stock-research/SKILL.md"
DAY = 86_400


@pytest.fixture
def repos(twin, twin_settings, ex):
    """The twin's origin and operator clone; put back as they were after the test."""
    st = load_or_new(twin.base)
    origin, clone = st.origin_repo, st.operator_clone
    before = {"origin": git(origin, "rev-parse", "refs/heads/main"), "clone": git(clone, "rev-parse", "HEAD"),
              "branch": git(clone, "symbolic-ref", "--short", "HEAD")}
    assert not git(clone, "status", "--porcelain"), "the operator clone must start clean"
    yield st
    hook = clone / ".git" / "hooks" / "pre-push"
    hook.unlink(missing_ok=True)
    (clone / "notes-closeout.txt").unlink(missing_ok=True)
    git(origin, "update-ref", "refs/heads/main", before["origin"])
    git(clone, "checkout", "-q", "-f", before["branch"])
    git(clone, "reset", "-q", "--hard", before["clone"])
    git(clone, "fetch", "-q", "--prune", "origin")
    forget_journal(twin_settings, ex)


def forget_journal(settings, ex) -> None:
    journals.local_path(settings, V).unlink(missing_ok=True)
    ex.run(["rm", "-f", layout(settings, ex.home).journal_path(V)])


def store(settings, ex) -> JournalStore:
    return JournalStore(settings.state_dir, settings.host, layout(settings, ex.home), ex)


GO_STEPS = (("deploy#1", {"digest": "sha256:" + "b" * 64}),
            ("smoke-w4", {"verdict": "green", "envelope": "w4", "status": 200, "red_flags": []}),
            ("hermes-verify", {}),
            ("agent-smoke", {"checks": [{"id": "latest_quote", "level": "agent", "status": "PASS", "red_flags": []}]}))


def write_journal(settings, ex, *, go: bool = True) -> None:
    j = new_journal(V, settings.host, settings.operator)
    if go:
        at = iso(now_utc())
        for name, evidence in GO_STEPS:          # the evidence decide.py reads as GO
            j.steps.append(Step(name=name, started_at=at, ended_at=at, outcome="ok", evidence=evidence))
        j.facts["deploy_attempt"] = 1
    store(settings, ex).save(j)


def closeout(twin, *args, env=None):
    return inv("closeout", "--version", V, *args, cfg=twin.invoke_yaml, env=env)


def report(r) -> dict:
    assert r.returncode == 0 and "Traceback" not in r.stderr, r.stdout + r.stderr
    return json.loads(r.stdout)


def closeout_commits(repo: Path, ref: str = "refs/heads/main") -> list[str]:
    return git(repo, "log", "--format=%H", f"--grep={co.MESSAGE}", "--fixed-strings", ref).split()


def audit_lines(ex, path: str) -> list[str]:
    try:
        return ex.read_file(path).decode().splitlines()
    except FileNotFoundError:
        return []


def status_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if co.LINE_PREFIX in line]


def origin_page(st) -> str:
    return git(st.origin_repo, "show", f"refs/heads/main:{co.STATUS_PATH}")


def untouched(st, origin_main: str, clone_head: str) -> None:
    assert git(st.origin_repo, "rev-parse", "refs/heads/main") == origin_main
    assert git(st.operator_clone, "rev-parse", "HEAD") == clone_head
    assert not status_lines(origin_page(st))


def test_closeout_twice_adds_one_line_one_commit_pushed(twin, repos, twin_settings, ex):
    st, clone = repos, repos.operator_clone
    write_journal(twin_settings, ex)
    (clone / "notes-closeout.txt").write_text("untracked, unrelated\n")
    skill = clone / SKILL
    skill.write_text(skill.read_text() + "\nan unstaged local edit\n")
    day = co.shanghai_day(now_utc(twin_settings.clock_offset_seconds))
    audit_log = layout(twin_settings, ex.home).audit_log
    seen = len(audit_lines(ex, audit_log))

    rep = report(closeout(twin, "--json"))
    assert (rep["outcome"], rep["committed"], rep["pushed"], rep["branch"]) == ("closed-out", "committed", "pushed", "main")
    main = git(st.origin_repo, "rev-parse", "refs/heads/main")
    assert rep["commit"] == main == git(clone, "rev-parse", "HEAD")
    assert closeout_commits(st.origin_repo) == [main]
    assert git(st.origin_repo, "show", "--name-only", "--format=", main).split() == [co.STATUS_PATH]
    assert git(st.origin_repo, "log", "-1", "--format=%an <%ae>", main) == "Twin Operator <operator@twin.invalid>"
    assert status_lines(origin_page(st)) == [f"- {co.LINE_PREFIX} {day}; "
                                             "[spec](../planning/superpowers/specs/2026-05-11-w4-price-route-cutover.md)"]
    # unrelated local work is left as it was
    assert "an unstaged local edit" in skill.read_text() and (clone / "notes-closeout.txt").exists()
    assert git(clone, "status", "--porcelain", "--", SKILL) == f"M {SKILL}"
    facts = journals.local(twin_settings, V)["facts"]
    assert facts["forward_baseline"]["commit"] == main and "forward-baseline" in facts["forward_baseline"]["note"]
    mine = [json.loads(a) for a in audit_lines(ex, audit_log)[seen:] if '"action":"closeout"' in a]
    assert [(a["outcome"], a["detail"][:17]) for a in mine] == [("ok", f"main {main[:12]}")]

    # again, two days later: a no-op that says so
    later = {"INVOKE_TWILIGHT_CLOCK_OFFSET_SECONDS": str(twin_settings.clock_offset_seconds + 2 * DAY)}
    r = closeout(twin, env=later)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "already closed out" in r.stdout and "nothing to do" in r.stdout
    # and with the journal's closeout step gone (another laptop): the repo says it is done
    forget_journal(twin_settings, ex)
    write_journal(twin_settings, ex)
    rep = report(closeout(twin, "--json", env=later))
    assert (rep["outcome"], rep["commit"]) == ("already", main)
    assert git(st.origin_repo, "rev-parse", "refs/heads/main") == main
    assert closeout_commits(clone, "HEAD") == [main] and len(status_lines(origin_page(st))) == 1
    assert len(status_lines((clone / co.STATUS_PATH).read_text())) == 1


def test_refused_when_behind_origin(twin, repos, twin_settings, ex):
    st = repos
    write_journal(twin_settings, ex)
    clone_head = git(st.operator_clone, "rev-parse", "HEAD")
    scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=st.origin_repo.parent))
    try:
        drive_repos.git(None, "clone", "-q", str(st.origin_repo), str(scratch / "w"))
        work = scratch / "w"
        drive_repos.set_identity(work)
        (work / "README.md").write_text("someone else's change\n")
        pushed = drive_repos.commit_all(work, "docs: a change from another laptop", "2026-05-11T09:00:00+08:00")
        git(work, "push", "-q", "origin", "HEAD:refs/heads/main")
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    page = (st.operator_clone / co.STATUS_PATH).read_text()

    r = closeout(twin)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert error_lines(r.stderr) == [f"error: {st.operator_clone}: main is 1 commit(s) behind origin/main — "
                                     f"pull first (`git pull --rebase origin main`), then: inv -f {twin.invoke_yaml} closeout --version {V}"]
    untouched(st, pushed, clone_head)
    assert (st.operator_clone / co.STATUS_PATH).read_text() == page


def test_refused_with_other_changes_staged_and_they_stay_staged(twin, repos, twin_settings, ex):
    st, clone = repos, repos.operator_clone
    write_journal(twin_settings, ex)
    origin_main, clone_head = git(st.origin_repo, "rev-parse", "refs/heads/main"), git(clone, "rev-parse", "HEAD")
    (clone / SKILL).write_text((clone / SKILL).read_text() + "\nstaged, not for the status commit\n")
    git(clone, "add", SKILL)

    r = closeout(twin)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"other changes are staged ({SKILL})" in r.stderr and "git restore --staged" in r.stderr
    assert git(clone, "diff", "--cached", "--name-only") == SKILL
    assert git(clone, "status", "--porcelain", "--", co.STATUS_PATH) == ""
    untouched(st, origin_main, clone_head)


def test_refused_with_local_edits_to_the_status_page_and_they_are_kept(twin, repos, twin_settings, ex):
    st, clone = repos, repos.operator_clone
    write_journal(twin_settings, ex)
    origin_main, clone_head = git(st.origin_repo, "rev-parse", "refs/heads/main"), git(clone, "rev-parse", "HEAD")
    page = clone / co.STATUS_PATH
    mine = page.read_text() + "- a note I am still writing\n"
    page.write_text(mine)

    r = closeout(twin)
    assert r.returncode == 1 and "Traceback" not in r.stderr
    assert f"{co.STATUS_PATH} has local edits; closeout never overwrites local work" in r.stderr
    assert page.read_text() == mine
    untouched(st, origin_main, clone_head)


def test_refused_on_a_detached_head(twin, repos, twin_settings, ex):
    st, clone = repos, repos.operator_clone
    write_journal(twin_settings, ex)
    origin_main = git(st.origin_repo, "rev-parse", "refs/heads/main")
    git(clone, "checkout", "-q", "--detach", "HEAD")
    head = git(clone, "rev-parse", "HEAD")

    r = closeout(twin)
    assert r.returncode == 1 and "is not on a branch (detached HEAD)" in r.stderr and "git checkout main" in r.stderr
    untouched(st, origin_main, head)


def test_refused_without_a_go_unless_forced(twin, repos, twin_settings, ex):
    st = repos
    write_journal(twin_settings, ex, go=False)
    origin_main, clone_head = (git(st.origin_repo, "rev-parse", "refs/heads/main"),
                               git(st.operator_clone, "rev-parse", "HEAD"))

    r = closeout(twin)
    assert r.returncode == 1 and f"no GO for {V}: the T+00:50 decision is INCOMPLETE, not GO" in r.stderr
    assert "no deploy recorded" in r.stderr
    assert "--force" in r.stderr
    untouched(st, origin_main, clone_head)

    r = closeout(twin, "--force")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "warning: --force: closing out although" in r.stderr
    assert "warning: closed out with --force" in r.stdout
    assert len(closeout_commits(st.origin_repo)) == 1
    journal = journals.local(twin_settings, V)
    step = [s for s in journal["steps"] if s["name"] == "closeout"][-1]
    assert step["outcome"] == "ok" and "no deploy recorded" in step["evidence"]["forced"]


def test_kill_9_between_commit_and_push_resumes_with_the_push_alone(twin, repos, twin_settings, ex):
    st, clone = repos, repos.operator_clone
    write_journal(twin_settings, ex)
    origin_main = git(st.origin_repo, "rev-parse", "refs/heads/main")
    marker = Path(tempfile.mkdtemp(prefix="closeout-")) / "hook.pids"
    hook = clone / ".git" / "hooks" / "pre-push"
    hook.write_text(f"#!/bin/sh\necho \"$$ $PPID\" > {marker}.tmp && mv {marker}.tmp {marker}\nexec sleep 120\n")
    hook.chmod(0o755)

    argv = [str(Path(sys.executable).with_name("inv")), "-f", str(twin.invoke_yaml), "closeout", "--version", V]
    proc = subprocess.Popen(argv, cwd=REPO, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 120
        while not marker.exists():
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "the push never reached the pre-push hook"
            time.sleep(0.1)
        proc.send_signal(signal.SIGKILL)          # the tool dies between its commit and its push
        proc.wait(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        proc.stdout.close()
        proc.stderr.close()
    hook_pid, push_pid = (int(x) for x in marker.read_text().split())
    os.kill(hook_pid, signal.SIGKILL)             # the push the killed run left waiting fails
    deadline = time.monotonic() + 30
    while Path(f"/proc/{push_pid}").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    shutil.rmtree(marker.parent, ignore_errors=True)
    hook.unlink()

    committed = git(clone, "rev-parse", "HEAD")
    assert closeout_commits(clone, "HEAD") == [committed] and committed != origin_main
    assert git(st.origin_repo, "rev-parse", "refs/heads/main") == origin_main
    steps = journals.local(twin_settings, V)["steps"]
    assert [s["outcome"] for s in steps if s["name"] == "closeout"] == ["running"]

    rep = report(closeout(twin, "--json"))
    assert (rep["outcome"], rep["committed"], rep["pushed"], rep["how"]) == ("closed-out", "already", "pushed", "ran")
    assert git(st.origin_repo, "rev-parse", "refs/heads/main") == committed == rep["commit"]
    assert closeout_commits(clone, "HEAD") == [committed] and len(status_lines(origin_page(st))) == 1


def test_a_line_already_written_but_not_committed_is_committed_as_it_is(twin, repos, twin_settings, ex):
    """What a run cut off between its append and its commit leaves (or the runbook's line added by hand)."""
    st, clone = repos, repos.operator_clone
    write_journal(twin_settings, ex)
    page = clone / co.STATUS_PATH
    by_hand = page.read_text() + co.status_line("2026-05-11") + "\n"
    page.write_text(by_hand)

    rep = report(closeout(twin, "--json"))
    assert (rep["outcome"], rep["committed"], rep["pushed"]) == ("closed-out", "committed", "pushed")
    assert origin_page(st) + "\n" == by_hand == page.read_text()
    assert closeout_commits(st.origin_repo) == [git(st.origin_repo, "rev-parse", "refs/heads/main")]
