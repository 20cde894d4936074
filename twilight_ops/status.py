"""`inv status`: what runs on tvps now, which envelope /price serves, lock and journals."""
from __future__ import annotations

import dataclasses
from typing import Any

from . import commands, facts, lock
from .api import get_price
from .commands import Layout
from .config import Settings
from .journal import JournalStore
from .remote import SSHExecutor


@dataclasses.dataclass(frozen=True)
class ServiceStatus:
    service: str
    state: str
    health: str
    restart_count: int | None
    image: str
    version: str
    repo_digest: str


@dataclasses.dataclass(frozen=True)
class StatusReport:
    host: str
    services: tuple[ServiceStatus, ...]
    envelope: str             # w4 | legacy | mixed | unknown | unavailable
    envelope_detail: str
    lock: lock.Holder | None
    journals: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def services(ex: SSHExecutor, lay: Layout, image_repo: str) -> list[ServiceStatus]:
    ps = facts.parse_compose_ps(ex.run(commands.compose_ps(lay)).stdout)
    if not ps:
        return []
    ids = [s.container_id for s in ps if s.container_id]
    details = facts.parse_container_inspect(ex.run(commands.docker_inspect(ids)).stdout) if ids else {}
    image_ids = sorted({d.image_id for d in details.values() if d.image_id})
    digests = facts.parse_repo_digests(ex.run(commands.docker_image_inspect(image_ids)).stdout) if image_ids else {}
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


def envelope_now(ex: SSHExecutor, lay: Layout, settings: Settings) -> tuple[str, str]:
    from .envelope import classify_text

    from .errors import BadInput

    try:
        token = ex.read_secret(lay.token_file)
    except BadInput as e:
        return "unavailable", e.message
    resp = get_price(settings, token, settings.smoke_code, attempts=2)
    if resp.status is None:
        return "unavailable", resp.transport_error or "transport error"
    kind = classify_text(resp.body)
    return kind, f"HTTP {resp.status} from GET /price?code={settings.smoke_code}"


def collect(ex: SSHExecutor, settings: Settings) -> StatusReport:
    lay = commands.layout(settings, ex.home)
    svcs = services(ex, lay, settings.image_repo)
    kind, detail = envelope_now(ex, lay, settings)
    store = JournalStore(settings.state_dir, settings.host, lay, ex)
    return StatusReport(
        host=settings.host,
        services=tuple(svcs),
        envelope=kind,
        envelope_detail=detail,
        lock=lock.read_holder(ex, lay),
        journals=tuple(store.list_remote()),
    )


def render(report: StatusReport, console: Any) -> None:
    from rich.table import Table

    table = Table(title=f"compose services on {report.host}", title_justify="left")
    for col in ("service", "state", "health", "restarts", "version"):
        table.add_column(col)
    table.add_column("repo digest", overflow="fold")
    for s in report.services:
        table.add_row(s.service, s.state, s.health, "?" if s.restart_count is None else str(s.restart_count),
                      s.version or s.image, s.repo_digest or "-")
    if not report.services:
        table.add_row("(none)", "-", "-", "-", "-", "-")
    console.print(table)
    from rich.markup import escape

    from .sanitize import printable

    console.print(f"/price envelope: [bold]{escape(report.envelope)}[/] ({escape(printable(report.envelope_detail))})")
    console.print(f"deploy lock: {report.lock.describe() if report.lock else 'free'}", markup=False)
    console.print(f"journals on tvps: {', '.join(report.journals) if report.journals else 'none'}", markup=False)
