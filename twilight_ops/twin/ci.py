"""The twin's CI: a real post-receive hook on the bare origin builds and publishes a pushed tag.

    git push origin v0.3.0-w4-cutover
      → hooks/post-receive (shell, written by twin.up) → python -m twilight_ops.twin.ci_hook post-receive
      → a `push` run of the publish workflow (.github/workflows/publish.yml) for the tag,
        `queued`, in the GitHub stand-in (github.json); with the second-workflow fault also a
        CodeQL run on the same tag that fails at once
      → a worker in its own session (the push returns at once; pidfile ci/run-<id>.pid):
        after `queued_seconds` → `in_progress` → docker build of the stand-in backend for
        that version → push to the twin registry (token auth, as the CI account)
        → `completed` with conclusion success or failure (the publish-skipped fault:
        `skipped` straight from the queue, nothing built)

Layout under `<twin>/ci/`:

    config.json        written by twin.up: interpreter, docker env, registry, cache dir, delay
    hook.log           the hook's lines; run-<id>.log each worker's log; run-<id>.pid while it runs
    runs/<id>.json     each run's result (tag, sha, conclusion, ref, digest)
    faults.json        {"build_fails": true}: the build context lacks app.py, docker build fails;
                       {"codeql_fails": true}: each tag push also gets a failing CodeQL run;
                       {"publish_conclusion": "skipped"}: the publish run ends so, unbuilt
    hold.json          {"stage": "queued" | "in_progress"}: the worker waits there (tests step it)
    docker-config/     the CI account's DOCKER_CONFIG (registry_auth.write_ci_docker_config)

Run states go through ci_runs (pure) and standins.update_github_state (the one locked
writer).  twin.down stops every worker by PID (its process group: the worker and the
docker CLI it runs) and marks their runs cancelled.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import json
import logging
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Callable

from ..errors import TwilightError
from . import ci_runs, github_shapes, image
from .procs import cmdline, has_option, pid_alive, read_pidfile, wait_until
from .standins import PACKAGE_ROOT, read_github_state, update_github_state, write_json_atomic

log = logging.getLogger(__name__)

DEFAULT_QUEUED_SECONDS = 1.0
HOLD_MAX_SECONDS = 600.0
PUBLISH_DEADLINE_SECONDS = 300
STOP_TIMEOUT = 10.0
REPO_PATH = "lacatfly/twilight-drive"
NEXT_ID_KEY = "twin_ci_next_run_id"  # in github.json; the API serves only its known keys

Say = Callable[[str], None]


@dataclasses.dataclass(frozen=True)
class CiPaths:
    base: Path
    root: Path
    config: Path
    faults: Path
    hold: Path
    results: Path
    hook_log: Path
    removed: Path  # manifests taken out of the registry by the pull-missing fault

    @classmethod
    def under(cls, base: Path) -> CiPaths:
        base = Path(base).absolute()
        root = base / "ci"
        return cls(base=base, root=root, config=root / "config.json", faults=root / "faults.json",
                   hold=root / "hold.json", results=root / "runs", hook_log=root / "hook.log",
                   removed=root / "removed")

    def run_log(self, run_id: int) -> Path:
        return self.root / f"run-{run_id}.log"

    def pidfile(self, run_id: int) -> Path:
        return self.root / f"run-{run_id}.pid"


def _read(path: Path, default: Any) -> Any:
    try:
        return json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return default


def now_utc() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# --------------------------------------------------------------------------- set-up (twin.up)


def hook_script(python: str, package_root: Path, base: Path) -> str:
    """The post-receive hook: hands the ref lines on stdin to the python entry point (pure)."""
    return ("#!/bin/sh\n"
            "# the twin's CI, written by `inv twin.up` (twilight_ops.twin.ci); runs as whoever pushes\n"
            f"PYTHONPATH={shlex.quote(str(package_root))}\n"
            "export PYTHONPATH\n"
            f"exec {shlex.quote(python)} -m twilight_ops.twin.ci_hook --twin {shlex.quote(str(base))} post-receive\n")


def install(base: Path, origin: Path, docker_env: dict[str, str], registry_host_port: str,
            cache_dir: Path | None = None, owner_repo: str = REPO_PATH) -> CiPaths:
    """ci/config.json and the origin's hooks/post-receive (rewritten on every twin.up)."""
    paths = CiPaths.under(base)
    paths.results.mkdir(parents=True, exist_ok=True)
    previous = _read(paths.config, {})
    queued = previous.get("queued_seconds", DEFAULT_QUEUED_SECONDS) if isinstance(previous, dict) else DEFAULT_QUEUED_SECONDS
    write_json_atomic(paths.config, {
        "python": sys.executable, "package_root": str(PACKAGE_ROOT), "origin": str(origin),
        "docker_host": docker_env["DOCKER_HOST"], "docker_config": docker_env["DOCKER_CONFIG"],
        "registry": registry_host_port, "repo_path": REPO_PATH, "owner_repo": owner_repo,
        "cache_dir": str(Path(cache_dir or image.default_cache_dir())), "queued_seconds": queued,
    })
    hook = origin / "hooks" / "post-receive"
    tmp = hook.with_name(".post-receive.tmp")
    tmp.write_text(hook_script(sys.executable, PACKAGE_ROOT, paths.base))
    tmp.chmod(0o755)
    os.replace(tmp, hook)
    return paths


