"""T+00:05 in Terminal A: tag the cutover commit, push the tag, wait until CI publishes the image.

    run(t, commit=None, progress=…) -> TagPushReport

1. Tag V at the cutover commit (the journal's, from preflight; else --commit; else
   origin/main) in the local twilight-drive repo.  V already on that commit: nothing to do;
   V on another commit: refuse, showing both.
2. Push the tag.  The remote already has V on the same commit: a no-op; on another: refuse.
3. Poll, until `publish_deadline` (20 min): the run of the publish workflow
   (`publish_workflow`: its path or name) for the tag (GitHub Actions REST: every page of the
   runs for the head SHA, event push; other workflows' runs on the tag are ignored) —
   status, conclusion, html_url — and the registry (OCI HEAD manifests with the token
   challenge).  A run that ended any way but success (failure, cancelled, timed_out,
   action_required, neutral, skipped, stale …) stops at once with its URL (ci_select).
   Done when the run succeeded and the manifest answers with a digest.
4. The published digest goes into the journal facts (`published_digest`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import time
from typing import Any, Callable

from .. import ci_select, registry
from ..builders import git
from ..errors import BadInput, CheckFailed, TwilightError
from ..runbook import Fact, Steps
from ..target import Target

def git_sha(value: str) -> bool:
    import re

    return bool(re.fullmatch(r"[0-9a-f]{7,40}", value))


FAILED = ci_select.FAILED_CONCLUSIONS


@dataclasses.dataclass(frozen=True)
class TagPushReport:
    version: str
    commit: str
    tagged: str        # created | already
    pushed: str        # pushed | already
    run_url: str
    digest: str
    waited_s: float

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def sentence(self) -> str:
        """What happened to the tag, in words (pure): the tag-push line the operator reads."""
        at = self.commit[:12]
        made = (f"tag {self.version} already existed at {at}" if self.tagged == "already"
                else f"tagged {self.version} at {at}")
        sent = "origin already had it" if self.pushed == "already" else "pushed it to origin"
        return (f"{made}; {sent}; CI {self.run_url}; published {self.digest} after {self.waited_s:.0f} s")


@dataclasses.dataclass(frozen=True)
class Poll:
    """One look at CI and the registry (pure data for the progress line and the decision)."""

    run_status: str          # "" = no run yet
    conclusion: str
    run_url: str
    digest: str | None
    workflow: str = ""       # the publish workflow's name, once its run is seen
    others: tuple[str, ...] = ()   # other workflows' runs on the tag ("CodeQL (.github/workflows/codeql.yml) failure")

    def line(self, elapsed: float) -> str:
        run = f"CI {self.run_status or 'not started'}" + (f"/{self.conclusion}" if self.conclusion else "")
        reg = f"registry {'has ' + self.digest[:19] + '…' if self.digest else 'not yet'}"
        seen = f" (other workflows on the tag: {', '.join(self.others)})" if self.others and not self.run_status else ""
        return f"waiting for the image: {run}{seen}, {reg} — {elapsed:.0f}s"


def decide(p: Poll) -> str:
    """wait | done | failed (pure): any end but success is failed at once."""
    ended = ci_select.outcome(p.run_status, p.conclusion)
    if ended == "failed":
        return "failed"
    if ended == "success" and p.digest:
        return "done"
    return "wait"


def after_failed_run(run_url: str, repo: str, version: str) -> str:
    """What to do after a failed publish run (pure).  A run that failed outside the code (the
    registry or token server down during its push, a runner lost) needs a re-run of the same run,
    not a new tag; a build that failed needs a fix and a new tag.  The run's log tells which."""
    run_id = run_url.rstrip("/").rsplit("/", 1)[-1] if run_url else ""
    rerun = (f"`gh run rerun {run_id} --failed --repo {repo}` (or \"Re-run failed jobs\" at {run_url})"
             if run_id.isdigit() else f"re-run it from {run_url or 'GitHub Actions'}")
    return (f"nothing was deployed; read the run's log: if its push failed to reach the registry (connection refused, "
            f"timeout, 5xx) re-run the same run — {rerun} — then `inv tag-push --version {version}` (or `inv cutover "
            f"--resume`) waits for it; if the build or tests failed, fix it and push a new tag")


def plan(t: Target, commit: str | None) -> list[str]:
    from ..executor import render

    v, where = t.version, t.settings.local_repo
    target = commit or "<the journal's cutover commit, else origin/main>"
    return [f"in {where}: {render(git.fetch('origin', 'main'))}",
            f"in {where}: {render(git.tag(v, target))}   (nothing when {v} is already on it; refused when on another commit)",
            f"in {where}: {render(git.push_tag('origin', v))}   (nothing when origin has it on the same commit)",
            f"poll every {t.settings.publish_poll_s:g} s until {t.settings.publish_deadline_s:g} s: the GitHub Actions run of "
            f"{t.settings.publish_workflow} for the commit (event push, head_branch {v}; other workflows ignored) and "
            f"HEAD {registry.api_base(t.settings)}/v2/…/manifests/{v} (token challenge); a run that ends other than "
            "success stops at once",
            "journal: the published digest (local and tvps)"]


