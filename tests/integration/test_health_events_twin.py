"""The health wait learns of the change from docker itself (issue 22), through the twin's real
dockerd: it returns on docker's healthy event (one `compose ps`, then one blocking events round),
and polls `compose ps` while no container is listed, then follows the events.  Evidence and
ordering only: how fast it is belongs to bench/deploy_bench.py."""
from __future__ import annotations

import datetime as dt
import threading
from typing import Any, cast

import pytest

from twilight_ops import facts, health
from twilight_ops.builders import compose as compose_cmd
from twilight_ops.builders.layout import layout
from twilight_ops.remote import SSHExecutor
from twilight_ops.screen import Waiting
from twilight_ops.twin import control

pytestmark = pytest.mark.twin

PREVIOUS = "v0.2.0"


@pytest.fixture
def running(twin, twin_settings):
    """v0.2.0 running and healthy before and after each test."""
    with SSHExecutor(twin_settings) as ex:
        control.run_version(ex, twin_settings, PREVIOUS)
    yield twin
    with SSHExecutor(twin_settings) as ex:
        control.run_version(ex, twin_settings, PREVIOUS)


def container_of(ex, lay) -> str:
    (row,) = [s for s in facts.parse_compose_ps(ex.run(compose_cmd.compose_ps(lay)).stdout) if s.service == lay.service]
    return row.container_id


def healthy_events(ex, cid: str, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    """docker's own `health_status: healthy` events of the container in [since, until] (dockerd's clock)."""
    r = ex.run(["docker", "events", "--since", f"{since.timestamp():.3f}", "--until", f"{until.timestamp() + 1:.3f}",
                "--filter", f"container={cid}", "--filter", "event=health_status", "--format", "{{.TimeNano}} {{.Action}}"])
    return [dt.datetime.fromtimestamp(int(ns) / 1e9, dt.timezone.utc)
            for ns, _, action in (line.partition(" ") for line in r.stdout.splitlines()) if action == "health_status: healthy"]


def probe_ends(ex, cid: str) -> list[dt.datetime]:
    """The End of each healthcheck probe docker still keeps (its last five)."""
    import json

    doc = json.loads(ex.run(compose_cmd.docker_inspect([cid])).stdout)[0]
    return [dt.datetime.fromisoformat(e["End"][:26] + "+00:00") for e in doc["State"]["Health"]["Log"]]


def test_the_wait_returns_on_dockers_healthy_event(running, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    cid = container_of(ex, lay)
    ex.run(["docker", "restart", cid])                     # running again, its healthcheck starting
    before = dt.datetime.now(dt.timezone.utc)
    ran = ex.commands_run
    lines: list[str] = []
    waited = health.wait_healthy(ex, lay, 90.0, say=lines.append, events_bound_s=60.0)
    commands = ex.commands_run - ran
    noticed = dt.datetime.fromisoformat(waited.noticed_at)

    (event,) = healthy_events(ex, cid, before, noticed)
    assert before <= event <= noticed                       # docker said healthy, then the wait returned
    # one `compose ps` (running, health starting), then one events round that blocked (its bound is 60 s)
    # and returned on that event: no poll and no second round in between
    assert commands == 2, commands
    # it returned on the event itself, not on docker's next write (there is none: the container stays
    # healthy) nor at the 60 s bound: at most one more probe (they run 2 s apart) ended in between
    assert sum(1 for end in probe_ends(ex, cid) if event < end <= noticed) <= 1
    shown = [str(x) for x in lines if isinstance(x, Waiting) and str(x)]
    assert shown and all(x.startswith(f"waiting for {lay.service}: running, health starting … ") for x in shown), shown
    assert lines[-1] == f"{lay.service} healthy after {waited.seconds:.1f} s"


def test_with_no_container_listed_the_wait_polls_then_follows_the_events(running, ex, twin_settings):
    lay = layout(twin_settings, ex.home)
    ex.run(compose_cmd.compose(lay, "rm", "--stop", "--force", lay.service, version=PREVIOUS))   # no container: compose lists none
    lines: list[str] = []
    listed_none = threading.Event()

    def say(line: str) -> None:
        lines.append(line)
        if "not listed" in str(line):
            listed_none.set()

    out: dict[str, object] = {}

    def wait() -> None:
        with SSHExecutor(twin_settings) as mine:     # its own connection: the test's `ex` runs the compose up
            try:
                out["waited"] = health.wait_healthy(cast(Any, mine), lay, 120.0, poll_s=0.2, say=say)
            except Exception as e:        # shown by the assertion below
                out["error"] = e

    waiter = threading.Thread(target=wait)
    waiter.start()
    try:
        assert listed_none.wait(60), lines                  # the poll: nothing listed yet
        ex.run(compose_cmd.compose_up_detached(lay, PREVIOUS), timeout=300)
    finally:
        waiter.join(180)
    assert "error" not in out and isinstance(out.get("waited"), health.Waited), out
    shown = [str(x) for x in lines if str(x)]
    first_starting = next(i for i, x in enumerate(shown) if "health starting" in x or "healthy after" in x)
    assert all("not listed" in x for x in shown[:first_starting]) and first_starting >= 1, shown
    assert shown[-1].startswith(f"{lay.service} healthy after"), shown
    assert health.service_of(health.read_services(ex, lay, twin_settings.image_repo), lay.service).health == "healthy"


def unhealthy_events(ex, cid: str, since: dt.datetime, until: dt.datetime) -> list[dt.datetime]:
    r = ex.run(["docker", "events", "--since", f"{since.timestamp():.3f}", "--until", f"{until.timestamp() + 1:.3f}",
                "--filter", f"container={cid}", "--filter", "event=health_status", "--format", "{{.TimeNano}} {{.Action}}"])
    return [dt.datetime.fromtimestamp(int(ns) / 1e9, dt.timezone.utc)
            for ns, _, action in (line.partition(" ") for line in r.stdout.splitlines()) if action == "health_status: unhealthy"]


def test_dockers_unhealthy_event_stops_the_wait_with_todays_message(running, ex, twin_settings):
    """never-healthy: /healthz answers 503, so docker calls the container unhealthy after its start period
    and retries (≈ 30 s); the events round returns on that event and the wait stops at once, as the poll did."""
    from twilight_ops.twin import release_faults

    lay = layout(twin_settings, ex.home)
    cid = container_of(ex, lay)
    release_faults.apply(running, "never-healthy", PREVIOUS)
    try:
        ex.run(["docker", "restart", cid])
        before = dt.datetime.now(dt.timezone.utc)
        with pytest.raises(health.NotHealthy) as e:
            health.wait_healthy(ex, lay, 120.0)
        stopped = dt.datetime.now(dt.timezone.utc)
    finally:
        release_faults.clear(running)
        ex.run(["docker", "restart", cid])        # healthy again before the teardown's `compose up --wait`,
        health.wait_healthy(ex, lay, 120.0)       # which fails at once on a container docker still calls unhealthy
    assert e.value.message.startswith(f"{lay.service} running (health unhealthy) "), e.value.message
    assert e.value.message.endswith("s after up: it will not turn healthy"), e.value.message
    (event,) = unhealthy_events(ex, cid, before, stopped)
    assert before <= event <= stopped                           # docker said unhealthy, then the wait stopped
