"""The backend's state on tvps, and the health wait (runbook T+00:00 and T+00:05).

    read_services(ex, lay, image_repo) -> [ServiceStatus]   compose ps + docker inspect + image inspect
    service_of(services, name)         the one named service, or None
    is_healthy(s)                      running, Health "healthy" (an empty Health is never healthy)
    wait_healthy(ex, lay, deadline_s)  poll `compose ps` every poll_s until healthy; CheckFailed at the deadline

The wait polls `docker compose ps` alone (one round trip over the open connection,
≈ 30 ms on the twin) and reads the restart count and digest once, at the end.
"""
from __future__ import annotations

import dataclasses
import time
from typing import Callable

import tenacity

from . import facts
from .builders.layout import Layout
from .errors import CheckFailed
from .executor import Executor


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str
    health: str
    restart_count: int | None
    image: str
    version: str
    repo_digest: str


def read_fact(ex: Executor, fact: facts.Fact, *args: object):
    return fact.parse(ex.run(fact.command(*args), timeout=fact.timeout).stdout)


def read_services(ex: Executor, lay: Layout, image_repo: str) -> list[ServiceStatus]:
    ps = read_fact(ex, facts.COMPOSE_PS, lay)
    if not ps:
        return []
    ids = [s.container_id for s in ps if s.container_id]
    details = read_fact(ex, facts.CONTAINERS, ids) if ids else {}
    image_ids = sorted({d.image_id for d in details.values() if d.image_id})
    digests = read_fact(ex, facts.REPO_DIGESTS, image_ids) if image_ids else {}
    out = []
    for s in ps:
        d = facts.detail_for(details, s.container_id)
        ref = d.image_ref if d else s.image
        out.append(ServiceStatus(
            service=s.service,
            state=s.state,
            health=s.health or "-",
            restart_count=d.restart_count if d else None,
            image=ref,
            version=facts.tag_of(ref),
            repo_digest=facts.pick_digest(digests.get(d.image_id, []) if d else [], image_repo),
        ))
    return out


def service_of(services: list[ServiceStatus], name: str) -> ServiceStatus | None:
    mine = [s for s in services if s.service == name]
    return mine[0] if mine else None


def is_healthy(state: str, health: str) -> bool:
    """Running with a passing healthcheck.  No healthcheck ("" or "-") is never healthy:
    the cutover's gate is the healthcheck, and a service without one proves nothing."""
    return state == "running" and health == "healthy"


def wait_healthy(ex: Executor, lay: Layout, deadline_s: float, *, poll_s: float = 0.5,
                 say: Callable[[str], None] | None = None) -> float:
    """Poll `compose ps` until the service is running and healthy; the seconds waited."""
    started = time.monotonic()
    last: list[str] = ["not listed by compose ps"]

    def healthy() -> bool:
        ps = read_fact(ex, facts.COMPOSE_PS, lay)
        mine = [s for s in ps if s.service == lay.service]
        if not mine:
            last[0] = "not listed by compose ps"
            return False
        last[0] = f"{mine[0].state}, health {mine[0].health or 'none'} ({mine[0].status})"
        return is_healthy(mine[0].state, mine[0].health)

    def progress(_: tenacity.RetryCallState) -> None:
        if say is not None:
            say(f"waiting for {lay.service} to be healthy: {last[0]} … {time.monotonic() - started:.1f}s")

    retry = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda ok: not ok),
        stop=tenacity.stop_after_delay(deadline_s),
        wait=tenacity.wait_fixed(poll_s),
        before_sleep=progress,
        retry_error_callback=lambda _: False,
    )
    if not retry(healthy):
        raise CheckFailed(f"{lay.service} not healthy within {deadline_s:g} s: {last[0]}",
                          f"see `docker compose logs {lay.service} --tail=200` on tvps")
    return time.monotonic() - started