def cutover_commit(t: Target, repo, journal, commit: str | None) -> str:
    wanted = commit or journal.facts.get(Fact.CUTOVER_COMMIT) or "origin/main"
    r = repo.run(git.rev_parse(wanted), check=False)
    if not r.ok or not r.stdout.strip():
        raise BadInput(f"{wanted} is not a commit in {t.settings.local_repo}", "fetch the repo, or give --commit")
    return r.stdout.strip()


def run(t: Target, commit: str | None = None, progress: Callable[[str], None] = lambda s: None) -> TagPushReport:
    from .. import github
    from .preflight import local_repo

    v = t.version
    repo = local_repo(t)
    journal = t.journal()
    repo.run(git.fetch("origin", "main"), timeout=120)
    target = cutover_commit(t, repo, journal, commit)

    existing = repo.run(git.rev_parse(f"refs/tags/{v}"), check=False).stdout.strip()
    if existing and existing != target:
        raise CheckFailed(f"tag {v} already exists on {existing[:12]}, not on the cutover commit {target[:12]}",
                          f"check which is right; delete the wrong tag by hand (`git tag -d {v}`) only if it was never pushed")
    tagged = "already" if existing else "created"
    if not existing:
        repo.run(git.tag(v, target))

    remote = git.parse_ls_remote(repo.run(git.ls_remote_tag("origin", v), timeout=60).stdout, v)
    if remote and remote != target:
        raise CheckFailed(f"origin already has tag {v} on {remote[:12]}, not on {target[:12]}",
                          "a tag that moved is a red flag: stop and find out who pushed it")
    pushed = "already" if remote else "pushed"
    if not remote:
        repo.run(git.push_tag("origin", v), timeout=120)
    t.audit(Steps.TAG_PUSH, "pushed" if pushed == "pushed" else "noop", f"{v} at {target[:12]}")

    started = time.monotonic()
    tok = github.token(t.settings, t.local)
    last = Poll("", "", "", None)
    reg = registry.session(t.settings)          # one connection and one token for every poll
    with github.GitHub(t.settings, tok) as gh, contextlib.closing(reg):
        while True:
            last = poll_once(t, gh, target, reg)
            verdict = decide(last)
            elapsed = time.monotonic() - started
            if verdict == "failed":
                t.audit("publish", "failed", f"{v} CI {last.conclusion} {last.run_url}")
                raise CheckFailed(f"the CI run for {v} ({last.workflow or t.settings.publish_workflow}) ended "
                                  f"{last.conclusion or last.run_status}: {last.run_url}",
                                  after_failed_run(last.run_url, t.settings.github_repo, v))
            if verdict == "done":
                break
            if elapsed > t.settings.publish_deadline_s:
                seen = (f"; no run of {t.settings.publish_workflow} — other runs on the tag: {', '.join(last.others)}"
                        if last.others and not last.run_status else "")
                raise CheckFailed(f"{v} not published within {t.settings.publish_deadline_s:g} s "
                                  f"({last.line(elapsed)}){seen}",
                                  f"watch the run: {last.run_url or 'GitHub Actions'}; re-run to keep waiting"
                                  + ("; check twilight.publish_workflow" if seen else ""))
            progress(last.line(elapsed))
            time.sleep(t.settings.publish_poll_s)
    waited = time.monotonic() - started
    digest_ref = f"{t.settings.image_repo}@{last.digest}"
    journal.facts[Fact.PUBLISHED_DIGEST] = digest_ref
    with t.journals.step(journal, Steps.TAG_PUSH) as step:
        step.evidence.update({"commit": target, "tagged": tagged, "pushed": pushed, "run_url": last.run_url,
                              "digest": digest_ref, "waited_s": round(waited, 1)})
    t.audit("publish", "ok", f"{v} {digest_ref}")
    return TagPushReport(v, target, tagged, pushed, last.run_url, digest_ref, round(waited, 1))


def poll_once(t: Target, gh, sha: str, reg: registry.Session | None = None) -> Poll:
    runs = gh.workflow_runs(head_sha=sha, event="push")
    wanted = t.settings.publish_workflow
    run_ = ci_select.publish_run(runs, wanted, t.version) or {}     # a tag push's runs name the tag
    try:
        digest = registry.manifest_digest(t.settings, t.version, within=reg)
    except TwilightError:
        digest = None          # the registry blinks: keep polling until the deadline
    return Poll(str(run_.get("status") or ""), str(run_.get("conclusion") or ""), str(run_.get("html_url") or ""), digest,
                str(run_.get("name") or ""), tuple(ci_select.others_seen(runs, wanted, t.version)))
