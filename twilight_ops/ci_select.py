"""Which GitHub run counts, and what it says (pure; GitHub's REST objects in, plain values out).

    workflow_matches(run, wanted)      the run belongs to the workflow `wanted` (its path or its name)
    publish_run(runs, wanted, tag)     the newest run of that workflow for a tag push, or None
    outcome(status, conclusion)        wait | success | failed
    newest_check_run(runs, name)       the newest check run of that name, or None

Every workflow of the repo gets its own run on a tag push (the publish workflow, CodeQL …);
only the configured one decides.  A run that ended any way but `success` — `failure`,
`cancelled`, `timed_out`, `action_required`, `neutral`, `skipped`, `stale`,
`startup_failure`, or a conclusion GitHub adds later — is done and failed.  Check runs:
GitHub's IDs only grow, so the newest is the one with the highest ID; a re-run that is
still queued (`started_at` null) is newer than the success before it, so it is pending.
"""
from __future__ import annotations

import posixpath
from typing import Any, Iterable, Mapping

SUCCESS = "success"
FAILED_CONCLUSIONS = frozenset({"failure", "cancelled", "timed_out", "startup_failure", "action_required", "stale",
                                "neutral", "skipped"})


def _path(run: Mapping[str, Any]) -> str:
    """The run's workflow file path without its `@ref` suffix (GitHub's own example has
    `.github/workflows/build.yml@main`)."""
    return str(run.get("path") or "").split("@", 1)[0]


def workflow_matches(run: Mapping[str, Any], wanted: str) -> bool:
    """`wanted` is the workflow's path (`.github/workflows/publish.yml`, an `@ref` ignored), its
    file name (`publish.yml`) or its name (`publish`), compared exactly."""
    path, want = _path(run), wanted.split("@", 1)[0]
    if path and (want == path or ("/" not in want and want == posixpath.basename(path))):
        return True
    return bool(run.get("name")) and run.get("name") == wanted


def _int(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else -1


def publish_run(runs: Iterable[Mapping[str, Any]], wanted: str, tag: str) -> Mapping[str, Any] | None:
    """The newest run of workflow `wanted` whose head_branch is the tag (a tag push's runs name the tag)."""
    mine = [r for r in runs if r.get("head_branch") == tag and workflow_matches(r, wanted)]
    if not mine:
        return None
    return max(mine, key=lambda r: (str(r.get("created_at") or ""), _int(r.get("id")), _int(r.get("run_attempt"))))


def others_seen(runs: Iterable[Mapping[str, Any]], wanted: str, tag: str) -> list[str]:
    """The other workflows that ran for the tag ('CodeQL (.github/workflows/codeql.yml) failure'), for messages."""
    out = []
    for r in runs:
        if r.get("head_branch") == tag and not workflow_matches(r, wanted):
            ended = r.get("conclusion") or r.get("status") or "?"
            label = f"{r.get('name') or '?'} ({_path(r) or 'no path'}) {ended}"
            if label not in out:
                out.append(label)
    return out


def outcome(status: str, conclusion: str) -> str:
    """wait | success | failed for a workflow run's status and conclusion ("" = null)."""
    if conclusion in FAILED_CONCLUSIONS:
        return "failed"
    if status == "completed" and conclusion:
        return "success" if conclusion == SUCCESS else "failed"
    return "wait"


def newest_check_run(runs: Iterable[Mapping[str, Any]], name: str) -> Mapping[str, Any] | None:
    """The check run named `name` with the highest ID (then the latest start; a null start,
    a run still queued, counts as the latest)."""
    mine = [r for r in runs if r.get("name") == name]
    if not mine:
        return None
    return max(mine, key=lambda r: (_int(r.get("id")), str(r.get("started_at") or "\uffff")))
