"""Append-only audit log on tvps: one line per action (Kamal's audit trail)."""
from __future__ import annotations

import json

from .builders.layout import Layout
from .clock import iso, now_utc
from .executor import Executor


def audit_line(operator: str, action: str, version: str | None, outcome: str, detail: str = "") -> str:
    record = {"ts": iso(now_utc()), "operator": operator, "action": action, "version": version,
              "outcome": outcome, "detail": detail}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def append(ex: Executor, lay: Layout, line: str) -> None:
    """Append one line in O_APPEND mode (never rewritten).  It rides on the next operation on tvps (the
    executor's append_soon: the journal mirror's append that ends a step carries it, so the audit log is
    never behind the mirror), or goes at the end of the task; its directory is made when missing."""
    if "\n" in line[:-1]:
        raise ValueError("an audit line is one line")
    ex.append_soon(lay.audit_log, line.encode())
