"""T+00:55 in Terminal A: the status line, its commit and push; the forward-baseline moves.

    run(t, force=False, say=…) -> CloseoutReport

1. The journal must show the cutover got to a GO (`ready(journal)`; `--force` overrides it
   with a warning that is recorded).
2. The local twilight-drive repo (`twilight.local_repo`) must be on a branch, not behind
   origin after a fetch, with nothing staged but docs/status/index.md and no local edits
   to that file (unrelated unstaged or untracked files elsewhere are left alone).
3. One journal step, "closeout": append the runbook's line (`status_line`) to
   docs/status/index.md, `git commit --only` that path with the runbook's message, push the
   branch.  The line is added once: if HEAD already has it (a run cut off before the push)
   only the push is left; if origin already has it, nothing is done.
4. Journal facts: `forward_baseline` (the AuditLog cutover anchor is live) and `closeout`
   (commit, branch, line); one audit line on tvps.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import os
import posixpath
from typing import Any, Callable

from .. import runbook
from ..builders import git
from ..clock import iso, now_utc
from ..errors import CheckFailed, LocalCommandFailed
from ..runbook import Fact, Steps
from ..target import Target

STATUS_PATH = "docs/status/index.md"
SPEC_PATH = "docs/planning/superpowers/specs/2026-05-11-w4-price-route-cutover.md"
LINE_PREFIX = "v0.3.0 W4 /price cutover completed"
MESSAGE = "docs(status): W4 /price cutover complete"
REMOTE = "origin"
BASELINE_NOTE = "AuditLog forward-baseline: the cutover anchor is live"
SHANGHAI = dt.timezone(dt.timedelta(hours=8))       # no DST since 1991


# ---------------------------------------------------------------- pure parts

def shanghai_day(now: dt.datetime) -> str:
    return now.astimezone(SHANGHAI).date().isoformat()


def status_line(day: str) -> str:
    """The runbook's line, its "link to spec" a Markdown link relative to docs/status/."""
    link = posixpath.relpath(SPEC_PATH, posixpath.dirname(STATUS_PATH))
    return f"{LINE_PREFIX} {day}; [spec]({link})"


def closeout_line_in(text: str) -> str | None:
    """The closeout line already in a status page (any date), or None."""
    for line in text.splitlines():
        if LINE_PREFIX in line:
            return line
    return None


def appended(text: str, line: str) -> str:
    """`text` with `line` as its last line; a list item when the page ends in a list (an
    indented line continues the item above it)."""
    body = text if not text or text.endswith("\n") else text + "\n"
    last = next((s for s in reversed(body.splitlines()) if s.strip() and not s[0].isspace()), "")
    bullet = last[:2] if last[:2] in ("- ", "* ") else ""
    return body + bullet + line + "\n"


def edit_kind(base: str, text: str) -> str:
    """How `text` differs from `base`: "same"; "ours" when the only change is one closeout
    line added at the end (what a run cut off before its commit leaves, or the runbook's
    line added by hand); "theirs" for anything else."""
    if text == base:
        return "same"
    lines, before = text.splitlines(), base.splitlines()
    if (text.endswith("\n") and lines[:-1] == before and LINE_PREFIX in lines[-1]
            and closeout_line_in(base) is None):
        return "ours"
    return "theirs"


def ready(journal: Any) -> str | None:
    """Why the journal does not show a GO (None when it does): the T+00:50 decision over its
    evidence (decide.py) must be GO, and no rollback of the deployed attempt (or a later one)
    may be recorded."""
    from .. import decide

    rolled = runbook.rolled_back(journal.facts)
    if rolled:
        attempt = rolled.get("attempt") if isinstance(rolled, dict) else None
        if not isinstance(attempt, int) or attempt >= runbook.deploy_attempt(journal.facts):
            return f"{journal.version} was rolled back ({rolled.get('at', '?') if isinstance(rolled, dict) else rolled})"
    decision = decide.decide(decide.gather(journal), journal.version)
    if decision.verdict != decide.GO:
        return f"the T+00:50 decision is {decision.verdict}, not GO: {decision.reason[:240]}"
    return None