def config(base: Path) -> dict:
    cfg = _read(CiPaths.under(base).config, None)
    if not isinstance(cfg, dict):
        raise TwilightError(f"no CI config under {base}/ci", "run `inv twin.up` first")
    return cfg


def set_queued_delay(base: Path, seconds: float) -> None:
    """How long a run stays queued before it starts (default 1 s)."""
    paths = CiPaths.under(base)
    update = {**config(base), "queued_seconds": float(seconds)}
    write_json_atomic(paths.config, update)


def set_hold(base: Path, stage: str | None) -> None:
    """Keep workers at `stage` ("queued" or "in_progress") until released with None."""
    paths = CiPaths.under(base)
    if stage is None:
        paths.hold.unlink(missing_ok=True)
        return
    if stage not in ("queued", "in_progress"):
        raise ValueError(f"hold stage {stage!r} is not queued or in_progress")
    write_json_atomic(paths.hold, {"stage": stage})


def faults(base: Path) -> dict:
    found = _read(CiPaths.under(base).faults, {})
    return found if isinstance(found, dict) else {}


def set_fault(base: Path, key: str, value: object | None) -> None:
    """One key of ci/faults.json set (None: removed; the file goes with its last key)."""
    paths = CiPaths.under(base)
    new = {k: v for k, v in faults(base).items() if k != key}
    if value is not None:
        new[key] = value
    if new:
        write_json_atomic(paths.faults, new)
    else:
        paths.faults.unlink(missing_ok=True)


def set_build_fails(base: Path, on: bool) -> None:
    set_fault(base, "build_fails", True if on else None)


# --------------------------------------------------------------------------- runs


def start_run(base: Path, tag: str, sha: str, say: Say = print) -> dict:
    """Record a queued run for `tag` at `sha` and start its worker; the run."""
    cfg = config(base)
    made: dict = {}

    codeql_fails = bool(faults(base).get("codeql_fails"))

    def add(state: dict) -> None:
        runs = list(state.get("workflow_runs", []))
        run_id = max(ci_runs.next_run_id(runs), int(state.get(NEXT_ID_KEY, 0)))  # never reused, even after a reset
        now = now_utc()
        run = ci_runs.new_run(cfg["owner_repo"], run_id, sha, tag, now)
        added = [run]
        if codeql_fails:   # another workflow on the same push, listed first (newer ID), failing at once
            codeql = ci_runs.new_run(cfg["owner_repo"], run_id + 1, sha, tag, now, github_shapes.CODEQL)
            added.append(ci_runs.advance(codeql, "completed", now, "failure"))
        state["workflow_runs"] = [*runs, *added]
        state[NEXT_ID_KEY] = run_id + len(added)
        made.update(run)

    update_github_state(base, add)
    pid = spawn_worker(base, made["id"], cfg)
    say(f"twin CI: run {made['id']} queued for {tag} at {sha[:12]} (worker PID {pid}): {made['html_url']}")
    return made


