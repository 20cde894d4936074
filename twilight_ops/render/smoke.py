"""Render a /price smoke Verdict for the operator (rich).

Only response-derived text reaches the screen, and all of it passes
`secret.redact`; every cell is a `Text`, so body values are never read as markup.
"""
from __future__ import annotations

import json
from typing import Any, Mapping

from rich import box
from rich.console import Console
from rich.table import Table
from rich.text import Text

from ..envelope import Flag, Verdict
from ..sanitize import printable
from ..secret import redact

W4_FIELDS = (
    "ts_code", "trade_date", "close_raw", "close_qfq", "close_hfq", "open_raw", "high_raw", "low_raw",
    "volume", "amount", "adj_factor", "adj_factor_latest", "as_of", "freshness_seconds",
    "source", "source_chain", "market_state", "cite",
)
LEGACY_FIELDS = ("code", "metric", "value")
PAIRS_PER_ROW = 2
STEP_STYLE = {"continue": "bold green", "rollback": "bold red", "fix-forward": "bold yellow", "investigate": "bold yellow"}


def render(verdict: Verdict, console: Console) -> None:
    console.print(_headline(verdict))
    fields = _fields_table(verdict)
    if fields is not None:
        console.print(fields)
    if verdict.red_flags:
        console.print(_flags_table("red flags", verdict.red_flags, "red"))
    if verdict.warnings:
        console.print(_flags_table("warnings", verdict.warnings, "yellow"))
    console.print(Text(f"NEXT STEP: {verdict.next_step.upper()} — {verdict.next_action}", style=STEP_STYLE[verdict.next_step]))


def _headline(v: Verdict) -> Text:
    status = "no response" if v.status is None else f"HTTP {v.status}"
    line = Text("GET /price smoke: ")
    line.append(v.verdict.upper(), style="bold green" if v.green else "bold red")
    line.append(f" · envelope {v.envelope} (expected {v.expect}) · {status}")
    return line


def _fields_table(v: Verdict) -> Table | None:
    """The body's key fields, two per row, each value with its declared unit."""
    if v.body is None or v.envelope == "unknown":
        return None
    names = LEGACY_FIELDS if v.envelope == "legacy" else W4_FIELDS + (("metric", "value") if v.envelope == "mixed" else ())
    units = v.body.get("units")
    units = units if isinstance(units, Mapping) else {}
    cells = []
    for name in names:
        if name not in v.body:
            cells.append((Text(name), Text("absent", style="bold red")))
            continue
        value = Text(_show(v.body[name]))
        if name in units:
            value.append(f" {_show(units[name], 12)}", style="dim")
        cells.append((Text(name, style="dim"), value))
    table = Table.grid(padding=(0, 2))
    for _ in range(PAIRS_PER_ROW):
        table.add_column(no_wrap=True)
        table.add_column(overflow="fold")
    for i in range(0, len(cells), PAIRS_PER_ROW):
        row = [cell for pair in cells[i:i + PAIRS_PER_ROW] for cell in pair]
        table.add_row(*row)
    return table


def _flags_table(title: str, flags: tuple[Flag, ...], style: str) -> Table:
    table = Table(title=title, title_justify="left", title_style=f"bold {style}", box=box.SIMPLE,
                  show_edge=False, pad_edge=False, padding=(0, 1))
    table.add_column("code", style=style, no_wrap=True)
    table.add_column("at", no_wrap=True)
    table.add_column("seen", overflow="fold")
    table.add_column("means", overflow="fold")
    for f in flags:
        at = "-" if f.pointer is None else (f.pointer or "/")
        table.add_row(Text(f.code), Text(printable(redact(at))), Text(printable(redact(f.detail))), Text(f.meaning))
    return table


def _show(value: Any, limit: int = 60) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False, default=str)
    text = printable(redact(" ".join(text.split())))   # no ESC/C1 from the body reaches the terminal
    return text if len(text) <= limit else text[: limit - 1] + "…"
