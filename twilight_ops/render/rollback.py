"""`inv rollback` output: the plan, each step against its budget, the follow-up issue text."""
from __future__ import annotations

from typing import Any, Sequence


def render_plan(steps: Sequence[str], console: Any) -> None:
    console.print("rollback plan (nothing is run):", markup=False)
    for n, s in enumerate(steps, 1):
        console.print(f"{n:>2}. {s}", markup=False, highlight=False)


def render(report: Any, console: Any) -> None:
    console.print(f"rolled back {report.version}: running {report.pin} — /price serves the legacy envelope", markup=False)
    total = sum(s.seconds for s in report.steps)
    console.print(f"{len(report.steps)} steps in {total:.1f} s (runbook budget 30 min):", markup=False)
    for s in report.steps:
        console.print(f"  {s.name:<11} {s.seconds:6.1f} s   budget {s.budget_min:>2} min   {s.how}", markup=False)
    if report.hermes:
        console.print(f"Hermes: {report.hermes}", markup=False)
    plan = getattr(report, "data_plan", None) or {}
    if plan:
        done = {"kept": "the warehouse was kept", "restored": "the T+00:00 snapshot was restored (the replaced file kept)"}
        console.print(f"data plan (§2.3): {plan.get('line', '')}; {done.get(plan.get('done', ''), plan.get('done', ''))}",
                      markup=False, highlight=False)
    console.print("\nfollow-up issue (copy it):\n", markup=False)
    console.print(report.follow_up, markup=False, highlight=False)
