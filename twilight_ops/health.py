"""The backend's state on tvps, and the health wait (runbook T+00:00 and T+00:05).

    read_services(ex, lay, image_repo) -> [ServiceStatus]   compose ps + docker inspect + image inspect,
                                       one command (facts.SERVICES: compose.service_facts)
    service_of(services, name)         the one named service, or None
    is_healthy(s)                      running, Health "healthy" (an empty Health is never healthy)
    wait_healthy(ex, lay, deadline_s)  the one health wait (deploy, rollback, the twin): docker's own events
                                       (compose.health_watch), `compose ps` every poll_s as the fallback,
                                       until healthy -> Waited; NotHealthy when it restarts, exits or turns
                                       unhealthy (at once) or at the deadline
    watched(w, service, container)     what one events round saw, as the row the wait judges (pure)
    meaning(row)                       healthy / lost / starting (pure)
    lost(row)                          why a service will not turn healthy ('' while it still may; pure)
    cause(logs)                        the backend log's last error lines: why the gate failed (pure)

The wait learns of the change from docker itself (issue 22): after one `compose ps` has listed
the container with its healthcheck starting, each round is one remote command that reads the
state and blocks on `docker events --since <the container's start>` for that container's
health_status and die events, returning on the first one (≤ 2 s a round: the progress line's
pace).  From docker's healthy event to the wait returning is about half a round trip plus
a few milliseconds on tvps (bench/deploy_bench.py; docs/performance.md); the 0.5 s poll it
replaces noticed 0.395 s late (median) and ran a `compose ps` every 0.5 s.  The poll stays the
fallback: while compose lists no container, when it is gone, and for the rest of the wait once
docker events could not run.  The caller reads the restart count and digest once, at the end
(phases/rollout.py).
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import time
from typing import Callable

import tenacity

from . import facts
from .builders import compose as compose_cmd
from .builders.layout import Layout
from .clock import now_utc
from .errors import CheckFailed, RemoteCommandFailed
from .executor import Executor, render
from .facts import ServiceStatus as ServiceStatus      # defined beside its parser; health.ServiceStatus stays
from .screen import WAIT_OVER, Waiting


def read_fact(ex: Executor, fact: facts.Fact, *args: object):
    return fact.parse(ex.run(fact.command(*args), timeout=fact.timeout).stdout)


def read_services(ex: Executor, lay: Layout, image_repo: str) -> list[ServiceStatus]:
    """The running services: compose ps, docker inspect and image inspect in one command (facts.SERVICES).
    A part that fails raises as its own command would have (RemoteCommandFailed naming it, with its exit
    status and stderr); output that stopped early is a ParseError."""
    r = ex.run(facts.SERVICES.command(lay), check=False, timeout=facts.SERVICES.timeout)
    if not r.ok:
        try:
            argv = facts.failed_command(facts.parse_service_facts(r.stdout), compose_cmd.compose_ps(lay))
        except facts.ParseError:
            argv = None
        raise RemoteCommandFailed(render(argv) if argv else r.command, r.exited, r.stderr)
    got = facts.parse_service_facts(r.stdout)
    if got.failed or not got.ended:
        raise facts.ParseError("the service facts' output ended early (no end line)", "re-run; report if it persists")
    return facts.service_statuses(got, image_repo)


def service_of(services: list[ServiceStatus], name: str) -> ServiceStatus | None:
    mine = [s for s in services if s.service == name]
    return mine[0] if mine else None


def is_healthy(state: str, health: str) -> bool:
    """Running with a passing healthcheck.  No healthcheck ("" or "-") is never healthy:
    the cutover's gate is the healthcheck, and a service without one proves nothing."""
    return state == "running" and health == "healthy"


class NotHealthy(CheckFailed):
    """The service will not turn healthy: it restarts, exited, is dead or unhealthy, or the deadline passed."""


@dataclasses.dataclass(frozen=True)
class Waited:
    seconds: float       # from the first round to the round that saw it healthy (a poll or an events round)
    noticed_at: str      # when that round returned (UTC, ms): bench/deploy_bench.py compares it with docker's own time


def describe(row: facts.ComposeService | None) -> str:
    """One service's state as the wait prints it: `running, health starting`, or `not listed`."""
    return f"{row.state}, health {row.health or 'none'}" if row is not None else "not listed"


def lost(row: facts.ComposeService | None) -> str:
    """Why the service will not turn healthy ('' while it still may): the wait stops at once (pure)."""
    if row is None:
        return ""
    if row.state == "restarting":
        return "a restart loop"
    if row.state in ("exited", "dead") or row.health == "unhealthy":
        return "it will not turn healthy"
    return ""


EVENTS_BOUND_S = 2.0     # one events round blocks at most this long: the progress line's pace


def watched(w: facts.HealthWatch, service: str, container: str) -> facts.ComposeService | None:
    """What one events round saw, as the row the wait judges (is_healthy, lost, describe), or None when
    it saw nothing to judge (the container is gone, docker events could not run): the wait polls (pure).
    docker's `health_status: healthy` event is the healthy state itself."""
    if w.ended in ("gone", "events-failed") or not w.state:
        return None
    state, health = ("running", "healthy") if w.event == "health_status: healthy" else (w.state, w.health)
    return facts.ComposeService(service, container, "", state, health, "", "")


def meaning(row: facts.ComposeService | None) -> str:
    """`healthy`, `lost` (it will not turn healthy: lost() says why) or `starting` (pure)."""
    if row is not None and is_healthy(row.state, row.health):
        return "healthy"
    return "lost" if lost(row) else "starting"


