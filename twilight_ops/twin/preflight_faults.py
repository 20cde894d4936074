"""Switches that make each `inv preflight` check fail on the twin, and the config it needs.

Each switch breaks exactly one check and leaves the others passing:

    pr-unmerged              PR #N (default 41) is open, unmerged          → dependency PRs merged
    check-run-failed         the integration check on the cutover commit
                             concluded `failure`                           → CI green
    tushare-token-invalid    the Tushare stand-in accepts another token     → Tushare token valid
    source-pinned-elsewhere  ~/twilight/source on tvps at v0.2.0            → commit pinned
    install-skill-outdated   origin/main gains an install-skill.sh change
                             (pushed from a scratch clone; CI green on it,
                             tvps re-pinned to it); the operator's clone
                             has not pulled it                              → install-skill.sh is the latest
    local-main-behind        the operator's main is reset to v0.2.0, one
                             commit behind origin/main                      → local main not behind
    tvps-clock-skew          tvps's clock 10 min ahead of the tool's
                             (control.set_clock's skew: the backend and
                             `date` over SSH; the tool's offset stays)      → tvps's clock agrees

(The seventh check, no active traffic, fails with `inv twin.load` running.)
`clear()` undoes every switch and is a no-op on a clean twin.
"""
from __future__ import annotations

import pwd
import shutil
import tempfile
from pathlib import Path
from typing import Any

from ..errors import BadInput
from . import drive_repos, github_api, standins
from .state import TwinState

NAMES = ("pr-unmerged", "check-run-failed", "tushare-token-invalid", "source-pinned-elsewhere",
         "install-skill-outdated", "local-main-behind", "tvps-clock-skew")
SKEW_S = 600.0          # ahead: stepping back would put rows of 10-20 min ago (real clock) in tvps's window
DEFAULT_PR = 41
SCRATCH_DATE = "2026-05-09T09:00:00+08:00"
INSTALL_SKILL_FIX = """# drop group/other write on the installed skill (Hermes refuses world-writable skills)
chmod -R go-w "$dest"
"""


def preflight_config(st: TwinState) -> dict[str, Any]:
    """The `twilight` config keys preflight needs on this twin (the lead adds them to config.py)."""
    return {
        "github_api": st.github_api,
        "github_repo": st.github_repo,
        "github_token_file": str(st.github_token_file),
        "ci_check_name": github_api.INTEGRATION_CHECK,
        "lifespan_pr": str(github_api.LIFESPAN_PR),
        "tushare_url": st.tushare_url,
        "local_repo": str(st.operator_clone),
    }


def _ids(st: TwinState) -> tuple[int, int]:
    pw = pwd.getpwnam(st.user)
    return pw.pw_uid, pw.pw_gid


def _cutover(st: TwinState) -> str:
    if not st.drive_commits.get("w4"):
        raise BadInput(f"the twin at {st.base} has no twilight-drive repos yet", "run `inv twin.up` first")
    return st.drive_commits["w4"]


def reopen(state: dict, number: int) -> None:
    """PR #number open and unmerged in the stand-in's state (pure): `GET …/pulls/{n}` and the
    list `GET …/pulls` both read this one object, so both show it."""
    key = str(number)
    if key not in state["pulls"]:
        raise BadInput(f"PR #{number} is not one of the twin's PRs", "known: " + ", ".join(sorted(state["pulls"], key=int)))
    pull = state["pulls"][key]
    pull.update(state="open", merged=False, merged_at=None, closed_at=None, mergeable=True,
                merge_commit_sha=github_api.fake_sha(f"test-merge-{number}"))


def pr_unmerged(st: TwinState, number: int = DEFAULT_PR) -> None:
    standins.update_github_state(st.base, lambda state: reopen(state, number))


def check_run_failed(st: TwinState) -> None:
    sha = _cutover(st)

    def change(state: dict) -> None:
        for run in state["check_runs"].get(sha, []):
            if run["name"] == github_api.INTEGRATION_CHECK:
                run.update(status="completed", conclusion="failure")

    standins.update_github_state(st.base, change)


def tushare_token_invalid(st: TwinState) -> None:
    standins.write_json_atomic(standins.StandinPaths.under(st.base).tushare_switch, {"token_rotated": True})


def source_pinned_elsewhere(st: TwinState) -> None:
    drive_repos.pin_source(st.tvps_source, st.origin_repo, st.drive_commits[drive_repos.TAG], *_ids(st), force=True)


