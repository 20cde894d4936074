"""Issue 23 item 8: `inv twin.up` on a running twin starts what is down and leaves the running
release alone (so a test can restart the registry or sshd in the middle of a cutover)."""
from __future__ import annotations

import os
import signal

import pytest

from tests.conftest import TWIN_DIR, inv
from twilight_ops import facts, health
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.twin import build, ci_release, control, registry
from twilight_ops.twin.procs import pid_alive, read_pidfile, wait_until
from twilight_ops.twin.state import load_or_new

pytestmark = pytest.mark.twin

W4, PREVIOUS = build.VERSIONS[1], build.VERSIONS[0]


def backend(settings) -> tuple[str, str, str, str]:
    """(container id, version, repo digest, state) of the running backend."""
    with SSHExecutor(settings) as ex:
        lay = layout(settings, ex.home)
        (ps,) = [s for s in health.read_fact(ex, facts.COMPOSE_PS, lay) if s.service == settings.service]
        svc = health.service_of(health.read_services(ex, lay, settings.image_repo), settings.service)
    assert svc is not None
    return ps.container_id, svc.version, svc.repo_digest, svc.state


def test_twin_up_again_restarts_the_registry_and_leaves_the_running_release(twin, twin_settings):
    ci_release.ensure_published(load_or_new(TWIN_DIR), W4)
    with SSHExecutor(twin_settings) as ex:
        control.run_version(ex, twin_settings, W4)        # as after T+00:00 deploy, mid-cutover
    before = backend(twin_settings)
    assert before[1] == W4 and before[3] == "running"
    pid = read_pidfile(registry.RegistryPaths.under(TWIN_DIR).pidfile)
    assert pid is not None and registry.is_running(TWIN_DIR)
    os.kill(pid, signal.SIGKILL)                           # the twin's own registry, by its pidfile
    assert wait_until(lambda: not pid_alive(pid), 30, "the registry to exit") is not None
    assert not registry.is_running(TWIN_DIR)
    try:
        r = inv("twin.up", "--dir", str(TWIN_DIR), timeout=900)
        assert r.returncode == 0, r.stdout[-2000:] + r.stderr[-2000:]
        assert registry.is_running(TWIN_DIR)
        assert backend(twin_settings) == before, "twin.up replaced the running release"
        assert f"backend    {W4} (running) is there already: left alone" in r.stdout
    finally:
        with SSHExecutor(twin_settings) as ex:
            control.run_version(ex, twin_settings, PREVIOUS)