@dataclasses.dataclass
class _Watch:
    container: str = ""     # the container the events rounds watch ('' until a poll listed it)
    events: bool = True     # docker events works here (False after it could not run: poll to the end)
    pause: float = 0.0      # before the next round: 0 after a round that blocked, else the poll interval


def wait_healthy(ex: Executor, lay: Layout, deadline_s: float, *, poll_s: float = 0.5,
                 say: Callable[[str], None] | None = None, events_bound_s: float = EVENTS_BOUND_S) -> Waited:
    """The one health wait: until the service is running and healthy; NotHealthy at once when it
    restarts, exits or turns unhealthy, or at the deadline.  A round is one remote command: once a
    `compose ps` has listed the container with its healthcheck starting, compose.health_watch blocks
    on docker's own events (≤ events_bound_s) and returns on the healthy/unhealthy/die event; the poll
    (`compose ps` every poll_s) is the fallback while no container is listed, when it is gone, or for
    the rest of the wait once docker events could not run.  Each round says a screen.Waiting line
    (`waiting for backend: running, health starting … 1.2s`: the one line a terminal updates in place,
    a log sees every 10 s), and Waiting("") when the wait ends, however it ends; a docker error escapes."""
    started = time.monotonic()
    seen = [describe(None)]
    watch = _Watch()

    def events_round() -> facts.ComposeService | None:
        bound = min(events_bound_s, max(0.1, deadline_s - (time.monotonic() - started)))
        r = ex.run(compose_cmd.health_watch(watch.container, bound), check=False, timeout=bound + 30)
        w = facts.parse_health_watch(r.stdout) if r.ok else facts.HealthWatch("events-failed")
        watch.events = w.ended != "events-failed"
        watch.pause = 0.0 if w.ended in ("event", "quiet") else poll_s
        return watched(w, lay.service, watch.container)

    def poll_round() -> facts.ComposeService | None:
        mine = [s for s in read_fact(ex, facts.COMPOSE_PS, lay) if s.service == lay.service]
        row = mine[0] if mine else None
        watch.container = row.container_id if row is not None else ""
        starting = row is not None and (row.state, row.health) == ("running", "starting")
        watch.pause = 0.0 if starting and watch.events else poll_s
        return row

    def healthy() -> bool:
        row = events_round() if watch.events and watch.container else None
        if row is None:
            row = poll_round()
        elapsed = time.monotonic() - started
        seen[0] = describe(row)
        if meaning(row) == "healthy":
            return True
        why = lost(row)
        if why and row is not None:
            raise NotHealthy(f"{lay.service} {row.state} (health {row.health or 'none'}) {elapsed:.1f} s after up: {why}",
                             _logs_hint(lay))
        return False

    def progress(_: tenacity.RetryCallState) -> None:
        if say is not None:
            say(Waiting(f"waiting for {lay.service}: {seen[0]} … {time.monotonic() - started:.1f}s"))

    retry = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda ok: not ok),
        stop=tenacity.stop_after_delay(deadline_s),
        wait=lambda _: watch.pause,
        before_sleep=progress,
        retry_error_callback=lambda _: False,
    )
    try:
        ok = retry(healthy)
    finally:
        if say is not None:
            say(WAIT_OVER)
    if not ok:
        raise NotHealthy(f"{lay.service} not healthy within {deadline_s:g} s ({seen[0]})", _logs_hint(lay))
    waited = Waited(time.monotonic() - started, now_utc().astimezone(dt.timezone.utc).isoformat(timespec="milliseconds"))
    if say is not None:
        say(f"{lay.service} healthy after {waited.seconds:.1f} s")
    return waited


def _logs_hint(lay: Layout) -> str:
    return f"see `docker compose logs {lay.service} --tail=200` on tvps"


_LEVELS = ("CRITICAL", "FATAL", "ERROR")


def cause(logs: str, n: int = 3) -> list[str]:
    """The last `n` distinct error lines of a service's log (`ERROR lifespan startup incomplete: …`,
    `FATAL …`, a traceback's final exception line): what an operator reads first when the gate fails.
    Compose's `backend-1  | ` prefix is dropped; [] when the log names no error (pure)."""
    found: dict[str, str] = {}        # the message (from its level on) -> its latest line: a repeat counts once
    lines = [_unprefixed(x) for x in logs.splitlines()]
    for i, line in enumerate(lines):
        text = line.strip()
        words = [w.strip(":[]") for w in text.split()[:3]]       # `ERROR …`, `<time> ERROR …`, `[ERROR] …`
        level = next((w for w in words if w in _LEVELS), "")
        if level or _exception_after_traceback(lines, i):
            key = text[text.find(level):] if level else text
            found.pop(key, None)
            found[key] = text
    return list(found.values())[-n:]


def _unprefixed(line: str) -> str:
    head, sep, rest = line.partition(" | ")
    return rest if sep and " " not in head.strip() else line


def _exception_after_traceback(lines: list[str], i: int) -> bool:
    """line i is the `SomeError: …` that ends a traceback (unindented, after an indented frame)."""
    line = lines[i]
    if not line or line[0].isspace() or i == 0 or not lines[i - 1].startswith(" "):
        return False
    name = line.split(":", 1)[0]
    return name.replace(".", "").isidentifier() and (name.endswith("Error") or name.endswith("Exception"))
