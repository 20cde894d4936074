"""The cutover report: Markdown, a pure function of the journal (`inv cutover` writes it, `inv report V` again).

    markdown(journal, budgets, image_repo) -> str
    write(t, journal) -> Path          <state_dir>/reports/<host>/<version>.md, atomically

Sections: the timeline per phase against the runbook's budgets (T+ from the cutover's start),
the decision and who confirmed it, the digests before and after, and every check's evidence.
Text from tvps or the API is shown with controls neutralised and table pipes escaped.
"""
from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import runbook
from ..runbook import Fact, Phases, Steps
from ..sanitize import printable


def cell(value: Any, limit: int = 300) -> str:
    text = printable(str(value if value is not None else "")).replace("\n", " ").replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _t(value: str | None) -> dt.datetime | None:
    try:
        return dt.datetime.fromisoformat(str(value)) if value else None
    except ValueError:
        return None


def _tplus(start: dt.datetime | None, at: dt.datetime | None) -> str:
    if start is None or at is None:
        return "-"
    return runbook.tplus((at - start).total_seconds() // 60)


def _took(a: dt.datetime | None, b: dt.datetime | None) -> float | None:
    return (b - a).total_seconds() if a and b else None


def _table(head: Iterable[str], rows: Iterable[Iterable[Any]]) -> list[str]:
    head = list(head)
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    out += ["| " + " | ".join(cell(c) for c in r) + " |" for r in rows]
    return out


def timeline_name(step_name: str) -> str | None:
    """The timeline row a journal step is: the cutover's phases, the decision, a rollback, the close-out."""
    phase = Steps.cutover_phase(step_name)
    if phase is not None:
        return phase
    if step_name == Steps.DECIDE:
        return Phases.DECIDE
    if step_name == Steps.CLOSEOUT:
        return Phases.CLOSEOUT
    if Steps.is_rollback(step_name):
        return Phases.ROLLBACK
    return None


def timeline(journal: Any, budgets: Mapping[str, int]) -> list[str]:
    facts = runbook.cutover_state(journal.facts)
    start = _t(facts.get("started_at")) or _t(journal.created_at)
    rows = []
    for step in journal.steps:
        name = timeline_name(step.name)
        if name is None:
            continue
        phase = runbook.phase(name)
        at, key = (phase.at, phase.budget) if phase is not None else (None, None)
        first = next((x for x in journal.steps if x.name.startswith(step.name + ":")), step)   # rollback#N:pin …
        a, b = _t(first.started_at), _t(step.ended_at)
        took = _took(a, b)
        budget = budgets.get(key) if key else None
        over = " (over budget)" if took is not None and budget and took > budget * 60 else ""
        rows.append([name, f"T+00:{at:02d}" if at is not None else "-", _tplus(start, a),
                     f"{took:.1f} s{over}" if took is not None else "(running)", f"{budget} min" if budget else "-",
                     step.outcome + (f": {step.note}" if step.note else "")])
    total = _took(start, _t(facts.get("finished_at")) or _t(journal.updated_at))
    out = _table(("phase", "runbook", "started", "took", "budget", "outcome"), rows)
    if total is not None:
        out.append("")
        out.append(f"Total: {total / 60:.1f} min of the runbook's {budgets.get('cutover', 60)} min"
                   + (f" (+ {budgets.get('rollback', 30)} min rollback window)" if runbook.rolled_back(journal.facts) else ""))
    return out


def _evidence(journal: Any) -> list[str]:
    out: list[str] = []
    pre = journal.last(Steps.PREFLIGHT)
    stopped = journal.last(Steps.cutover(Phases.PREFLIGHT))
    if stopped is not None and stopped.evidence.get("checks") and (pre is None or pre.started_at < stopped.started_at):
        pre = stopped             # a NO-GO: the checks are in the cutover's step only
    if pre is not None:
        out += ["### §0 prerequisites (preflight)", ""]
        out += _table(("check", "status", "evidence"),
                      ([c.get("id"), c.get("status"), c.get("reason")] for c in pre.evidence.get("checks", [])))
        out.append("")
    snap = runbook.snapshot(journal.facts)
    if snap:
        out += ["### T+00:00 snapshot", "", f"- file: `{cell(snap.get('host_path'))}`",
                f"- sha256: `{cell(snap.get('sha256'))}`", f"- bytes: {cell(snap.get('bytes'))}, tables: "
                f"{cell(', '.join(map(str, snap.get('tables') or [])))}", ""]
    tag = journal.last(Steps.TAG_PUSH)
    if tag is not None:
        ev = tag.evidence
        out += ["### T+00:05 tag and publish", "", f"- commit: `{cell(ev.get('commit'))}`, tag {cell(ev.get('tagged'))}, "
                f"push {cell(ev.get('pushed'))}", f"- CI run: {cell(ev.get('run_url'))}",
                f"- published: `{cell(ev.get('digest'))}` after {cell(ev.get('waited_s'))} s", ""]
    deploys = [s for s in journal.steps if Steps.is_deploy(s.name)]
    if deploys:
        out += ["### T+00:05 deploy", ""]
        out += _table(("step", "outcome", "note / evidence"),
                      ([s.name, s.outcome, s.note or ", ".join(f"{k}={v}" for k, v in s.evidence.items()
                                                               if k in ("digest", "healthy_after_s", "exited", "outcome"))]
                       for s in deploys))
        out.append("")
    for name, title in ((Steps.SMOKE_W4, "T+00:15 server smoke"), (Steps.SMOKE_LEGACY, "§2.4 post-rollback smoke")):
        s = journal.last(name)
        if s is not None:
            ev = s.evidence
            flags = "; ".join(f"{f.get('code')}: {f.get('message')}" for f in ev.get("red_flags", []))
            out += [f"### {title}", "", f"- {cell(ev.get('code'))}: HTTP {cell(ev.get('status'))}, envelope "
                    f"{cell(ev.get('envelope'))}, verdict **{cell(ev.get('verdict'))}**",
                    f"- red flags: {cell(flags or 'none', 1000)}", ""]
    hv = journal.last(Steps.HERMES_VERIFY)
    if hv is not None:
        out += ["### T+00:25 Hermes skill", ""]
        out += _table(("check", "status", "evidence"),
                      ([c.get("id"), c.get("status"), c.get("reason")] for c in hv.evidence.get("checks", [])))
        out.append("")
    ag = journal.last(Steps.AGENT_SMOKE)
    if ag is not None:
        out += ["### T+00:35 agent checks", ""]
        out += _table(("check", "level", "status", "red flags", "evidence"),
                      ([c.get("id"), c.get("level"), c.get("status"),
                        ", ".join(str(f.get("code")) for f in c.get("red_flags", [])),
                        (c.get("evidence") or {}).get("reason", "")] for c in ag.evidence.get("checks", [])))
        out.append("")
    rb = [s for s in journal.steps if Steps.is_rollback(s.name)]
    if rb:
        ev = rb[-1].evidence
        out += ["### §2 rollback", ""]
        out += _table(("step", "seconds", "budget", "how"),
                      ([x.get("name"), x.get("seconds"), f"{x.get('budget_min')} min", x.get("how")] for x in ev.get("steps", [])))
        out.append("")
    close = journal.last(Steps.CLOSEOUT)
    if close is not None:
        out += ["### T+00:55 close-out", "", f"- {cell(close.outcome)}: {cell(close.note or json.dumps(close.evidence, default=str), 600)}", ""]
    return out


def markdown(journal: Any, budgets: Mapping[str, int], image_repo: str) -> str:
    f = journal.facts
    c = runbook.cutover_state(f)
    d = c.get("decision") or {}
    last_decide = journal.last(Steps.DECIDE)
    rolled = runbook.rolled_back(f) or {}
    lines = [f"# W4 /price cutover report: {journal.version} on {journal.host}", "",
             f"- operator: {cell(c.get('operator') or journal.operator)}",
             f"- started: {cell(c.get('started_at') or journal.created_at)}"
             + (f", resumed: {cell(', '.join(c.get('resumed', [])))}" if c.get("resumed") else ""),
             f"- finished: {cell(c.get('finished_at') or 'not yet')}; outcome: **{cell(c.get('outcome') or 'in progress')}**",
             "", "## Timeline", ""]
    lines += timeline(journal, budgets)
    lines += ["", "## Decision (T+00:50)", ""]
    if last_decide is not None:
        ev = last_decide.evidence
        lines += [f"**{cell(ev.get('verdict'))}** — {cell(ev.get('reason'), 1000)}", "",
                  f"- confirmed by: {cell(d.get('confirmed_by') or 'nobody')} ({cell(d.get('how') or 'not confirmed')}) "
                  f"at {cell(d.get('at') or '-')}", f"- next step then: {cell(ev.get('next_step'), 600)}", ""]
        lines += _table(("input", "state", "journal says", "recorded"),
                        ([i.get("title"), i.get("state"), i.get("summary"), i.get("at") or "-"] for i in ev.get("inputs", [])))
    else:
        lines.append("not reached")
    lines += ["", "## Digests", "",
              f"- before (T+00:00): `{cell(f.get(Fact.PRE_DIGEST) or '-')}` ({cell(f.get(Fact.PRE_VERSION) or '?')})",
              f"- published: `{cell(f.get(Fact.PUBLISHED_DIGEST) or '-')}`",
              f"- after deploy: `{cell(f.get(Fact.POST_DIGEST) or '-')}`"]
    if rolled:
        lines.append(f"- after rollback ({cell(rolled.get('at'))}): `{cell(image_repo)}:{cell(rolled.get('to'))}` — "
                     f"trigger: {cell(rolled.get('trigger'))}")
    lines += ["", "## Evidence", ""]
    lines += _evidence(journal)
    return "\n".join(lines).rstrip() + "\n"


def report_path(t: Any, version: str) -> Path:
    from .. import validate

    return t.settings.state_dir / "reports" / t.settings.host / f"{validate.journal_version(version)}.md"


def write(t: Any, journal: Any) -> Path:
    from ..journal import atomic_write

    path = report_path(t, journal.version)
    atomic_write(path, markdown(journal, t.settings.budgets, t.settings.image_repo).encode(), mode=0o644)
    return path
