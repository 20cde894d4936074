"""The plan shown before a change (`inv cutover`, `inv deploy`, `inv tag-push`): read cheaply,
changes nothing.

    gather(t, action, commit=None) -> change_plan.ChangePlan

What runs now comes from `compose ps` on tvps (one fact, the Target caches it); the commit from
the local twilight-drive repo without a fetch (the tag V's commit for a deploy; the journal's
cutover commit, else origin/main as last fetched, for a tag-push or a cutover) and the tags on it.
"""
from __future__ import annotations

from .. import change_plan, release
from ..builders import git
from ..errors import TwilightError
from ..runbook import Fact
from ..sanitize import printable
from ..target import Target, address


def running_now(t: Target) -> str:
    try:
        svc = t.service()
    except TwilightError as e:
        return f"not known ({e.message[:120]})"
    if svc is None:
        return f"nothing: compose lists no {t.settings.service} service"
    digest = svc.repo_digest.rpartition("@")[2] or "no repo digest"
    return printable(f"{svc.version or svc.image} ({digest[:19]}…, {svc.state}/{svc.health or '-'})")  # tvps's words


def _rev(repo, ref: str) -> str:
    r = repo.run(git.rev_parse(ref), check=False, timeout=30)
    return r.stdout.strip() if r.ok else ""


def commit_of(t: Target, action: str, commit: str | None) -> tuple[str, str, tuple[str, ...]]:
    """(commit, where it comes from, the tags on it) from the local repo; ("", why, ()) when unknown."""
    repo_path = t.settings.local_repo
    if not (repo_path / ".git").exists():
        return "", f"{repo_path} is not a git checkout", ()
    repo = t.local.child(cwd=repo_path)
    sha, why = "", ""
    if action == "deploy":
        sha, why = _rev(repo, f"refs/tags/{t.version}"), f"the tag {t.version} in {repo_path}"
    if not sha and commit:
        sha, why = _rev(repo, commit), "--commit"
    if not sha:
        pinned = str(t.journal().facts.get(Fact.CUTOVER_COMMIT) or "")
        if pinned:
            sha, why = pinned, "the journal's cutover commit (preflight)"
    if not sha:
        sha = _rev(repo, "origin/main")
        why = "origin/main as last fetched; preflight fetches it first" if sha else "no origin/main in the local repo"
    if not sha:
        return "", why, ()
    r = repo.run(git.git("tag", "--points-at", sha), check=False, timeout=30)
    return sha, why, tuple(r.stdout.split()) if r.ok else ()


def gather(t: Target, action: str, commit: str | None = None) -> change_plan.ChangePlan:
    user, hostname, port = address(t.settings)
    sha, why, tags = commit_of(t, action, commit)
    known = (t.settings.release, release.DEFAULT_RELEASE)
    warning = change_plan.naming_warning(t.version, tags, known)
    return change_plan.ChangePlan(action=action, target=f"{t.settings.host} = {user}@{hostname}:{port}",
                                  running=running_now(t), version=t.version, commit=sha, commit_why=why,
                                  warnings=(warning,) if warning else ())