@dataclasses.dataclass(frozen=True)
class RepoState:
    """What closeout reads from the local repo (after a fetch)."""

    branch: str
    head: str
    behind: int              # commits on origin/branch that HEAD lacks
    ahead: int               # commits on HEAD that origin/branch lacks
    staged: tuple[str, ...]  # paths whose index entry differs from HEAD
    head_text: str           # docs/status/index.md at HEAD ("" if absent)
    index_text: str          # … as staged
    work_text: str           # … in the working tree
    origin_line: str         # the closeout line on origin/branch, or ""
    origin_commit: str       # the commit on origin/branch that added it, or ""

    @property
    def on_origin(self) -> bool:
        return bool(self.origin_commit)

    @property
    def committed(self) -> bool:
        return closeout_line_in(self.head_text) is not None


def refusal(s: RepoState, again: str = "inv closeout") -> tuple[str, str] | None:
    """(what is wrong, what to do) when closeout must not touch the repo (pure); `again` is the command
    that closes out afterwards (inside `inv cutover`: its resume line)."""
    if not s.head_text:
        return (f"HEAD has no {STATUS_PATH}: this does not look like the twilight-drive repo",
                "point twilight.local_repo at the operator's twilight-drive clone")
    if s.behind:
        return (f"{s.branch} is {s.behind} commit(s) behind {REMOTE}/{s.branch}",
                f"pull first (`git pull --rebase {REMOTE} {s.branch}`), then: {again}")
    others = [p for p in s.staged if p != STATUS_PATH]
    if others:
        shown = ", ".join(others[:5]) + (f" and {len(others) - 5} more" if len(others) > 5 else "")
        return (f"other changes are staged ({shown}); closeout commits {STATUS_PATH} alone and left them staged",
                f"commit or unstage them (`git restore --staged <path>`), then: {again}")
    if s.index_text not in (s.head_text, s.work_text) or edit_kind(s.head_text, s.index_text) == "theirs":
        return (f"{STATUS_PATH} has staged changes of its own; closeout left them as they are",
                f"commit them, or unstage them (`git restore --staged {STATUS_PATH}`), then: {again}")
    if edit_kind(s.head_text, s.work_text) == "theirs":
        return (f"{STATUS_PATH} has local edits; closeout never overwrites local work and left them as they are",
                f"commit or stash them (`git stash push -- {STATUS_PATH}`), then: {again}")
    return None


def push_refused(output: str, branch: str, again: str) -> CheckFailed:
    """A failed `git push` of the closeout commit, as one line and the way on (pure).  The commit
    stays local; a re-run pushes it (the line is never added twice)."""
    lines = [ln.strip() for ln in output.strip().splitlines() if ln.strip()]
    raced = any(w in output for w in ("[rejected]", "non-fast-forward", "fetch first", "stale info"))
    if raced:
        return CheckFailed(f"{REMOTE}/{branch} moved while closing out (someone pushed in between): the closeout "
                           f"commit is made locally and not pushed",
                           f"`git pull --rebase {REMOTE} {branch}` (it keeps the commit), then: {again}")
    tail = next((ln for ln in lines if ln.startswith(("fatal:", "error:"))),
                next((ln for ln in reversed(lines) if not ln.startswith("hint:")), "no output"))
    return CheckFailed(f"git push {REMOTE} {branch} failed: {tail}; the closeout commit is made locally and not pushed",
                       f"check the network and your access to {REMOTE}, then: {again}")


# ---------------------------------------------------------------- the report

