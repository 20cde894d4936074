"""Issue 23 items 1 and 4 through the twin: a part that does not answer during `inv deploy` (the
registry, its token server) is UNREACHABLE — exit 3, v0.2.0 still running, nothing rolled back,
`inv decide` INCOMPLETE naming the part — and the same deploy continues once it is back; a
Ctrl-C inside the deploy is INCOMPLETE too (never ROLLBACK), exit 130 with the line that continues.

A part is killed before `inv deploy` runs, so the pull fails at once: for the tool that is the
registry going away during T+00:00 deploy.  It is brought back the way twin.up starts it
(registry_auth.start_token_server, registry.start_registry on the same ports).  dockerd is
covered by its captured output (tests/data/captured/compose-*-dockerd-down-*.txt,
tests/unit/test_docker_errors.py): stopping the twin's dockerd stops every container of the
session's twin.
"""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from tests.conftest import REPO, error_lines, inv
from tests import journals
from twilight_ops import lock
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import build, control, registry, registry_auth, release_faults

pytestmark = pytest.mark.twin

W4, PREVIOUS = "v0.3.0-w4-cutover", "v0.2.0"


def running(ex, settings):
    from twilight_ops import health

    return health.service_of(health.read_services(ex, layout(settings, ex.home), settings.image_repo), settings.service)


def restore_registry(base) -> None:
    """The token server and the registry back, as twin.up starts them (same ports, token auth)."""
    tok = registry_auth.start_token_server(base)
    registry.start_registry(base, auth=registry_auth.registry_auth(tok.realm, tok.paths.cert))


def journal(settings) -> dict:
    return journals.local(settings, W4)


def decide(twin) -> dict:
    r = inv("decide", "--version", W4, "--json", cfg=twin.invoke_yaml)
    assert r.returncode in (0, 1) and "Traceback" not in r.stderr, r.stderr
    return json.loads(r.stdout)


@pytest.fixture(scope="module")
def published(twin, twin_settings):
    from twilight_ops.twin import ci_release

    ci_release.ensure_published(twin, W4)
    yield twin
    restore_registry(twin.base)
    release_faults.clear(twin)
    with SSHExecutor(twin_settings) as ex:
        control.run_version(ex, twin_settings, PREVIOUS)


@pytest.fixture
def fresh(published, twin_settings):
    """No cutover yet, v0.2.0 running, W4 not in tvps' image store, the T+00:00 facts taken."""
    restore_registry(published.base)             # an earlier test may have left it down
    build.forget_cutovers(published)
    with SSHExecutor(twin_settings) as ex:
        control.clear_faults(ex, twin_settings)
        control.run_version(ex, twin_settings, PREVIOUS)
        ex.run(["docker", "image", "rm", "-f", f"{twin_settings.image_repo}:{W4}"], check=False)
    r = inv("preflight", "--version", W4, "--json", cfg=published.invoke_yaml)
    assert r.returncode == 0, r.stdout + r.stderr
    return published


def assert_unreachable_then_resumed(twin, settings, r, part: str) -> None:
    assert r.returncode == 3 and "Traceback" not in r.stderr, r.stdout + r.stderr
    (line,) = [x for x in error_lines(r.stderr) if x.startswith("error:")]
    assert f"could not reach {part}" in line and "nothing was changed" in line, line
    assert f"tvps now: twilight-backend-1 runs" in line and f":{PREVIOUS} (running, healthy)" in line, line
    assert f"inv -f {twin.invoke_yaml} deploy --version {W4} --yes" in line, line
    assert "rollback --version" not in r.stdout + r.stderr
    with SSHExecutor(settings) as ex:
        svc = running(ex, settings)
        assert (svc.version, svc.health, svc.restart_count) == (PREVIOUS, "healthy", 0)
        assert lock.read_holder(ex, layout(settings, ex.home)) is None
    j = journal(settings)
    assert "rolled_back" not in j["facts"]
    pulls = [s for s in j["steps"] if s["name"] == "deploy#1:pull"]
    assert [s["outcome"] for s in pulls] == ["unreachable"]
    dec = decide(twin)
    assert dec["verdict"] == "INCOMPLETE", dec
    assert part in dec["reason"] and "--resume" in dec["next_step"], dec

    restore_registry(twin.base)
    again = inv("deploy", "--version", W4, "--yes", "--json", cfg=twin.invoke_yaml)
    assert again.returncode == 0, again.stdout + again.stderr
    assert json.loads(again.stdout)["outcome"] == "deployed"
    j = journal(settings)
    assert j["facts"]["deploy_attempt"] == 1          # the same attempt, continued
    assert [s["outcome"] for s in j["steps"] if s["name"] == "deploy#1:pull"] == ["unreachable", "ok"]
    deploy_input = decide(twin)["inputs"][0]
    assert deploy_input["state"] == "green", deploy_input
    with SSHExecutor(settings) as ex:
        assert running(ex, settings).version == W4


def test_registry_down_during_deploy_is_unreachable_and_the_deploy_continues(fresh, twin_settings):
    registry.stop_registry(fresh.base)           # back in assert_unreachable_then_resumed (or the next `fresh`)
    r = inv("deploy", "--version", W4, "--yes", cfg=fresh.invoke_yaml)
    assert_unreachable_then_resumed(fresh, twin_settings, r, f"the registry 127.0.0.1:{fresh.registry_port} "
                                    "(connection refused)")


def test_token_server_down_during_deploy_is_unreachable_and_the_deploy_continues(fresh, twin_settings):
    registry_auth.stop_token_server(fresh.base)
    r = inv("deploy", "--version", W4, "--yes", cfg=fresh.invoke_yaml)
    assert_unreachable_then_resumed(fresh, twin_settings, r, f"the registry's token server 127.0.0.1:{fresh.token_port} "
                                    "(connection refused)")


def test_ctrl_c_inside_deploy_is_incomplete_not_rollback_and_the_deploy_continues(fresh, twin_settings):
    release_faults.apply(fresh, "never-healthy", W4)     # W4 stays `starting` (30 s start period): the gate waits
    argv = [os.path.join(os.path.dirname(sys.executable), "inv"), "-f", str(fresh.invoke_yaml),
            "deploy", "--version", W4, "--yes"]
    proc = subprocess.Popen(argv, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            stdin=subprocess.DEVNULL, start_new_session=True)
    local = journals.local_path(twin_settings, W4)     # each step's start is on the laptop (the mirror gets it at its end)
    try:
        while not any(s["name"] == "deploy#1:health-gate" and s["outcome"] == "running"
                      for s in (journals.read(local)["steps"] if local.exists() else [])):
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.1)
        os.killpg(proc.pid, signal.SIGINT)          # Ctrl-C in the operator's terminal
        out, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        release_faults.clear(fresh)
    assert proc.returncode == 130 and "Traceback" not in err, out + err
    assert f"continue with: inv -f {fresh.invoke_yaml} deploy --version {W4} --yes" in err, err
    gate = [s for s in journal(twin_settings)["steps"] if s["name"] == "deploy#1:health-gate"][-1]
    assert gate["outcome"] == "interrupted", gate
    dec = decide(fresh)
    assert dec["verdict"] == "INCOMPLETE" and "health-gate interrupted" in dec["reason"], dec

    again = inv("deploy", "--version", W4, "--yes", "--json", cfg=fresh.invoke_yaml)
    assert again.returncode == 0, again.stdout + again.stderr
    assert journal(twin_settings)["facts"]["deploy_attempt"] == 1
    assert decide(fresh)["inputs"][0]["state"] == "green"