def install_skill_outdated(st: TwinState) -> str:
    """Push an install-skill.sh change to origin main (once); CI green on it; tvps re-pinned to it."""
    cutover = _cutover(st)
    new = drive_repos.commits(st.origin_repo)["main"]
    if new == cutover:
        scratch = Path(tempfile.mkdtemp(prefix="scratch-", dir=st.origin_repo.parent))
        try:
            drive_repos.git(None, "clone", "-q", str(st.origin_repo), str(scratch / "w"))
            work = scratch / "w"
            drive_repos.set_identity(work)
            script = work / "scripts/install-skill.sh"
            lines = script.read_text().splitlines(keepends=True)
            script.write_text("".join(lines[:-1]) + INSTALL_SKILL_FIX + lines[-1])
            new = drive_repos.commit_all(work, "install-skill.sh: drop group/other write on the installed skill", SCRATCH_DATE)
            drive_repos.git(work, "push", "-q", "origin", "HEAD:refs/heads/main")
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    def change(state: dict) -> None:
        state["refs"]["main"] = new
        state.setdefault("fault_shas", [])
        if new not in state["fault_shas"]:
            state["fault_shas"].append(new)
        runs = [dict(r, head_sha=new, id=r["id"] + 100) for r in state["check_runs"].get(cutover, [])]
        for r in runs:
            r.update(status="completed", conclusion="success")
        state["check_runs"][new] = runs
        if not any(r["head_sha"] == new for r in state["workflow_runs"]):
            state["workflow_runs"].append(github_api.workflow_run(state["owner_repo"], 9_000_002, new, "main",
                                                                  created_at="2026-05-09T01:00:00Z",
                                                                  updated_at="2026-05-09T01:07:00Z"))

    standins.update_github_state(st.base, change)
    drive_repos.pin_source(st.tvps_source, st.origin_repo, new, *_ids(st), force=True)
    return new


def local_main_behind(st: TwinState) -> None:
    _cutover(st)
    clone = st.operator_clone
    drive_repos.git(clone, "checkout", "-q", "main")
    drive_repos.git(clone, "reset", "-q", "--hard", st.drive_commits[drive_repos.TAG])


def set_skew(st: TwinState, seconds: float) -> None:
    """tvps alone `seconds` off the tool's clock (over SSH, as `inv twin.clock --skew`)."""
    from ..remote import SSHExecutor
    from . import build, control

    yaml_path = st.base / "invoke.yaml"
    settings = build.settings_for(yaml_path)
    with SSHExecutor(settings) as ex:
        control.set_clock(ex, settings, settings.clock_offset_seconds, yaml_path, seconds)


def skewed(st: TwinState) -> bool:
    """clock.json (local: the twin's tvps is this host) records a skew."""
    import json

    try:
        raw = json.loads((st.data_dir / "clock.json").read_text())
    except (FileNotFoundError, ValueError):
        return False
    return isinstance(raw, dict) and bool(raw.get("skew_seconds"))


def apply(st: TwinState, name: str, pr: int | None = None) -> None:
    if name not in NAMES:
        raise BadInput(f"preflight fault {name!r} is unknown", "known: " + ", ".join(NAMES))
    if pr is not None and name != "pr-unmerged":
        raise BadInput("--pr only goes with --name pr-unmerged", f"e.g. --name pr-unmerged --pr {DEFAULT_PR}")
    if name == "pr-unmerged":
        pr_unmerged(st, DEFAULT_PR if pr is None else pr)
    elif name == "check-run-failed":
        check_run_failed(st)
    elif name == "tushare-token-invalid":
        tushare_token_invalid(st)
    elif name == "source-pinned-elsewhere":
        source_pinned_elsewhere(st)
    elif name == "install-skill-outdated":
        install_skill_outdated(st)
    elif name == "tvps-clock-skew":
        set_skew(st, SKEW_S)
    else:
        local_main_behind(st)


def clear(st: TwinState) -> None:
    """Undo every switch: PRs, check runs and refs as twin.up made them (recorded workflow
    runs of other commits stay), Tushare's token, origin/main, the operator's main, tvps' pin,
    tvps's clock skew (the twin clock's offset stays)."""
    cutover = _cutover(st)
    pristine = github_api.initial_state({"main": cutover, drive_repos.TAG: st.drive_commits[drive_repos.TAG]})

    def change(state: dict) -> dict:
        dropped = set(state.get("fault_shas", []))
        checks = {sha: runs for sha, runs in state.get("check_runs", {}).items() if sha not in dropped}
        checks.update(pristine["check_runs"])
        initial_ids = {r["id"] for r in pristine["workflow_runs"]}
        runs = [r for r in state.get("workflow_runs", []) if r["head_sha"] not in dropped and r["id"] not in initial_ids]
        return {**state, "refs": {**state.get("refs", {}), **pristine["refs"]}, "pulls": pristine["pulls"],
                "check_runs": checks, "workflow_runs": pristine["workflow_runs"] + runs, "fault_shas": []}

    standins.update_github_state(st.base, change)
    standins.StandinPaths.under(st.base).tushare_switch.unlink(missing_ok=True)
    if drive_repos.commits(st.origin_repo)["main"] != cutover:
        drive_repos.git(st.origin_repo, "update-ref", "refs/heads/main", cutover)
    clone = st.operator_clone
    drive_repos.git(clone, "fetch", "-q", "--prune", "origin")
    if drive_repos.git(clone, "rev-parse", "refs/heads/main") != cutover:
        drive_repos.git(clone, "checkout", "-q", "main")
        drive_repos.git(clone, "reset", "-q", "--hard", cutover)
    if drive_repos.head(st.tvps_source) != cutover:
        drive_repos.pin_source(st.tvps_source, st.origin_repo, cutover, *_ids(st), force=True)
    if skewed(st):
        set_skew(st, 0.0)