@dataclasses.dataclass(frozen=True)
class CloseoutReport:
    version: str
    branch: str
    line: str
    outcome: str           # closed-out | already
    how: str               # ran | verified | skipped (journal step)
    commit: str
    committed: str         # committed | already
    pushed: str            # pushed | already
    forced: str            # the ready() reason --force overrode, or ""
    forward_baseline: dict

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def plan(t: Target, force: bool = False) -> list[str]:
    from ..executor import render

    where, v = t.settings.local_repo, (t.version if t.version_given else "<the running version>")
    line = status_line(shanghai_day(now_utc(t.settings.clock_offset_seconds)))
    return [f"journal of {v}: a deploy#N step ok and no rollback of it" + (" (--force: a warning only)" if force else ""),
            f"in {where}: {render(git.current_branch())}   (refused on a detached HEAD)",
            f"in {where}: {render(git.fetch_branch(REMOTE, '<branch>'))}   (refused when behind {REMOTE}/<branch>)",
            f"in {where}: {render(git.staged_paths())}   (refused when anything but {STATUS_PATH} is staged, "
            f"or {STATUS_PATH} has local edits)",
            f"append to {STATUS_PATH}: {line}   (nothing when the line is already there, any date)",
            f"in {where}: {render(git.commit_only(MESSAGE, STATUS_PATH))}",
            f"in {where}: {render(git.push_branch(REMOTE, '<branch>'))}",
            "journal: forward_baseline (AuditLog cutover anchor live) and the commit; one audit line on tvps"]


# ---------------------------------------------------------------- reading the repo

def branch_of(t: Target, repo, again: str = "inv closeout") -> str:
    r = repo.run(git.current_branch(), check=False)
    if not r.ok or not r.stdout.strip():
        raise CheckFailed(f"{t.settings.local_repo} is not on a branch (detached HEAD)",
                          f"check out the branch the status page lives on (`git checkout main`), then: {again}")
    return r.stdout.strip()


def _text(repo, argv: list[str]) -> str:
    r = repo.run(argv, check=False)
    return r.stdout if r.ok else ""


def read_state(t: Target, repo, branch: str, again: str = "inv closeout") -> RepoState:
    r = repo.run(git.fetch_branch(REMOTE, branch), check=False, timeout=120)
    if not r.ok:
        tail = (r.stderr.strip().splitlines() or ["no output"])[-1]
        raise CheckFailed(f"cannot fetch {REMOTE}/{branch} in {t.settings.local_repo}: {tail}",
                          f"check the network and that {REMOTE} has {branch}, then: {again}")
    upstream = f"refs/remotes/{REMOTE}/{branch}"
    head = repo.run(git.rev_parse("HEAD")).stdout.strip()
    behind = int(repo.run(git.rev_list_count(f"HEAD..{upstream}")).stdout.strip() or "0")
    ahead = int(repo.run(git.rev_list_count(f"{upstream}..HEAD")).stdout.strip() or "0")
    staged = tuple(p for p in repo.run(git.staged_paths()).stdout.split("\0") if p)
    try:
        work = repo.read_file(os.fspath(t.settings.local_repo / STATUS_PATH)).decode("utf-8", "replace")
    except FileNotFoundError:
        work = ""
    origin_line = closeout_line_in(_text(repo, git.show_file(upstream, STATUS_PATH))) or ""
    origin_commit = ""
    if origin_line:
        origin_commit = _text(repo, git.last_commit_adding(upstream, LINE_PREFIX, STATUS_PATH)).strip() or "?"
    return RepoState(branch, head, behind, ahead, staged, _text(repo, git.show_file("HEAD", STATUS_PATH)),
                     _text(repo, git.show_index(STATUS_PATH)), work, origin_line, origin_commit)


# ---------------------------------------------------------------- the phase

