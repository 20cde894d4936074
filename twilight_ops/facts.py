"""Facts: a command plus a parser (pyinfra's shape).  Parsers take the raw text of real
output (tests: tests/data/captured).  A phase asks the target for a fact:

    target.fact(facts.COMPOSE_PS, target.layout)   -> list[ComposeService]

The running services with restart count and repo digest are one command that prints three
docker outputs (compose.service_facts): parse_service_facts splits it, service_statuses joins
them into ServiceStatus rows (pure); health.read_services runs it, and holds the health wait.
"""
from __future__ import annotations

import dataclasses
import json
from typing import Any, Callable, Generic, TypeVar

from .builders import compose as compose_cmd
from .errors import TwilightError

T = TypeVar("T")


@dataclasses.dataclass(frozen=True)
class Fact(Generic[T]):
    name: str
    command: Callable[..., list[str]]   # a builder: its arguments come from the caller
    parse: Callable[[str], T]           # the command's stdout -> a value
    timeout: float = 60.0


class ParseError(TwilightError):
    exit_code = 1


@dataclasses.dataclass(frozen=True)
class ComposeService:
    service: str
    container_id: str
    name: str
    state: str        # running, exited, restarting, …
    health: str       # healthy, unhealthy, starting, "" (no healthcheck)
    status: str       # "Up 3 minutes (healthy)"
    image: str        # image reference from the compose file


@dataclasses.dataclass(frozen=True)
class ContainerDetail:
    container_id: str
    restart_count: int
    image_id: str     # sha256:… config id
    image_ref: str    # Config.Image, e.g. repo:tag
    started_at: str


def _json_docs(text: str) -> list[dict[str, Any]]:
    """docker compose v2 prints NDJSON in recent releases, a JSON array in older ones."""
    text = text.strip()
    if not text:
        return []
    if text.startswith("["):
        data = json.loads(text)
        if not isinstance(data, list):
            raise ValueError("expected a JSON array")
        return data
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def parse_compose_ps(text: str) -> list[ComposeService]:
    try:
        docs = _json_docs(text)
        return [
            ComposeService(
                service=str(d.get("Service", "")),
                container_id=str(d.get("ID", "")),
                name=str(d.get("Name", "")),
                state=str(d.get("State", "")),
                health=str(d.get("Health", "") or ""),
                status=str(d.get("Status", "")),
                image=str(d.get("Image", "")),
            )
            for d in docs
        ]
    except (ValueError, AttributeError, TypeError) as e:
        raise ParseError(f"cannot parse `docker compose ps --format json` output: {e}", "check `docker compose version` on tvps (v2 needed)") from None


def parse_container_inspect(text: str) -> dict[str, ContainerDetail]:
    try:
        out: dict[str, ContainerDetail] = {}
        for d in json.loads(text):
            cid = str(d["Id"])
            out[cid] = ContainerDetail(
                container_id=cid,
                restart_count=int(d.get("RestartCount", 0)),
                image_id=str(d.get("Image", "")),
                image_ref=str((d.get("Config") or {}).get("Image", "")),
                started_at=str((d.get("State") or {}).get("StartedAt", "")),
            )
        return out
    except (ValueError, KeyError, TypeError) as e:
        raise ParseError(f"cannot parse `docker inspect` output: {e}", "re-run; report if it persists") from None


def parse_repo_digests(text: str) -> dict[str, list[str]]:
    """image id → its pullable repo digests (repo@sha256:…)."""
    try:
        return {str(d["Id"]): [str(x) for x in (d.get("RepoDigests") or [])] for d in json.loads(text)}
    except (ValueError, KeyError, TypeError) as e:
        raise ParseError(f"cannot parse `docker image inspect` output: {e}", "re-run; report if it persists") from None


def parse_health_log(text: str) -> list[str]:
    """`docker inspect` of one container → its healthcheck log, oldest first, one line per probe: its
    start, exit code and the last line of its output (a traceback's exception line, not its first
    300 characters), cut at a space when longer than 300."""
    try:
        docs = json.loads(text)
        health = ((docs[0].get("State") or {}).get("Health") or {}) if docs else {}
        out = []
        for entry in health.get("Log") or []:
            output = _last_line(str(entry.get("Output", "")))
            out.append(f"{entry.get('Start', '?')[:19]} exit {entry.get('ExitCode', '?')}: {output}")
        return out
    except (ValueError, TypeError, AttributeError, IndexError) as e:
        raise ParseError(f"cannot parse `docker inspect` output: {e}", "re-run; report if it persists") from None


def _last_line(text: str, limit: int = 300) -> str:
    lines = [" ".join(x.split()) for x in text.splitlines() if x.strip()]
    last = lines[-1] if lines else ""
    return last if len(last) <= limit else last[:limit].rsplit(" ", 1)[0] + " …"


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str
    health: str
    restart_count: int | None
    image: str
    version: str
    repo_digest: str


MARK = "::twilight-ops "        # compose.SERVICE_FACTS' marker lines (no JSON line starts so)
PARTS = ("ps", "inspect", "images")


@dataclasses.dataclass(frozen=True)
class ServiceFacts:
    """What one compose.service_facts command printed: compose ps, the containers' and images' inspect."""
    ps: list[ComposeService]
    details: dict[str, ContainerDetail]
    digests: dict[str, list[str]]
    failed: str = ""          # the part that failed (ps, inspect, images); '' when none did
    ended: bool = True        # the `end` line came (False: the output stopped early)

    @property
    def container_ids(self) -> list[str]:
        """The ids `docker inspect` is given: compose's, in its order."""
        return [s.container_id for s in self.ps if s.container_id]

    @property
    def image_ids(self) -> list[str]:
        return sorted({d.image_id for d in self.details.values() if d.image_id})


