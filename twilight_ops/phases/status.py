"""`inv status`: what runs on tvps now, which envelope /price serves, lock and journals."""
from __future__ import annotations

import dataclasses
from typing import Any

from .. import lock
from ..errors import BadInput
from ..health import ServiceStatus
from ..target import Target


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


def envelope_now(t: Target) -> tuple[str, str]:
    from ..api import get_price
    from ..envelope import classify_text

    try:
        token = t.token
    except BadInput as e:
        return "unavailable", e.message
    resp = get_price(t.settings, token, t.settings.smoke_code, attempts=2)
    if resp.status is None:
        return "unavailable", resp.transport_error or "transport error"
    kind = classify_text(resp.body)
    return kind, f"HTTP {resp.status} from GET /price?code={t.settings.smoke_code}"


def run(t: Target) -> StatusReport:
    services = tuple(t.services())
    kind, detail = envelope_now(t)
    return StatusReport(
        host=t.settings.host,
        services=services,
        envelope=kind,
        envelope_detail=detail,
        lock=lock.read_holder(t.ssh, t.layout),
        journals=tuple(t.journals.list_remote()),
    )
