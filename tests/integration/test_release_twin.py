"""`inv tag-push` and `inv deploy` against the twin's CI, token-auth registry and release
faults: the image published only by CI, a tag on the wrong commit refused, a failed build
stopping early, each deploy fault stopping cleanly (lock released, the right rollback line),
and a concurrent deploy from a second process refused by the lock."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, TWIN_DIR, error_lines, inv
from tests import journals
from twilight_ops import lock
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import ci, ci_release, control, drive_repos, release_faults, standins
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

W4, PREVIOUS = "v0.3.0-w4-cutover", "v0.2.0"
QUIET = {"INVOKE_TWILIGHT_PUBLISH_POLL": "0.5"}


def back_to_previous(settings) -> None:
    with SSHExecutor(settings) as ex:
        lay = layout(settings, ex.home)
        ex.run(["find", lay.compose_env.rsplit("/", 1)[0], "-maxdepth", "1", "-name", ".env*", "-delete"])
        if lock.read_holder(ex, lay) is not None:
            lock.release(ex, lay)
        control.clear_faults(ex, settings)
        control.run_version(ex, settings, PREVIOUS)


@pytest.fixture(scope="module")
def fresh(twin, twin_settings):
    """v0.2.0 running, W4 never tagged or published, the T+00:00 facts recorded."""
    st = load_or_new(TWIN_DIR)
    release_faults.clear(st)
    ci_release.reset_release(st, W4)
    back_to_previous(twin_settings)
    r = inv("preflight", "--version", W4, "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stdout + r.stderr
    yield st
    release_faults.clear(load_or_new(TWIN_DIR))
    back_to_previous(twin_settings)
    ci_release.ensure_published(load_or_new(TWIN_DIR), W4)      # later modules deploy W4


def run(twin, *args, env=None):
    return inv(*args, cfg=twin.invoke_yaml, env={**QUIET, **(env or {})})


def test_a_tag_on_another_commit_is_refused(fresh, twin):
    clone = fresh.operator_clone
    drive_repos.git(clone, "tag", W4, fresh.drive_commits[PREVIOUS])
    try:
        r = run(twin, "tag-push", "--version", W4)
    finally:
        drive_repos.git(clone, "tag", "-d", W4)
    assert r.returncode == 1 and f"tag {W4} already exists on {fresh.drive_commits[PREVIOUS][:12]}" in r.stderr
    assert fresh.drive_commits["w4"][:12] in r.stderr
    assert drive_repos.git(fresh.origin_repo, "tag", "-l", W4) == ""       # nothing was pushed


def test_a_failed_build_stops_early_with_the_run_url(fresh, twin):
    release_faults.apply(fresh, "build-fails")
    try:
        r = run(twin, "tag-push", "--version", W4)
    finally:
        release_faults.clear(load_or_new(TWIN_DIR))
        ci_release.reset_release(load_or_new(TWIN_DIR), W4)
    assert r.returncode == 1 and "ended failure" in r.stderr and "/actions/runs/" in r.stderr, r.stderr
    assert ci_release.published_digest(load_or_new(TWIN_DIR), W4) is None


def test_a_skipped_publish_run_fails_at_once_with_its_url(fresh, twin):
    release_faults.apply(fresh, "publish-skipped")
    started = time.monotonic()
    try:
        r = run(twin, "tag-push", "--version", W4)
        took = time.monotonic() - started
        runs = ci.runs_for(fresh.base, W4)
    finally:
        release_faults.clear(load_or_new(TWIN_DIR))
        ci_release.reset_release(load_or_new(TWIN_DIR), W4)
    assert r.returncode == 1 and "ended skipped" in r.stderr, r.stderr
    assert runs and runs[0]["conclusion"] == "skipped" and runs[0]["html_url"] in r.stderr
    assert took < 60, took                    # at once, not at the 20-minute (here 300 s) deadline
    assert ci_release.published_digest(load_or_new(TWIN_DIR), W4) is None


def test_a_failing_second_workflow_on_the_tag_does_not_stop_the_publish(fresh, twin):
    release_faults.apply(fresh, "second-workflow-fails")
    try:
        r = run(twin, "tag-push", "--version", W4, "--json")
        state = standins.read_github_state(fresh.base)
        published = ci_release.published_digest(load_or_new(TWIN_DIR), W4)
    finally:
        release_faults.clear(load_or_new(TWIN_DIR))
        ci_release.reset_release(load_or_new(TWIN_DIR), W4)
    on_tag = sorted(((x["name"], x["path"], x["conclusion"], x["id"]) for x in state["workflow_runs"]
                     if x["head_branch"] == W4), key=lambda x: -x[3])
    assert [x[:3] for x in on_tag] == [("CodeQL", ".github/workflows/codeql.yml", "failure"),   # the newest run on the tag …
                                       ("publish", ".github/workflows/publish.yml", "success")]
    assert r.returncode == 0, r.stdout + r.stderr                                               # … is not the one that counts
    rep = json.loads(r.stdout)
    assert rep["run_url"].endswith(f"/actions/runs/{on_tag[1][3]}") and published and rep["digest"].endswith(published)


def test_tag_push_waits_for_ci_then_deploy_runs_the_published_image(fresh, twin, twin_settings):
    assert ci_release.published_digest(fresh, W4) is None          # only CI publishes it
    r = run(twin, "tag-push", "--version", W4, "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["tagged"] == "created" and rep["pushed"] == "pushed" and rep["commit"] == fresh.drive_commits["w4"]
    assert "/actions/runs/" in rep["run_url"]
    published = ci_release.published_digest(load_or_new(TWIN_DIR), W4)
    assert published and rep["digest"].endswith(published)
    assert drive_repos.git(fresh.origin_repo, "rev-parse", f"refs/tags/{W4}^{{commit}}") == fresh.drive_commits["w4"]
    again = run(twin, "tag-push", "--version", W4, "--json")        # idempotent: tag and push are no-ops
    assert again.returncode == 0 and json.loads(again.stdout)["pushed"] == "already"
    said = run(twin, "tag-push", "--version", W4)                   # issue 15 §5: in words, not "tag already, already"
    assert said.returncode == 0, said.stderr
    assert f"tag {W4} already existed at {fresh.drive_commits['w4'][:12]}; origin already had it; CI " in said.stdout
    assert "already, already" not in said.stdout
    d = run(twin, "deploy", "--version", W4, "--yes", "--json")
    assert d.returncode == 0, d.stdout + d.stderr
    assert json.loads(d.stdout)["digest"].endswith(published)
    smoke = run(twin, "smoke", "--json")
    assert smoke.returncode == 0 and json.loads(smoke.stdout)["envelope"] == "w4"
    back_to_previous(twin_settings)


# the health gate's deadline per fault: never-healthy is judged at the deadline (compose would call the
# container unhealthy only after ≈ 30 s: start_period 10 s + 10 retries 2 s apart), so a short one;
# restart-loop fails fast when compose ps says restarting
GATE_DEADLINE = {"never-healthy": "10", "restart-loop": "25", "pull-denied": "25"}


@pytest.mark.parametrize("fault,says", [
    ("never-healthy", "not healthy within"),
    ("restart-loop", "restart"),
    ("pull-denied", f"pull of {W4} failed"),
])
def test_each_deploy_fault_stops_cleanly(fresh, twin, twin_settings, fault, says):
    ci_release.ensure_published(load_or_new(TWIN_DIR), W4)
    back_to_previous(twin_settings)
    release_faults.apply(load_or_new(TWIN_DIR), fault)
    try:
        r = run(twin, "deploy", "--version", W4, "--yes", env={"INVOKE_TWILIGHT_DEPLOY_DEADLINE": GATE_DEADLINE[fault]})
    finally:
        release_faults.clear(load_or_new(TWIN_DIR))
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = [x for x in error_lines(r.stderr) if x.startswith("error:")]
    assert says in line, line
    assert f"inv -f {twin.invoke_yaml} rollback --version {W4} --reason '" in line
    with SSHExecutor(twin_settings) as ex:
        assert lock.read_holder(ex, layout(twin_settings, ex.home)) is None
    waits = [x for x in r.stderr.splitlines() if x.startswith("waiting for backend")]
    assert len(waits) <= int(GATE_DEADLINE[fault]) // 10 + 2, waits     # issue 21 §2: a log sees one every 10 s + the last
    if fault != "pull-denied":
        assert "backend logs" in r.stdout and "healthcheck log" in r.stdout
        cause = {"never-healthy": "ERROR lifespan startup incomplete", "restart-loop": "FATAL lifespan startup failed"}
        assert r.stdout.startswith("cause: ") and cause[fault] in r.stdout.splitlines()[0], r.stdout[:500]   # the cause first
        steps = journals.local(twin_settings, W4)["steps"]
        failed = [s for s in steps if s["name"].endswith(":health-gate") and s["outcome"] == "failed"][-1]
        assert failed["evidence"]["backend_logs_tail200"] and "rollback --version" in failed["note"]
    back_to_previous(twin_settings)


# the first deploy's gate holds the lock this long: the second deploy starts as soon as the lock is the
# first's and needs a few seconds; after its refusal the test still waits for the first to end
HELD_GATE_DEADLINE = "15"


def test_a_concurrent_deploy_is_refused_by_the_lock(fresh, twin, twin_settings):
    ci_release.ensure_published(load_or_new(TWIN_DIR), W4)
    back_to_previous(twin_settings)
    release_faults.apply(load_or_new(TWIN_DIR), "never-healthy")       # keeps the first deploy in its gate
    argv = [os.path.join(os.path.dirname(sys.executable), "inv"), "-f", str(twin.invoke_yaml), "deploy", "--version", W4, "--yes"]
    first = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, **QUIET, "INVOKE_TWILIGHT_DEPLOY_DEADLINE": HELD_GATE_DEADLINE})
    try:
        with SSHExecutor(twin_settings) as ex:
            lay = layout(twin_settings, ex.home)
            deadline = time.monotonic() + 60
            while time.monotonic() < deadline:          # until the first deploy holds the lock (a condition)
                h = lock.read_holder(ex, lay)
                if h is not None and h.client_pid == first.pid:
                    break
                time.sleep(0.1)
            second = run(twin, "deploy", "--version", W4, "--yes")
            assert second.returncode == 1 and f"another run on this machine (PID {first.pid})" in second.stderr, second.stderr
            assert lock.read_holder(ex, lay).client_pid == first.pid         # the second did not release it
    finally:
        first.communicate(timeout=180)
        release_faults.clear(load_or_new(TWIN_DIR))
        back_to_previous(twin_settings)
    assert first.returncode == 1
