"""Issue 22 item 2: the running services read with one command (compose.service_facts) on the twin's
real dockerd give the rows the three separate reads (compose ps, docker inspect, docker image inspect)
give — healthy, stopped, no container — and the same error when compose cannot read its file."""
from __future__ import annotations

import dataclasses

import pytest

from twilight_ops import facts, health
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders.layout import layout
from twilight_ops.errors import RemoteCommandFailed
from tests.integration.test_health_events_twin import running  # noqa: F401  v0.2.0 healthy before and after each test

pytestmark = pytest.mark.twin

PREVIOUS = "v0.2.0"


def three_reads(ex, lay, repo: str) -> list[facts.ServiceStatus]:
    """The running services as three separate commands read them (before issue 22's fold)."""
    ps = health.read_fact(ex, facts.COMPOSE_PS, lay)
    ids = [s.container_id for s in ps if s.container_id]
    details = health.read_fact(ex, facts.CONTAINERS, ids) if ids else {}
    image_ids = sorted({d.image_id for d in details.values() if d.image_id})
    digests = health.read_fact(ex, facts.REPO_DIGESTS, image_ids) if image_ids else {}
    return facts.service_statuses(facts.ServiceFacts(ps, details, digests), repo)


def one_read(ex, lay, repo: str) -> tuple[list[facts.ServiceStatus], int]:
    before = ex.commands_run
    got = health.read_services(ex, lay, repo)
    return got, ex.commands_run - before


def test_healthy_is_one_command_and_the_same_rows(running, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    got, commands = one_read(ex, lay, twin_settings.image_repo)
    assert commands == 1
    assert got == three_reads(ex, lay, twin_settings.image_repo)
    svc = health.service_of(got, lay.service)
    assert svc is not None and (svc.state, svc.health, svc.version) == ("running", "healthy", PREVIOUS)
    assert svc.restart_count == 0 and svc.repo_digest.startswith(twin_settings.image_repo + "@sha256:")


def test_a_stopped_container_is_the_same_row(running, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    ex.run(compose_cmd.compose(lay, "stop", lay.service), timeout=120)
    got, _ = one_read(ex, lay, twin_settings.image_repo)
    assert got == three_reads(ex, lay, twin_settings.image_repo)
    svc = health.service_of(got, lay.service)
    assert svc is not None and svc.state == "exited" and svc.repo_digest and svc.version == PREVIOUS


def test_no_container_is_no_service_as_before(running, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    ex.run(compose_cmd.compose(lay, "rm", "-f", "-s", lay.service), timeout=120)
    got, _ = one_read(ex, lay, twin_settings.image_repo)
    assert got == three_reads(ex, lay, twin_settings.image_repo)
    assert health.service_of(got, lay.service) is None


def test_a_missing_compose_file_is_the_error_compose_ps_gave(running, ex, twin_settings):
    remote = dataclasses.replace(twin_settings.remote, compose_file="deploy/no-such-compose.yml")
    lay = layout(remote, ex.home)
    with pytest.raises(RemoteCommandFailed) as alone:
        health.read_fact(ex, facts.COMPOSE_PS, lay)
    with pytest.raises(RemoteCommandFailed) as one:
        health.read_services(ex, lay, twin_settings.image_repo)
    assert one.value.message == alone.value.message and one.value.exited == alone.value.exited
    assert "no-such-compose.yml" in one.value.message and one.value.message.startswith("on tvps `docker compose -f ")
