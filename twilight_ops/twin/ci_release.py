"""Releases through the twin's CI: publish one (tag + push → CI run → registry), take one
back out (reset), and keep the registry honest at twin.up (a release is there only if a CI
run published it).

    ensure_published(st, "v0.3.0-w4-cutover")  # the test set-up for anything that runs W4
    reset_release(st, "v0.3.0-w4-cutover")     # before a test of tag-push / deploy from scratch
"""
from __future__ import annotations

from pathlib import Path

from ..errors import TwilightError
from . import ci, drive_repos, image
from .procs import read_pidfile
from .registry_client import TwinRegistry
from .standins import update_github_state
from .state import TwinState

TAG_DATE = drive_repos.W4_DATE  # fixed: the same tag object on every twin


def _registry(st: TwinState) -> TwinRegistry:
    return TwinRegistry.as_ci(st.base, st.registry)


def published_digest(st: TwinState, version: str) -> str | None:
    """The registry's manifest digest for `version` (through the token flow), or None."""
    with _registry(st) as reg:
        return reg.manifest_digest(ci.REPO_PATH, version)


def _tag_commit(repo: Path, version: str) -> str | None:
    out = drive_repos.git(repo, "rev-parse", "--verify", "-q", f"refs/tags/{version}^{{commit}}", check=False)
    return out or None


def push_tag(st: TwinState, version: str, sha: str | None = None) -> str:
    """Tag `sha` (default: the cutover commit) in the operator's clone and push the tag to
    origin, which starts a CI run through the hook; git's output (with the `remote:` line)."""
    sha = sha or st.drive_commits["w4"]
    clone = st.operator_clone
    existing = _tag_commit(clone, version)
    if existing is None:
        drive_repos.git(clone, "tag", "-a", version, "-m", version, sha, date=TAG_DATE)
    elif existing != sha:
        raise TwilightError(f"{version} in {clone} is on {existing[:12]}, not {sha[:12]}", f"reset_release(st, {version!r})")
    import subprocess

    res = subprocess.run(["git", "-c", f"safe.directory={clone}", "-C", str(clone), "push", "origin", f"refs/tags/{version}"],
                         env=drive_repos.git_env(), capture_output=True, text=True, timeout=120)
    if res.returncode != 0:
        raise TwilightError(f"git push origin {version} failed: {res.stderr.strip()[-200:]}", f"see {clone}")
    return res.stdout + res.stderr


def ensure_published(st: TwinState, version: str, timeout: float = ci.PUBLISH_DEADLINE_SECONDS) -> str:
    """`version` in the registry, published by the CI: pushes the tag (or re-runs CI when the
    tag is on origin already) and waits for the run; its digest.  A no-op when it is there."""
    digest = published_digest(st, version)
    if digest:
        return digest
    sha = _tag_commit(st.origin_repo, version)
    if sha is None:
        push_tag(st, version)
        runs = ci.runs_for(st.base, version)
        if not runs:
            raise TwilightError(f"pushing {version} started no CI run", f"see {ci.CiPaths.under(st.base).hook_log}")
        run = runs[0]
    else:
        run = ci.start_run(st.base, version, sha, say=lambda line: None)  # a re-run, as GitHub's "Re-run jobs"
    done = ci.wait_run(st.base, run["id"], timeout)
    if done["conclusion"] != "success":
        raise TwilightError(f"CI run {run['id']} for {version} concluded {done['conclusion']}",
                            f"see {ci.CiPaths.under(st.base).run_log(run['id'])}")
    digest = published_digest(st, version)
    if not digest:
        raise TwilightError(f"CI run {run['id']} succeeded but {version} is not in the registry", "see the registry log")
    return digest


def delete_from_registry(st: TwinState, version: str) -> str | None:
    """Remove the tag's manifest from the registry (blobs stay); the digest removed, or None."""
    with _registry(st) as reg:
        digest = reg.manifest_digest(ci.REPO_PATH, version)
        if digest:
            reg.delete_manifest(ci.REPO_PATH, digest)
        return digest


def untag_local(st: TwinState, version: str) -> None:
    """Drop the tag from the twin's dockerd (a running container keeps its image)."""
    from .dockerd import info_for

    env = info_for(st.base).env()
    image._docker(env, "image", "rm", "--no-prune", f"{st.image_repo}:{version}", check=False)


def reset_release(st: TwinState, version: str) -> None:
    """Back to before `version` was tagged: no tag in origin or the operator's clone, no CI
    runs for it (workers stopped), not in the registry, not tagged in the twin's dockerd."""
    if version == drive_repos.TAG:
        raise TwilightError(f"{version} is the twin's baseline release", "reset another version")
    paths = ci.CiPaths.under(st.base)
    for run in ci.runs_for(st.base, version):
        pid = read_pidfile(paths.pidfile(run["id"]))
        if pid is not None and pid in ci.running_workers(st.base):
            ci.stop_workers(st.base)  # also cancels any other run in flight
    for repo in (st.origin_repo, st.operator_clone):
        drive_repos.git(repo, "tag", "-d", version, check=False)
    update_github_state(st.base, lambda s: {**s, "workflow_runs": [r for r in s.get("workflow_runs", [])
                                                                     if r.get("head_branch") != version]})
    for found in paths.results.glob("*.json") if paths.results.exists() else []:
        if (ci._read(found, {}) or {}).get("tag") == version:  # type: ignore[union-attr]
            found.unlink()
    (paths.removed / f"{version}.json").unlink(missing_ok=True)
    delete_from_registry(st, version)
    untag_local(st, version)


def reconcile_registry(st: TwinState, keep: tuple[str, ...]) -> list[str]:
    """Delete from the registry every tag outside `keep` that no successful CI run published
    (e.g. one an older twin.up pushed itself); the tags removed."""
    removed = []
    with _registry(st) as reg:
        for tag in reg.tags(ci.REPO_PATH):
            if tag in keep or any(r.get("conclusion") == "success" for r in ci.runs_for(st.base, tag)):
                continue
            digest = reg.manifest_digest(ci.REPO_PATH, tag)
            if digest:
                reg.delete_manifest(ci.REPO_PATH, digest)
                removed.append(tag)
    for tag in removed:
        untag_local(st, tag)
    return removed


def deploy_config(st: TwinState, publish_deadline: int = ci.PUBLISH_DEADLINE_SECONDS) -> dict:
    """The `twilight` keys tag-push and deploy will read (not in config.py yet, so not written
    to the twin's invoke.yaml): the registry's API base, the image's name in it, how long to
    wait for the published image."""
    return {"registry_api": f"http://{st.registry}", "registry_name": ci.REPO_PATH,
            "publish_deadline": publish_deadline}
