"""`inv deploy` through the twin: v0.2.0 → v0.3.0-w4-cutover behind the health gate, the
version persisted for a bare `compose up -d`, a second deploy a no-op, the lock, a failed
pull that restarts nothing, a dry run that touches nothing."""
from __future__ import annotations

import json

import pytest

from tests.conftest import error_lines, inv
from tests import journals
from twilight_ops import lock
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import control

pytestmark = pytest.mark.twin

W4, PREVIOUS = "v0.3.0-w4-cutover", "v0.2.0"


def running(ex, settings):
    from twilight_ops import health

    lay = layout(settings, ex.home)
    return health.service_of(health.read_services(ex, lay, settings.image_repo), settings.service)


def env_text(ex, settings) -> str | None:
    try:
        return ex.read_file(layout(settings, ex.home).compose_env).decode()
    except FileNotFoundError:
        return None


def accepted(twin) -> int:
    return (twin.ssh_dir / "sshd.log").read_text().count("Accepted publickey")


def clean_env(ex, settings) -> None:
    lay = layout(settings, ex.home)
    deploy_dir = lay.compose_env.rsplit("/", 1)[0]
    ex.run(["find", deploy_dir, "-maxdepth", "1", "-name", ".env*", "-delete"])


@pytest.fixture(scope="module")
def previous(twin, twin_settings):
    """v0.2.0 running without a persisted version and with the T+00:00 facts; the same afterwards."""
    from twilight_ops.twin import ci_release

    ci_release.ensure_published(twin, W4)      # W4 reaches the registry only through the twin's CI
    with SSHExecutor(twin_settings) as ex:
        clean_env(ex, twin_settings)
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, PREVIOUS)
    r = inv("preflight", "--version", W4, "--json", cfg=twin.invoke_yaml)
    assert r.returncode == 0, r.stdout + r.stderr
    yield twin
    with SSHExecutor(twin_settings) as ex:
        if lock.read_holder(ex, layout(twin_settings, ex.home)) is not None:
            lock.release(ex, layout(twin_settings, ex.home))
        clean_env(ex, twin_settings)
        control.run_version(ex, twin_settings, PREVIOUS)


def deploy(twin, *args, env=None):
    return inv("deploy", *args, cfg=twin.invoke_yaml, env=env)


def test_dry_run_and_plan_touch_nothing(previous, ex, twin_settings):
    state = (env_text(ex, twin_settings), running(ex, twin_settings).version)   # ex connects here, once
    logins = accepted(previous)
    for argv in (["--dry", "deploy", "--version", W4], ["deploy", "--version", W4, "--plan"]):
        r = inv(*argv, cfg=previous.invoke_yaml)
        assert r.returncode == 0 and "pull" in r.stdout and "depends on live output" in r.stdout, r.stderr
        assert f"TWILIGHT_VERSION={W4} docker compose" in r.stdout
    assert accepted(previous) == logins        # neither form even connected
    assert (env_text(ex, twin_settings), running(ex, twin_settings).version) == state


def test_deploy_to_w4_ends_healthy_and_serves_w4(previous, ex, twin_settings):
    r = deploy(previous, "--version", W4, "--yes", "--json")
    assert r.returncode == 0, r.stdout + r.stderr
    rep = json.loads(r.stdout)
    assert rep["outcome"] == "deployed" and rep["remote_commands"] > 0 and "@sha256:" in rep["digest"]
    svc = running(ex, twin_settings)
    assert (svc.version, svc.health, svc.restart_count, svc.repo_digest) == (W4, "healthy", 0, rep["digest"])
    assert "waiting for backend" in r.stderr or "healthy after" in r.stderr     # progress on the wait
    smoke = inv("smoke", "--json", cfg=previous.invoke_yaml)
    assert smoke.returncode == 0 and json.loads(smoke.stdout)["envelope"] == "w4", smoke.stdout
    journal = journals.local(twin_settings, W4)
    assert journal["facts"]["post_digest"] == rep["digest"]
    done = [s for s in journal["steps"] if s["name"].startswith("deploy#") and ":" not in s["name"]][-1]
    assert done["outcome"] == "ok" and done["evidence"]["remote_commands"] == rep["remote_commands"]
    assert lock.read_holder(ex, layout(twin_settings, ex.home)) is None


def test_the_version_survives_a_bare_compose_up(previous, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    assert f"TWILIGHT_VERSION={W4}" in env_text(ex, twin_settings)
    ex.run(compose_cmd.compose(lay, "up", "-d", "--force-recreate", "--wait", lay.service), timeout=300)  # no env at all
    assert running(ex, twin_settings).version == W4


def test_a_second_deploy_is_a_noop(previous, ex, twin_settings):
    r = deploy(previous, "--version", W4, "--yes")
    assert r.returncode == 0 and "already runs healthy" in r.stdout and "nothing to do" in r.stdout, r.stdout + r.stderr


def test_a_deploy_while_someone_holds_the_lock_is_refused(previous, ex, twin_settings):
    other = {"INVOKE_TWILIGHT_OPERATOR": "someone@else"}
    assert inv("lock", "--acquire", "--version", W4, "--reason", "maintenance", cfg=previous.invoke_yaml, env=other).returncode == 0
    try:
        r = deploy(previous, "--version", W4, "--yes")
    finally:
        assert inv("lock", "--release", "--yes", cfg=previous.invoke_yaml).returncode == 0
    assert r.returncode == 1 and "held by someone@else" in r.stderr and "Traceback" not in r.stderr


def test_a_failed_pull_restarts_nothing_releases_the_lock_and_names_the_rollback(previous, ex, twin_settings):
    missing = "v0.3.9-never-published"
    assert inv("preflight", "--version", missing, "--json", cfg=previous.invoke_yaml).returncode == 0
    before_env, before = env_text(ex, twin_settings), running(ex, twin_settings)
    r = deploy(previous, "--version", missing, "--yes")
    assert r.returncode == 1 and "Traceback" not in r.stderr
    (line,) = [x for x in error_lines(r.stderr) if x.startswith("error:")]
    assert f"pull of {missing} failed" in line and "nothing was restarted" in line
    assert f"rollback --version {missing} --reason" in line and str(previous.invoke_yaml) in line
    after = running(ex, twin_settings)
    assert (after.version, after.repo_digest, after.restart_count) == (before.version, before.repo_digest, 0)
    assert env_text(ex, twin_settings) == before_env
    assert lock.read_holder(ex, layout(twin_settings, ex.home)) is None


def test_deploy_without_preflight_facts_is_refused(previous):
    r = deploy(previous, "--version", "v0.3.8-no-preflight", "--yes")
    assert r.returncode == 1 and "no T+00:00 facts" in r.stderr and "inv preflight --version v0.3.8-no-preflight" in r.stderr


def test_bad_input_touches_nothing(previous):
    assert deploy(previous, "--version", "v1;reboot", "--yes").returncode == 2
    r = deploy(previous, "--version", W4)          # no TTY, no --yes
    assert r.returncode == 2 and "--yes" in r.stderr