def split_sections(text: str) -> tuple[dict[str, str], str, bool]:
    """compose.SERVICE_FACTS' output → ({part: its text}, the failed part or '', the end line came)."""
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    failed, ended = "", False
    for line in text.splitlines():
        if line.startswith(MARK):
            word, _, rest = line[len(MARK):].strip().partition(" ")
            if word in PARTS:
                current = sections.setdefault(word, [])
            elif word == "failed":
                failed, current = rest.strip() or "?", None
            elif word == "end":
                ended, current = True, None
            else:
                raise ParseError(f"cannot parse the service facts' output: unknown part {word!r}",
                                 "re-run; report if it persists")
            continue
        if current is not None:
            current.append(line)
    return {k: "\n".join(v) for k, v in sections.items()}, failed, ended


def parse_service_facts(text: str) -> ServiceFacts:
    """compose.SERVICE_FACTS' output, each part by its own parser (the same as the three commands')."""
    sections, failed, ended = split_sections(text)
    ps = parse_compose_ps(sections.get("ps", ""))
    details = parse_container_inspect(sections["inspect"]) if "inspect" in sections else {}
    digests = parse_repo_digests(sections["images"]) if "images" in sections else {}
    return ServiceFacts(ps, details, digests, failed, ended)


def service_statuses(f: ServiceFacts, image_repo: str) -> list[ServiceStatus]:
    """The running services: compose's rows with each container's restart count and image, and the
    image's repo digest in `image_repo` (pure)."""
    out = []
    for s in f.ps:
        d = detail_for(f.details, s.container_id)
        ref = d.image_ref if d else s.image
        out.append(ServiceStatus(
            service=s.service,
            state=s.state,
            health=s.health or "-",
            restart_count=d.restart_count if d else None,
            image=ref,
            version=tag_of(ref),
            repo_digest=pick_digest(f.digests.get(d.image_id, []) if d else [], image_repo),
        ))
    return out


def failed_command(f: ServiceFacts, compose_ps_argv: list[str]) -> list[str] | None:
    """The command of the part that failed, as the three separate reads ran it (None: not known)."""
    if f.failed == "ps":
        return compose_ps_argv
    if f.failed == "inspect":
        return compose_cmd.docker_inspect(f.container_ids)
    if f.failed == "images":
        return compose_cmd.docker_image_inspect(f.image_ids)
    return None


def detail_for(details: dict[str, ContainerDetail], short_id: str) -> ContainerDetail | None:
    for cid, d in details.items():
        if cid.startswith(short_id):
            return d
    return None


def tag_of(image_ref: str) -> str:
    """`repo:tag` or `repo:tag@sha256:…` → tag ('' when pinned by digest only)."""
    ref = image_ref.split("@", 1)[0]
    last = ref.rsplit("/", 1)[-1]
    return last.split(":", 1)[1] if ":" in last else ""


def pick_digest(digests: list[str], repo: str) -> str:
    """The repo@sha256 digest that belongs to `repo` (or the first one)."""
    for d in digests:
        if d.split("@", 1)[0] == repo:
            return d
    return digests[0] if digests else ""


@dataclasses.dataclass(frozen=True)
class HealthWatch:
    """What one compose.health_watch command saw (parse_health_watch)."""
    ended: str        # "state" (the state alone decided), "event", "quiet" (the bound passed),
                      # "gone" (no such container), "events-failed" (docker events could not run)
    state: str = ""   # the container's last state read: running, exited, restarting, created, …
    health: str = ""  # healthy, unhealthy, starting, "" (no healthcheck)
    event: str = ""   # docker's Action: "health_status: healthy", "die", … ("" when none)
    event_ns: int = 0  # the event's time on docker's clock (ns since the epoch)


WATCH_ENDS = ("quiet", "gone", "events-failed")


def parse_health_watch(text: str) -> HealthWatch:
    """compose.HEALTH_WATCH's lines → HealthWatch.  `state S H` (the last one counts), `event NS ACTION`,
    then `quiet`, `gone` or `events-failed RC` when it ended so; an event or a state alone is how it
    ended otherwise.  Output it cannot read is `events-failed`: the wait polls instead."""
    state = health = event = ""
    event_ns = 0
    ended = ""
    seen_state = False
    for line in text.splitlines():
        word, _, rest = line.strip().partition(" ")
        if word == "state":
            state, _, health = rest.partition(" ")
            seen_state = True
        elif word == "event":
            ns, _, action = rest.partition(" ")
            if not ns.isdigit() or not action:
                return HealthWatch("events-failed")
            event, event_ns = action.strip(), int(ns)
        elif word in WATCH_ENDS:
            ended = word
        elif word:
            return HealthWatch("events-failed")
    if not ended:
        ended = "event" if event else "state" if seen_state else "events-failed"
    return HealthWatch(ended, state.strip(), health.strip(), event, event_ns)


COMPOSE_PS: Fact[list[ComposeService]] = Fact("compose services", compose_cmd.compose_ps, parse_compose_ps)
CONTAINERS: Fact[dict[str, ContainerDetail]] = Fact("container details", compose_cmd.docker_inspect, parse_container_inspect)
REPO_DIGESTS: Fact[dict[str, list[str]]] = Fact("image repo digests", compose_cmd.docker_image_inspect, parse_repo_digests)
SERVICES: Fact[ServiceFacts] = Fact("running services", compose_cmd.service_facts, parse_service_facts,
                                   timeout=180.0)     # the three reads' 60 s each
HEALTH_LOG: Fact[list[str]] = Fact("healthcheck log", compose_cmd.docker_inspect, parse_health_log)
