"""Render §2 guard rounds: one line per round (logs, CI: round_line; a terminal: the legend and a header once,
then one fixed-width row per round), and a
tripped trigger's evidence with the exact rollback command.  Remote text (probe details,
Hermes log lines) is never markup and passes through sanitize.printable."""
from __future__ import annotations

from typing import Any

from ..guard import GuardRound, Trigger
from ..sanitize import printable

LABEL = {"price_5xx": "5xx", "close_raw_null": "close_raw", "hermes_value_error": "hermes", "w7_critical_diffs": "W7"}
STATE_TEXT = {"ok": "ok", "tripped": "TRIPPED", "unknown": "unknown", "n/a": "n/a"}
STATE_STYLE = {"ok": "green", "tripped": "bold red", "unknown": "yellow", "n/a": "dim"}


def _clock(at: str) -> str:
    return at[11:19] + "Z" if len(at) >= 19 else (at or "—")


def verdict(rnd: GuardRound) -> str:
    tripped = rnd.tripped
    return "TRIGGER: " + ", ".join(LABEL[t.key] for t in tripped) if tripped else "no trigger"


def round_line(rnd: GuardRound) -> str:
    """`guard #3 09:31:00Z · 5xx ok: 5xx 0.0% (0 of 42 calls in 1 h) · close_raw ok: … · → no trigger`."""
    parts = [f"{LABEL[t.key]} {STATE_TEXT[t.state]}: {t.summary}" for t in rnd.triggers]
    return printable(f"guard #{rnd.n} {_clock(rnd.at)} · " + " · ".join(parts) + f" → {verdict(rnd)}")


COLUMNS = (("round", 5), ("time", 9), ("5xx", 7), ("close_raw", 9), ("hermes", 7), ("W7", 3))


def legend(rnd: GuardRound) -> list[str]:
    """What each column is: the runbook §2 trigger behind each short label, one line each."""
    return ["§2 guard, one line per round; the columns are the runbook's triggers:",
            *(f"  {LABEL[t.key]:<9}  {t.title}" for t in rnd.triggers)]


def header() -> str:
    return "  ".join(f"{name:<{w}}" if i else f"{name:>{w}}" for i, (name, w) in enumerate(COLUMNS)) + "  this round"


def round_row(rnd: GuardRound) -> Any:
    """One round on a terminal: fixed-width state columns under header(), then the 5xx share (and any
    trigger's summary that is not ok), then the verdict."""
    from rich.text import Text

    (_, wr), (_, wt), *widths = COLUMNS
    row = Text(f"{'#' + str(rnd.n):>{wr}}  {_clock(rnd.at):<{wt}}")
    for t, (_, w) in zip(rnd.triggers, widths):
        row.append("  ")
        row.append(f"{STATE_TEXT[t.state]:<{w}}", style=STATE_STYLE[t.state])
    said = [t.summary for t in rnd.triggers if t.key == "price_5xx" or t.state not in ("ok", "n/a")]
    row.append("  " + printable(" · ".join(dict.fromkeys(said))) + f" → {verdict(rnd)}")
    return row


def print_round(console: Any, rnd: GuardRound, *, first: bool = True) -> None:
    """A round: on a terminal one row (the legend and header before the first), else round_line."""
    if console.is_terminal:
        if first:
            from rich.text import Text

            for line in legend(rnd):
                console.print(Text(printable(line), style="dim"), soft_wrap=True)
            console.print(Text(header(), style="bold"), soft_wrap=True)
        console.print(round_row(rnd), soft_wrap=True)
    else:
        console.print(round_line(rnd), markup=False, highlight=False)


def trigger_lines(t: Trigger) -> list[str]:
    lines = [f"TRIGGER (runbook §2): {t.title}", f"  {t.summary}", *(f"  evidence: {e}" for e in t.evidence)]
    return [printable(line) for line in lines]


def print_tripped(console: Any, rnd: GuardRound, rollback_line: str) -> None:
    """Every tripped trigger's evidence, then the exact command that rolls back."""
    for t in rnd.tripped:
        for line in trigger_lines(t):
            console.print(line, markup=False, highlight=False)
    console.print(f"rollback (runbook §2, budget 30 min): {printable(rollback_line)}", markup=False, highlight=False)
