"""The block `inv cutover` ends with (issue 21 §8): outcome, elapsed against the budget, digests
before and after, the decision and who confirmed it, the report path.

    lines(report, facts, budget_min, now) -> [str]   pure: the journal's facts as they are at the end
    render(report, facts, budget_min, now, console)
"""
from __future__ import annotations

import datetime as dt
from typing import TYPE_CHECKING, Any, Mapping

from ..runbook import Fact, cutover_state, rolled_back

if TYPE_CHECKING:     # types only: render imports no phase at run time
    from ..phases.cutover import CutoverReport

OUTCOME = {"closed-out": "closed out", "rolled-back": "rolled back", "fix-forward": "fix forward (not closed out)",
           "incomplete": "incomplete", "awaiting-confirmation": "waiting for your confirmation",
           "stopped": "stopped before the decision"}


def _minutes(start: str, end: str) -> float | None:
    try:
        return (dt.datetime.fromisoformat(end) - dt.datetime.fromisoformat(start)).total_seconds() / 60
    except (TypeError, ValueError):
        return None


def lines(report: CutoverReport, facts: Mapping[str, Any], budget_min: int, now: str) -> list[str]:
    st = cutover_state(facts)
    out = [f"cutover {report.version}: {OUTCOME.get(report.outcome, report.outcome)}"]
    took = _minutes(str(st.get("started_at", "")), str(st.get("finished_at") or now))
    if took is not None:
        over = "" if took <= budget_min else f", {took - budget_min:.0f} min over"
        out.append(f"  elapsed   {int(took)} min {int(took * 60) % 60:02d} s of the {budget_min}-minute budget{over}")
    before, after = facts.get(Fact.PRE_DIGEST) or "-", facts.get(Fact.POST_DIGEST) or "-"
    back = rolled_back(facts)
    if back:
        after = f"{after}, rolled back to {back.get('to', '?')}"
    out.append(f"  before    {before}")
    out.append(f"  after     {after}")
    decision = st.get("decision") or {}
    if decision:
        who = (f"confirmed by {decision.get('confirmed_by')} ({decision.get('how')})" if decision.get("confirmed_by")
               else str(decision.get("how") or "not confirmed"))
        out.append(f"  decision  {decision.get('verdict', '?')}: {decision.get('reason', '')}; {who}")
    elif report.decision.get("stopped"):
        out.append(f"  stopped   {report.decision['stopped']}")
    out.append(f"  report    {report.report_path}")
    return out


def render(report: CutoverReport, facts: Mapping[str, Any], budget_min: int, now: str, console: Any) -> None:
    from rich.text import Text

    from ..sanitize import printable

    text = lines(report, facts, budget_min, now)
    style = "bold green" if report.outcome == "closed-out" else "bold yellow" if report.exit_code == 0 else "bold red"
    console.print(Text(text[0], style=style))
    for line in text[1:]:
        console.print(printable(line), markup=False, highlight=False)
