"""The twin CI's workflow runs: pure state transitions over GitHub's run objects.

A run moves queued → in_progress → completed (with one of GitHub's conclusions),
never backwards and never out of completed; `advance` refuses anything else.  Times are
GitHub's ISO 8601 UTC with a Z.  The objects are what `github_api.workflow_run` builds,
so the GitHub stand-in serves them unchanged.
"""
from __future__ import annotations

import datetime as dt
import fnmatch
from collections.abc import Iterable, Mapping

from . import github_api, github_shapes

STATUSES = ("queued", "in_progress", "completed")
CONCLUSIONS = ("success", "failure", "cancelled", "neutral", "skipped", "stale", "timed_out", "action_required",
               "startup_failure")
TAG_PATTERN = "v*"
ZERO_SHA = "0" * 40
FIRST_ID = 10_000_001


class TransitionError(ValueError):
    pass


def iso(now: dt.datetime) -> str:
    return now.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_run_id(runs: Iterable[Mapping]) -> int:
    """One more than the highest run ID (at least FIRST_ID), so IDs only grow."""
    return max([FIRST_ID - 1, *(int(r["id"]) for r in runs)]) + 1


def new_run(owner_repo: str, run_id: int, head_sha: str, tag: str, now: dt.datetime,
            workflow: github_shapes.Workflow = github_shapes.PUBLISH) -> dict:
    """A `push` run of `workflow` for a tag, queued (head_branch is the tag, as GitHub reports tag pushes)."""
    t = iso(now)
    run = github_api.workflow_run(owner_repo, run_id, head_sha, tag, event="push", status="queued",
                                  conclusion=None, workflow=workflow, created_at=t, updated_at=t)
    return run      # run_started_at = created_at while queued (GitHub's schema: a string, never null)


def advance(run: Mapping, status: str, now: dt.datetime, conclusion: str | None = None) -> dict:
    """The run moved on to `status` (with a conclusion when completed); a new dict."""
    if status not in STATUSES:
        raise TransitionError(f"unknown run status {status!r}")
    current = run["status"]
    if STATUSES.index(status) <= STATUSES.index(current):
        raise TransitionError(f"run {run['id']} is {current}; it cannot become {status}")
    if (status == "completed") != (conclusion is not None):
        raise TransitionError("a completed run needs a conclusion, and only a completed run has one")
    if conclusion is not None and conclusion not in CONCLUSIONS:
        raise TransitionError(f"unknown conclusion {conclusion!r}")
    t = iso(now)
    new = {**run, "status": status, "conclusion": conclusion, "updated_at": t}
    if current == "queued" or new.get("run_started_at") is None:
        new["run_started_at"] = t  # started when it left the queue (or ended straight from it)
    return new


def tag_pushes(lines: Iterable[str], pattern: str = TAG_PATTERN) -> list[tuple[str, str]]:
    """post-receive stdin (`<old> <new> <ref>` lines) → [(tag, new object)] for created or
    moved tags matching `pattern`; deletions and branches are skipped."""
    out = []
    for line in lines:
        parts = line.split()
        if len(parts) != 3:
            continue
        _old, new, ref = parts
        if not ref.startswith("refs/tags/") or new == ZERO_SHA:
            continue
        tag = ref.removeprefix("refs/tags/")
        if fnmatch.fnmatchcase(tag, pattern):
            out.append((tag, new))
    return out


def replace_run(runs: list[dict], run: Mapping) -> list[dict]:
    """`runs` with the run of the same ID replaced by `run` (appended if new)."""
    kept = [r for r in runs if r["id"] != run["id"]]
    return [*kept, dict(run)]


def is_publish_run(run: Mapping) -> bool:
    """A run of the tag-publishing workflow (runs recorded before runs had a `path` count as one)."""
    return run.get("path", github_shapes.PUBLISH.path) == github_shapes.PUBLISH.path
