"""Append-only audit log on tvps: one line per action (Kamal's audit trail)."""
from __future__ import annotations

import json

from .clock import iso, now_utc
from .commands import Layout
from .errors import Unreachable
from .remote import SSHExecutor


def audit_line(operator: str, action: str, version: str | None, outcome: str, detail: str = "") -> str:
    record = {"ts": iso(now_utc()), "operator": operator, "action": action, "version": version,
              "outcome": outcome, "detail": detail}
    return json.dumps(record, ensure_ascii=False, separators=(",", ":")) + "\n"


def append(ex: SSHExecutor, lay: Layout, line: str) -> None:
    """Append one line over sftp in O_APPEND mode: no shell, never rewritten."""
    if "\n" in line[:-1]:
        raise ValueError("an audit line is one line")
    sftp = ex.sftp()
    try:
        with sftp.open(lay.audit_log, "ab") as fh:
            fh.write(line.encode())
    except FileNotFoundError:
        ex.run(["mkdir", "-p", "--", lay.cutover_dir])
        try:
            with sftp.open(lay.audit_log, "ab") as fh:
                fh.write(line.encode())
        except OSError as e:
            raise Unreachable(f"cannot append to {lay.audit_log}: {e}", "check the cutover dir on tvps") from None
    except OSError as e:
        raise Unreachable(f"cannot append to {lay.audit_log}: {e}", "check the cutover dir on tvps") from None
