"""The twin's CI and registry auth for real: a `git push` of a tag runs the origin's
post-receive hook, the run goes queued → in_progress → completed in the GitHub stand-in,
and the image reaches the registry, which answers only through the token challenge (as
ghcr.io does).  Then each CI/release fault, through `inv twin.ci-fault`.

The run's stages are stepped with ci/hold.json (no timing assumptions); waits are
deadlines with short polls."""
from __future__ import annotations

import json

import httpx
import pytest

from tests.conftest import TWIN_DIR, inv
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders.layout import layout
from twilight_ops.twin import ci, ci_release, registry_auth, registry_token as rt
from twilight_ops.twin.procs import pid_alive, wait_until
from twilight_ops.twin.registry_client import ACCEPT
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

W4 = "v0.3.0-w4-cutover"
PREVIOUS = "v0.2.0"
NAME = "lacatfly/twilight-drive"
RUNS = "/repos/lacatfly/twilight-drive/actions/runs"
DEADLINE = 180.0


@pytest.fixture(scope="module")
def st(twin, twin_settings):
    state = load_or_new(TWIN_DIR)
    ci.set_hold(state.base, None)
    ci_release.reset_release(state, W4)
    yield state
    ci.set_hold(state.base, None)
    inv("twin.ci-fault", "--clear", "--dir", str(TWIN_DIR))
    from twilight_ops.remote import SSHExecutor
    from twilight_ops.twin import control, seed_remote

    with SSHExecutor(twin_settings) as ex:
        if seed_remote.running_version(ex, twin_settings) != PREVIOUS:
            control.run_version(ex, twin_settings, PREVIOUS)