def spawn_worker(base: Path, run_id: int, cfg: dict) -> int:
    """The worker in its own session, output to ci/run-<id>.log, PID in ci/run-<id>.pid."""
    paths = CiPaths.under(base)
    env = {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
           "LANG": "C.UTF-8", "PYTHONPATH": cfg["package_root"], "PYTHONDONTWRITEBYTECODE": "1"}
    argv = [cfg["python"], "-m", "twilight_ops.twin.ci_hook", "--twin", str(paths.base), "run", "--id", str(run_id)]
    with open(paths.run_log(run_id), "ab") as out:
        proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True, close_fds=True, env=env)
    paths.pidfile(run_id).write_text(f"{proc.pid}\n")
    return proc.pid


def set_status(base: Path, run_id: int, status: str, conclusion: str | None = None) -> dict:
    """Move run `run_id` on (ci_runs.advance) in github.json; the updated run."""
    done: dict = {}

    def change(state: dict) -> None:
        runs = list(state.get("workflow_runs", []))
        hits = [r for r in runs if r["id"] == run_id]
        if not hits:
            raise TwilightError(f"no workflow run {run_id} in the GitHub stand-in", "was it reset meanwhile?")
        run = ci_runs.advance(hits[0], status, now_utc(), conclusion)
        state["workflow_runs"] = ci_runs.replace_run(runs, run)
        done.update(run)

    update_github_state(base, change)
    return done


def find_run(base: Path, run_id: int) -> dict | None:
    hits = [r for r in read_github_state(base).get("workflow_runs", []) if r["id"] == run_id]
    return hits[0] if hits else None


def runs_for(base: Path, tag: str) -> list[dict]:
    """Runs of the publish workflow for `tag`, newest first (other workflows' runs left out)."""
    runs = [r for r in read_github_state(base).get("workflow_runs", [])
            if r.get("head_branch") == tag and ci_runs.is_publish_run(r)]
    return sorted(runs, key=lambda r: r["id"], reverse=True)


def result(base: Path, run_id: int) -> dict | None:
    found = _read(CiPaths.under(base).results / f"{run_id}.json", None)
    return found if isinstance(found, dict) else None


def wait_run(base: Path, run_id: int, timeout: float = PUBLISH_DEADLINE_SECONDS) -> dict:
    """Poll github.json until run `run_id` is completed; the run (TwilightError at the deadline)."""
    seen: dict = {}

    def completed() -> bool:
        seen.update(find_run(base, run_id) or {})
        return seen.get("status") == "completed"

    if wait_until(completed, timeout, f"CI run {run_id}", poll=0.2) is None:
        raise TwilightError(f"CI run {run_id} is still {seen.get('status')} after {timeout:.0f} s",
                            f"see {CiPaths.under(base).run_log(run_id)}")
    return seen


# --------------------------------------------------------------------------- the worker


def _hold(paths: CiPaths, stage: str, say: Say) -> None:
    if (_read(paths.hold, {}) or {}).get("stage") != stage:  # type: ignore[union-attr]
        return
    say(f"held at {stage} (ci/hold.json)")
    wait_until(lambda: (_read(paths.hold, {}) or {}).get("stage") != stage, HOLD_MAX_SECONDS,  # type: ignore[union-attr]
               f"hold at {stage}", poll=0.1)
    say(f"released from {stage}")


def docker_env(cfg: dict) -> dict[str, str]:
    return {"PATH": os.environ.get("PATH", "/usr/local/bin:/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/root"),
            "DOCKER_HOST": cfg["docker_host"], "DOCKER_CONFIG": cfg["docker_config"]}


def build_and_push(cfg: dict, version: str, broken: bool, say: Say) -> tuple[str, str]:
    """docker build of the stand-in backend for `version`, push as the CI account; (ref, digest).
    The local tag is dropped afterwards (--no-prune keeps the layers as build cache): tvps has
    the release only by pulling it."""
    env = docker_env(cfg)
    cache = Path(cfg["cache_dir"])
    ref = image.image_ref(cfg["registry"], cfg["repo_path"], version)
    base = image.ensure_base_image(env, cache)
    wheel = image.ensure_duckdb_wheel(cache)
    with image._build_context(cache, wheel) as context:
        if broken:
            (context / "app.py").unlink()
            say("twin fault build-fails: the build context has no app.py")
        t0 = time.monotonic()
        image_id = image.build_image(env, ref, version, base.tag, context)
        say(f"built {ref} ({image_id[:19]}) in {time.monotonic() - t0:.1f} s")
    t0 = time.monotonic()
    digest = image.push_image(env, ref)
    say(f"pushed {ref} in {time.monotonic() - t0:.1f} s: {digest}")
    image._docker(env, "image", "rm", "--no-prune", ref, check=False)
    return ref, digest


