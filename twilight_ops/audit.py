"""Append-only audit log on tvps: one line per action (Kamal's audit trail)."""
from __future__ import annotations

import json

from .builders import files
from .builders.layout import Layout
from .clock import iso, now_utc
from .errors import Unreachable
from .executor import Executor


def audit_line(operator: str, action: str, version: str | None, outcome: str, detail: str = "") -> str:
    record = {"ts": iso(now_utc()), "operator": operator, "action": action, "version": version,
              "outcome": outcome, "detail": detail}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def append(ex: Executor, lay: Layout, line: str) -> None:
    """Append one line in O_APPEND mode (one `cat >>` command on tvps, the line on stdin): never rewritten."""
    if "\n" in line[:-1]:
        raise ValueError("an audit line is one line")
    try:
        ex.append_file(lay.audit_log, line.encode())
    except FileNotFoundError:
        ex.run(files.mkdir_p(lay.cutover_dir))
        try:
            ex.append_file(lay.audit_log, line.encode())
        except OSError as e:
            raise Unreachable(f"cannot append to {lay.audit_log}: {e}", "check the cutover dir on tvps") from None
    except OSError as e:
        raise Unreachable(f"cannot append to {lay.audit_log}: {e}", "check the cutover dir on tvps") from None
