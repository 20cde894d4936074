"""A table of CheckResults (preflight rows, agent-smoke checks): one row per check."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

from ..results import CheckResult, Status
from ..sanitize import printable

STYLE = {Status.PASS: "bold green", Status.FAIL: "bold red", Status.SKIP: "dim", Status.UNREACHABLE: "bold yellow"}


def table(title: str, rows: Sequence[CheckResult], titles: Mapping[str, str]) -> Any:
    """check · status · evidence · fix (the fix column only when a row that is not PASS has one)."""
    from rich.text import Text

    from ..screen import Column
    from ..screen import table as screen_table

    cols = [Column("check", max_width=24), Column("status", no_wrap=True), Column("evidence"), Column("fix", max_width=30)]
    cells = [[Text(printable(titles.get(r.id, r.id))), Text(r.status.value, style=STYLE[r.status]), Text(printable(r.reason)),
              Text(printable(r.next_step) if r.status is not Status.PASS else "")] for r in rows]
    return screen_table(Text(printable(title)), cols, cells, show_lines=False)