def run_pipeline(base: Path, run_id: int) -> int:
    """The worker: queued → in_progress → build + push → completed.  Exit status 0 on success."""
    paths = CiPaths.under(base)

    def say(line: str) -> None:
        print(f"{ci_runs.iso(now_utc())} run {run_id}: {line}", flush=True)

    conclusion, ref, digest, error = "failure", None, None, None
    run = find_run(base, run_id)
    try:
        if run is None:
            raise TwilightError(f"no workflow run {run_id}", "was it reset?")
        cfg = config(base)
        tag, sha = run["head_branch"], run["head_sha"]
        say(f"queued: {tag} at {sha}")
        time.sleep(max(0.0, float(cfg.get("queued_seconds", DEFAULT_QUEUED_SECONDS))))
        _hold(paths, "queued", say)
        ended = faults(base).get("publish_conclusion")
        if ended in ci_runs.CONCLUSIONS and ended != "success":
            conclusion = str(ended)
            say(f"twin fault: the run ends {conclusion} without building")
            return 1
        set_status(base, run_id, "in_progress")
        say("in_progress")
        _hold(paths, "in_progress", say)
        broken = bool(faults(base).get("build_fails"))
        ref, digest = build_and_push(cfg, tag, broken, say)
        conclusion = "success"
    except TwilightError as e:
        error = e.line()
        say(f"failed: {error}")
    except Exception as e:  # the run must conclude whatever broke; the log says what
        error = f"{type(e).__name__}: {e}"
        say(f"failed: {error}")
    finally:
        if run is not None:
            write_json_atomic(paths.results / f"{run_id}.json", {
                "id": run_id, "tag": run["head_branch"], "sha": run["head_sha"], "conclusion": conclusion,
                "ref": ref, "digest": digest, "error": error, "log": str(paths.run_log(run_id))})
            try:
                set_status(base, run_id, "completed", conclusion)
            except (TwilightError, ci_runs.TransitionError) as e:
                say(f"could not record completion: {e}")
            say(f"completed: {conclusion}")
        paths.pidfile(run_id).unlink(missing_ok=True)
    return 0 if conclusion == "success" else 1


# --------------------------------------------------------------------------- stop (twin.down)


def _our_worker(base: Path, pid: int) -> bool:
    argv = cmdline(pid)
    return pid_alive(pid) and "twilight_ops.twin.ci_hook" in argv and has_option(argv, "--twin", str(Path(base).absolute()))


def stop_workers(base: Path, timeout: float = STOP_TIMEOUT) -> list[int]:
    """SIGTERM each worker's process group (PIDs from ci/run-*.pid, checked to be our
    workers), SIGKILL after `timeout`; runs left unfinished are marked cancelled."""
    paths = CiPaths.under(base)
    stopped = []
    for pidfile in sorted(paths.root.glob("run-*.pid")) if paths.root.exists() else []:
        run_id = int(pidfile.stem.removeprefix("run-"))
        pid = read_pidfile(pidfile)
        if pid is not None and _our_worker(base, pid):
            for sig in (signal.SIGTERM, signal.SIGKILL):
                try:
                    os.killpg(pid, sig)  # the worker leads its own session and group
                except ProcessLookupError:
                    break
                if wait_until(lambda: not pid_alive(pid), timeout, f"CI worker {pid} to exit") is not None:
                    break
            stopped.append(pid)
        pidfile.unlink(missing_ok=True)
        run = find_run(base, run_id) if paths.base.joinpath("standins", "github.json").exists() else None
        if run is not None and run["status"] != "completed":
            set_status(base, run_id, "completed", "cancelled")
    return stopped


def running_workers(base: Path) -> list[int]:
    paths = CiPaths.under(base)
    pids = [read_pidfile(p) for p in paths.root.glob("run-*.pid")] if paths.root.exists() else []
    return [p for p in pids if p is not None and _our_worker(base, p)]