@pytest.fixture(scope="module")
def gh(st):
    token = st.github_token_file.read_text().strip()
    with httpx.Client(base_url=st.github_api, trust_env=False, timeout=10,
                      headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json"}) as client:
        yield client


@pytest.fixture
def reg(st):
    """An anonymous client of the registry (no token yet)."""
    with httpx.Client(base_url=f"http://{st.registry}", trust_env=False, timeout=10) as client:
        yield client


def token_flow(reg: httpx.Client, method: str, path: str, headers: dict | None = None) -> tuple[httpx.Response, rt.Challenge, dict]:
    """Anonymous request → 401 challenge → GET realm → retry with the token; (final response,
    the challenge, the token's claims)."""
    first = reg.request(method, path, headers=headers)
    assert first.status_code == 401, first.text
    challenge = rt.parse_challenge(first.headers["www-authenticate"])
    got = httpx.get(challenge.realm, params=rt.token_query(challenge), trust_env=False, timeout=10)
    assert got.status_code == 200, got.text
    body = got.json()
    assert body["token"] == body["access_token"] and body["expires_in"] == 300
    _, claims, _ = rt.decode_jwt(body["token"])
    again = reg.request(method, path, headers={**(headers or {}), "Authorization": f"Bearer {body['token']}"})
    return again, challenge, claims


def manifest(reg: httpx.Client, version: str) -> httpx.Response:
    resp, challenge, claims = token_flow(reg, "HEAD", f"/v2/{NAME}/manifests/{version}", {"Accept": ACCEPT})
    assert challenge.scheme == "Bearer" and challenge.service == registry_auth.SERVICE
    assert challenge.scope == f"repository:{NAME}:pull"
    assert claims["sub"] == "" and claims["aud"] == registry_auth.SERVICE and claims["iss"] == registry_auth.ISSUER
    return resp


def run_of(gh: httpx.Client, run_id: int) -> dict:
    r = gh.get(f"{RUNS}/{run_id}")
    assert r.status_code == 200, r.text
    return r.json()


def wait_status(gh: httpx.Client, run_id: int, status: str) -> dict:
    seen: dict = {}

    def reached() -> bool:
        seen.update(run_of(gh, run_id))
        return seen["status"] == status

    assert wait_until(reached, DEADLINE, f"run {run_id} {status}", poll=0.2) is not None, seen
    return seen


def pushed_run(gh: httpx.Client, st, version: str, output: str) -> dict:
    assert "remote: twin CI: run " in output and f"queued for {version}" in output, output
    runs = gh.get(RUNS, params={"branch": version, "event": "push"}).json()["workflow_runs"]
    assert len(runs) == 1, runs
    return runs[0]


def tvps(ex, *argv: str):
    return ex.run(list(argv), check=False, timeout=180)


# ---------------------------------------------------------------- the CI path


def test_tag_push_runs_ci_and_the_image_appears_only_through_the_token_flow(st, gh, reg):
    assert manifest(reg, W4).status_code == 404  # not published: twin.up pushes only v0.2.0
    ci.set_hold(st.base, "queued")
    out = ci_release.push_tag(st, W4)  # a real `git push origin <tag>` from the operator's clone

    run = pushed_run(gh, st, W4, out)
    w4_sha = st.drive_commits["w4"]
    assert (run["status"], run["conclusion"], run["event"], run["head_branch"], run["head_sha"]) == (
        "queued", None, "push", W4, w4_sha)
    assert gh.get(RUNS, params={"head_sha": w4_sha, "branch": W4}).json()["total_count"] == 1
    assert ci.running_workers(st.base), "the worker runs detached after the push returned"

    ci.set_hold(st.base, "in_progress")
    started = wait_status(gh, run["id"], "in_progress")
    assert started["conclusion"] is None and started["run_started_at"]
    assert manifest(reg, W4).status_code == 404  # held before the build: nothing pushed yet

    ci.set_hold(st.base, None)
    done = wait_status(gh, run["id"], "completed")
    assert done["conclusion"] == "success" and done["html_url"].endswith(f"/actions/runs/{run['id']}")
    assert done["run_started_at"] == started["run_started_at"] and done["updated_at"] >= started["updated_at"]

    published = ci.result(st.base, run["id"])
    head = manifest(reg, W4)
    assert head.status_code == 200
    assert head.headers["docker-content-digest"] == published["digest"]
    assert ci.running_workers(st.base) == []
    log = ci.CiPaths.under(st.base).run_log(run["id"]).read_text()
    assert "in_progress" in log and "pushed" in log and "completed: success" in log
    password = registry_auth.AuthPaths.under(st.base).password.read_text().strip()
    assert password not in log and password not in registry_auth.AuthPaths.under(st.base).log.read_text()


def test_docker_pull_on_tvps_goes_through_the_anonymous_token_flow(st, ex):
    ci_release.ensure_published(st, W4)
    ref = f"{st.image_repo}:{W4}"
    assert not (st.base / "docker-config" / "config.json").exists()  # tvps' docker holds no credentials
    token_log = registry_auth.AuthPaths.under(st.base).log
    before = token_log.read_text().count(f"token issued for anonymous: {NAME}:pull")
    res = tvps(ex, "docker", "pull", ref)
    assert res.ok, res.stderr
    assert token_log.read_text().count(f"token issued for anonymous: {NAME}:pull") > before
    digest = ci_release.published_digest(st, W4)
    inspect = tvps(ex, "docker", "image", "inspect", "--format", "{{json .RepoDigests}}", ref)
    assert f"{st.image_repo}@{digest}" in json.loads(inspect.stdout)


def test_anonymous_token_cannot_push(st, reg):
    got = httpx.get(registry_auth.token_url(st.base), params={"service": registry_auth.SERVICE,
                                                              "scope": f"repository:{NAME}:pull,push"}, trust_env=False)
    token = got.json()["token"]
    assert rt.decode_jwt(token)[1]["access"] == [{"type": "repository", "name": NAME, "actions": ["pull"]}]
    r = reg.post(f"/v2/{NAME}/blobs/uploads/", headers={"Authorization": f"Bearer {token}"})
    assert r.status_code == 401 and 'error="insufficient_scope"' in r.headers["www-authenticate"]
    wrong = httpx.get(registry_auth.token_url(st.base), params={"service": registry_auth.SERVICE, "account": "ci"},
                      auth=("ci", "not-the-password"), trust_env=False)
    assert wrong.status_code == 401 and wrong.json()["errors"][0]["code"] == "UNAUTHORIZED"


def test_status_and_deploy_config(st):
    r = inv("twin.status", "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr
    status = json.loads(r.stdout)
    assert status["token_server"]["url"] == registry_auth.token_url(st.base) and status["token_server"]["alive"]
    assert status["ci"]["log_dir"] == str(st.base / "ci")
    assert status["ci"]["deploy_config"] == {"registry_api": f"http://{st.registry}", "registry_name": NAME,
                                             "publish_deadline": ci.PUBLISH_DEADLINE_SECONDS}


def test_a_held_worker_is_stopped_by_pid_and_its_run_cancelled(st, gh):
    version = "v0.3.1-held"
    ci.set_hold(st.base, "queued")
    try:
        run = pushed_run(gh, st, version, ci_release.push_tag(st, version))
        (pid,) = ci.running_workers(st.base)
        assert ci.stop_workers(st.base) == [pid]
        assert not pid_alive(pid)
        assert (run_of(gh, run["id"])["status"], run_of(gh, run["id"])["conclusion"]) == ("completed", "cancelled")
    finally:
        ci.set_hold(st.base, None)
        ci_release.reset_release(st, version)


# ---------------------------------------------------------------- faults


def test_build_fails_concludes_failure_and_pushes_nothing(st, gh, reg):
    version = "v0.3.2-broken"
    r = inv("twin.ci-fault", "--name", "build-fails", "--dir", str(TWIN_DIR))
    assert r.returncode == 0 and "build-fails" in r.stdout, r.stderr
    try:
        run = pushed_run(gh, st, version, ci_release.push_tag(st, version))
        done = wait_status(gh, run["id"], "completed")
        assert done["conclusion"] == "failure"
        assert manifest(reg, version).status_code == 404
        log = ci.CiPaths.under(st.base).run_log(run["id"]).read_text()
        assert "docker build" in log and "app.py" in log and "completed: failure" in log
    finally:
        assert inv("twin.ci-fault", "--clear", "--dir", str(TWIN_DIR)).returncode == 0
        ci_release.reset_release(st, version)


def _up_without_wait(ex, settings, version: str) -> None:
    lay = layout(settings, ex.home)
    ex.run(compose_cmd.compose_pull(lay, version), timeout=300)
    ex.run(compose_cmd.compose(lay, "up", "-d", lay.service, version=version), timeout=300)


def _container(ex, settings) -> str:
    lay = layout(settings, ex.home)
    return ex.run(compose_cmd.compose(lay, "ps", "-q", "-a", lay.service)).stdout.strip()


def test_never_healthy_keeps_the_release_unhealthy(st, ex, twin_settings):
    ci_release.ensure_published(st, W4)
    r = inv("twin.ci-fault", "--name", "never-healthy", "--dir", str(TWIN_DIR))
    assert r.returncode == 0, r.stderr
    try:
        _up_without_wait(ex, twin_settings, W4)
        cid = _container(ex, twin_settings)

        def health() -> str:
            return tvps(ex, "docker", "inspect", "--format", "{{.State.Health.Status}}", cid).stdout.strip()

        assert wait_until(lambda: health() == "unhealthy", DEADLINE, "unhealthy", poll=0.5) is not None
        assert tvps(ex, "docker", "inspect", "--format", "{{.State.Running}} {{.RestartCount}}", cid).stdout.split() == ["true", "0"]
        logs = tvps(ex, "docker", "logs", cid)
        assert "twin fault never-healthy" in logs.stdout + logs.stderr
    finally:
        assert inv("twin.ci-fault", "--clear", "--dir", str(TWIN_DIR)).returncode == 0
    from twilight_ops.twin import control

    control.run_version(ex, twin_settings, PREVIOUS)  # v0.2.0 is untouched by the fault
    assert wait_until(lambda: tvps(ex, "docker", "inspect", "--format", "{{.State.Health.Status}}",
                                   _container(ex, twin_settings)).stdout.strip() == "healthy", DEADLINE, "healthy") is not None


def test_restart_loop_restarts_the_release_again_and_again(st, ex, twin_settings):
    ci_release.ensure_published(st, W4)
    r = inv("twin.ci-fault", "--name", "restart-loop", "--version", W4, "--dir", str(TWIN_DIR))
    assert r.returncode == 0 and "exits 1" in r.stdout, r.stderr
    try:
        _up_without_wait(ex, twin_settings, W4)
        cid = _container(ex, twin_settings)

        def restarts() -> int:
            return int(tvps(ex, "docker", "inspect", "--format", "{{.RestartCount}}", cid).stdout.strip() or 0)

        assert wait_until(lambda: restarts() >= 2, DEADLINE, "two restarts", poll=0.5) is not None
        policy = tvps(ex, "docker", "inspect", "--format", "{{.HostConfig.RestartPolicy.Name}}", cid).stdout.strip()
        assert policy == "unless-stopped"
        logs = tvps(ex, "docker", "logs", cid)
        assert "twin fault restart-loop" in logs.stdout + logs.stderr
    finally:
        assert inv("twin.ci-fault", "--clear", "--dir", str(TWIN_DIR)).returncode == 0
    from twilight_ops.twin import control

    control.run_version(ex, twin_settings, PREVIOUS)


def test_pull_missing_fails_the_pull_until_cleared(st, ex, reg):
    digest = ci_release.ensure_published(st, W4)
    r = inv("twin.ci-fault", "--name", "pull-missing", "--dir", str(TWIN_DIR))
    assert r.returncode == 0 and "deleted from the registry" in r.stdout, r.stderr
    try:
        assert manifest(reg, W4).status_code == 404
        res = tvps(ex, "docker", "pull", f"{st.image_repo}:{W4}")
        assert not res.ok and ("not found" in res.stderr or "manifest unknown" in res.stderr), res.stderr
    finally:
        r = inv("twin.ci-fault", "--clear", "--dir", str(TWIN_DIR))
        assert r.returncode == 0 and "restored" in r.stdout
    assert manifest(reg, W4).headers["docker-content-digest"] == digest
    assert tvps(ex, "docker", "pull", f"{st.image_repo}:{W4}").ok


def test_pull_denied_refuses_every_pull_until_cleared(st, ex, reg):
    ci_release.ensure_published(st, W4)
    assert inv("twin.ci-fault", "--name", "pull-denied", "--dir", str(TWIN_DIR)).returncode == 0
    try:
        resp, _, claims = token_flow(reg, "HEAD", f"/v2/{NAME}/manifests/{W4}", {"Accept": ACCEPT})
        assert claims["access"] == [] and resp.status_code == 401
        assert 'error="insufficient_scope"' in resp.headers["www-authenticate"]
        res = tvps(ex, "docker", "pull", f"{st.image_repo}:{PREVIOUS}")
        assert not res.ok and ("denied" in res.stderr or "unauthorized" in res.stderr), res.stderr
    finally:
        assert inv("twin.ci-fault", "--clear", "--dir", str(TWIN_DIR)).returncode == 0
    assert manifest(reg, W4).status_code == 200


def test_ci_fault_bad_input_is_one_line_exit_2():
    r = inv("twin.ci-fault", "--name", "nope", "--dir", str(TWIN_DIR))
    assert r.returncode == 2 and "Traceback" not in r.stderr and "known: build-fails" in r.stderr
    r = inv("twin.ci-fault", "--dir", str(TWIN_DIR))
    assert r.returncode == 2 and "--clear" in r.stderr
