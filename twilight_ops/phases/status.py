"""`inv status`: what runs on tvps now, which envelope /price serves, lock and journals."""
from __future__ import annotations

import dataclasses
from typing import Any

from .. import lock
from ..errors import BadInput, TwilightError
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
    pending: dict[str, Any] | None = None     # an unconfirmed GO / ROLLBACK: pending.Pending + "line", "command"

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


def pending_decision(t: Target) -> dict[str, Any] | None:
    """The cutover decision nobody confirmed (the cutover in progress, else the running release's
    journal): its line, red flags and the command that acts on it."""
    from .. import pending, release
    from ..runbook import next_step
    from ..clock import iso, now_utc
    from ..journal import local_dir

    versions = [v for v in (release.in_progress(local_dir(t.settings.state_dir, t.settings.host)), t.version)
                if v and v != "unknown"]
    for v in dict.fromkeys(versions):
        try:
            journal = t.journals.load(v)
        except TwilightError:           # an unreadable journal: `inv report`/`inv cutover` say what is wrong with it
            continue
        p = pending.of(v, journal.facts, journal.steps) if journal is not None else None
        if p is None:
            continue
        out = {**p.to_json(), "line": p.warning(t.settings.host, iso(now_utc()))}
        if p.verdict == pending.ROLLBACK:      # the one next-step line (runbook.next_step: the run's -f and env)
            out["command"] = next_step(t.prefix, "rollback", "--version", v, reason=p.trigger())
            out["data_plan"] = data_plan_for(t, v)     # what the rollback would do with the warehouse (§2.3)
        else:
            out["command"] = next_step(t.prefix, "cutover", "--version", v, "--resume", "--yes")
        return out
    return None


def data_plan_for(t: Target, version: str) -> str:
    """The §2.3 data plan's line for the pending rollback of `version` (read, nothing changes)."""
    from .rollback import preview_plan

    if version == t.version:
        return preview_plan(t)
    return "not read (the pending cutover is not the release tvps runs)"


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
        pending=pending_decision(t),
    )