def run(t: Target, *, force: bool = False, say: Callable[[str], None] = lambda s: None,
        again: str = "inv closeout") -> CloseoutReport:
    """T+00:55; `again` is the command a refusal names to close out afterwards."""
    from .preflight import local_repo

    repo = local_repo(t)
    journal = t.journal()
    why = ready(journal)
    if why and not force:
        raise CheckFailed(f"no GO for {journal.version}: {why}; closeout changed nothing",
                          f"see `inv decide --version {journal.version}` for what is missing or red, "
                          "or re-run with --force if it was verified by hand")
    if why:
        say(f"warning: --force: closing out although {why}")
    branch = branch_of(t, repo, again)
    state = read_state(t, repo, branch, again)
    if not state.on_origin:
        problem = refusal(state, again)
        if problem:
            raise CheckFailed(f"{t.settings.local_repo}: {problem[0]}", problem[1])

    line = status_line(shanghai_day(now_utc(t.settings.clock_offset_seconds)))
    done: dict[str, str] = {}

    def action(step) -> None:
        s = state                  # read (and refused or not) just above
        done.update(committed="already", pushed="already")
        if not s.on_origin:
            if not s.committed:
                if closeout_line_in(s.work_text) is None:
                    data = appended(s.work_text, line)[len(s.work_text):]
                    repo.append_file(os.fspath(t.settings.local_repo / STATUS_PATH), data.encode())
                    say(f"added to {STATUS_PATH}: {line}")
                commit(t, repo)
                done["committed"] = "committed"
                say(f"committed {STATUS_PATH}: {MESSAGE}")
            pushed = repo.run(git.push_branch(REMOTE, branch), timeout=120, check=False)
            if not pushed.ok:
                raise push_refused(pushed.stderr or pushed.stdout, branch, again)
            done["pushed"] = "pushed"
            say(f"pushed {branch} to {REMOTE}")
            s = read_state(t, repo, branch)
            if not s.on_origin:
                raise CheckFailed(f"{REMOTE}/{branch} still lacks the closeout line after the push",
                                  f"look at `git log {REMOTE}/{branch} -- {STATUS_PATH}`")
        step.evidence.update(closeout_evidence(s, done), **({"forced": why} if why else {}))

    def verify(step) -> bool:
        nonlocal state
        s = state = read_state(t, repo, branch)
        if s.on_origin:
            step.evidence.update(closeout_evidence(s, {"committed": "already", "pushed": "already"}),
                                 **({"forced": why} if why else {}))
        return s.on_origin

    step, how = t.journals.once(journal, Steps.CLOSEOUT, action, verify=verify)
    ev = step.evidence
    changed = how == "ran" and (ev.get("committed") == "committed" or ev.get("pushed") == "pushed")
    baseline = runbook.forward_baseline(journal.facts)
    if not baseline or changed:
        baseline = runbook.ForwardBaseline(at=iso(now_utc(t.settings.clock_offset_seconds)), commit=ev.get("commit", ""),
                                           branch=branch, note=BASELINE_NOTE)
        journal.facts[Fact.FORWARD_BASELINE] = baseline
        journal.facts[Fact.CLOSEOUT] = runbook.Closeout(commit=ev.get("commit", ""), branch=branch,
                                                        line=ev.get("line", line))
        t.journals.save(journal)
    detail = f"{branch} {str(ev.get('commit', ''))[:12]}: {'status line committed and pushed' if changed else 'already closed out'}"
    t.audit(Steps.CLOSEOUT, ("forced" if why else "ok") if changed else "noop", detail + (f" (--force: {why})" if why else ""))
    return CloseoutReport(journal.version, branch, str(ev.get("line", line)), "closed-out" if changed else "already",
                          how, str(ev.get("commit", "")), str(ev.get("committed", "already")),
                          str(ev.get("pushed", "already")), why or "", dict(baseline))


def closeout_evidence(s: RepoState, done: dict[str, str]) -> dict[str, Any]:
    return {"branch": s.branch, "commit": s.origin_commit, "line": s.origin_line,
            "committed": done.get("committed", "already"), "pushed": done.get("pushed", "already")}


def commit(t: Target, repo) -> None:
    try:
        repo.run(git.commit_only(MESSAGE, STATUS_PATH), timeout=120)
    except LocalCommandFailed as e:
        if "identity" in e.stderr or "user.email" in e.stderr or "Please tell me who you are" in e.stderr:
            raise CheckFailed(f"git in {t.settings.local_repo} has no identity to commit with",
                              "set it in that repo: git config user.name …; git config user.email …") from None
        raise
