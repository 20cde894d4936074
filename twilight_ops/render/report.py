"""The cutover report: a Markdown post-mortem, a pure function of the journal (`inv cutover` writes it,
`inv report V` again), written to be pasted into docs/status/ of the project repo.

    markdown(journal, budgets, image_repo) -> str
    write(t, journal) -> Path          <state_dir>/reports/<host>/<version>.md, atomically
    show(text, console)                `inv report V` on a terminal: rich's Markdown

Sections, for the operator and whoever reads docs/status later:
  # W4 /price cutover: <before> → <version> on <host>     outcome, operator, times, elapsed, the spec link
  ## Summary            the decision, who confirmed it, what tvps runs now, whether the DuckDB was restored
  ## Timeline           each phase against the runbook's slot and budget (T+ from the cutover's start)
  ## Decision (T+00:50) the verdict and reason, every decision reached (an unconfirmed one says so), the inputs
  ## Root cause         (a red input) the failed step's cause, the backend's last error lines
  ## Rollback (§2)      (rolled back) the pin, the trigger, the data plan (§2.3), the steps' times
  ## Follow-up issue    (rolled back or fix-forward) the text to file
  ## Digests            before, published, after
  ## Checks             each phase's checks by their titles
  ## Appendix: machine details   journal step names, check ids, tvps paths
Links are relative to docs/status/ (where the report is pasted), as the close-out line's are.
Text from tvps or the API is shown with controls neutralised and table pipes escaped.
"""
from __future__ import annotations

import datetime as dt
import posixpath
from pathlib import Path
from typing import Any, Iterable, Mapping

from .. import runbook
from ..decide import cause
from ..runbook import Fact, Phases, Steps
from ..sanitize import printable

STATUS_DIR = "docs/status"                 # where the report is pasted (the close-out line's page is there too)
SPEC_PATH = "docs/planning/superpowers/specs/2026-05-11-w4-price-route-cutover.md"
DB_DONE = {"kept": "kept: the warehouse stays as it is (v0.2.0 reads it)",
           "restored": "restored: the T+00:00 snapshot is back in place",
           "refused: --keep-db": "not restored (--keep-db), although v0.2.0 cannot read the warehouse"}


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


def spec_link() -> str:
    return posixpath.relpath(SPEC_PATH, STATUS_DIR)


# ---------------------------------------------------------------- timeline


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


def _outcome(journal: Any, step: Any, name: str) -> str:
    if name != Phases.DECIDE:
        return step.outcome + (f": {cause(step.note)}" if step.note else "")
    verdict = str(step.evidence.get("verdict") or step.note or step.outcome)
    decides = [s for s in journal.steps if s.name == Steps.DECIDE]
    if step is not decides[-1]:
        return f"{verdict}, not confirmed (the operator said no, or no one was asked)"
    d = runbook.cutover_state(journal.facts).get("decision") or {}
    how = d.get("how") or ""
    return f"{verdict}, " + (f"confirmed ({how})" if how and how != "not confirmed" else "not confirmed")


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
                     _outcome(journal, step, name)])
    out = _table(("phase", "runbook", "started", "took", "budget", "outcome"), rows)
    total = _elapsed(journal)
    if total is not None:
        out += ["", f"Total: {total / 60:.1f} min of the runbook's {budgets.get('cutover', 60)} min"
                + (f" (+ {budgets.get('rollback', 30)} min rollback window)" if runbook.rolled_back(journal.facts) else "")]
    return out


def _elapsed(journal: Any) -> float | None:
    c = runbook.cutover_state(journal.facts)
    start = _t(c.get("started_at")) or _t(journal.created_at)
    return _took(start, _t(c.get("finished_at")) or _t(journal.updated_at))


# ---------------------------------------------------------------- summary, decision, root cause


def _failed_deploy(journal: Any) -> Any:
    n = runbook.deploy_attempt(journal.facts)
    parts = [s for s in journal.steps if n and s.name.startswith(Steps.deploy_parts(n)) and s.outcome == "failed"]
    return parts[-1] if parts else None


def _error_lines(logs: str) -> list[str]:
    """The backend log's last error lines: the very lines the failed health gate showed (health.cause)."""
    from ..health import cause as log_cause

    return log_cause(str(logs or ""))


def root_cause(journal: Any) -> tuple[str, list[str]]:
    """One line naming what went wrong, and the backend log lines that show it ('' when nothing was red)."""
    pre = _preflight(journal)
    fails = [c for c in (pre.evidence.get("checks", []) if pre is not None else [])
             if isinstance(c, dict) and c.get("status") in ("FAIL", "UNREACHABLE")]
    if journal.last(Steps.DECIDE) is None and fails:
        return ("preflight said NO-GO (runbook §0): " + "; ".join(
            f"{runbook.PREFLIGHT_TITLES.get(str(c.get('id')), c.get('id'))}: {c.get('reason')}" for c in fails), [])
    failed = _failed_deploy(journal)
    if failed is not None:
        part = failed.name.split(":", 1)[1]
        return (f"the deploy's {part} failed: {cause(failed.note)}",
                _error_lines(failed.evidence.get("backend_logs_tail200", "")))
    last = journal.last(Steps.DECIDE)
    inputs = (last.evidence.get("inputs") or []) if last is not None else []
    red = [i for i in inputs if isinstance(i, dict) and i.get("state") in ("red", "fix-forward")]
    if not red:
        return "", []
    smoke = journal.last(Steps.SMOKE_W4)
    logs = smoke.evidence.get("backend_logs_tail200", "") if smoke is not None else ""
    line = "; ".join(f"{i.get('title')}: {i.get('summary')}" for i in red)
    meanings = [runbook.AGENT_MEANINGS[f] for i in red for f in i.get("flags", []) if f in runbook.AGENT_MEANINGS]
    return line + (f" — {'; '.join(meanings)}" if meanings else ""), _error_lines(logs)


def _db_line(journal: Any) -> str:
    plan = journal.facts.get(Fact.DATA_PLAN) or {}
    if plan.get("done"):
        return DB_DONE.get(str(plan.get("done")), str(plan.get("done")))
    rolled = runbook.rolled_back(journal.facts) or {}
    restored = (rolled.get("evidence") or {}).get("restored_db")
    if restored:
        return DB_DONE.get(str(restored), str(restored))
    return "not touched: no rollback" if not rolled else "not restored"


def summary(journal: Any, image_repo: str) -> list[str]:
    c = runbook.cutover_state(journal.facts)
    d = c.get("decision") or {}
    last = journal.last(Steps.DECIDE)
    out: list[str] = []
    if last is None:
        out.append(f"The cutover stopped before the decision point ({cell(c.get('outcome') or 'in progress')}).")
    else:
        verdict = cell(last.evidence.get("verdict") or last.note)
        how = d.get("how") or ""
        who = (f"confirmed by {cell(d.get('confirmed_by') or 'the operator')} ({cell(how)})"
               if how and how != "not confirmed" else "not confirmed by the operator")
        out.append(f"The decision at T+00:50 was **{verdict}**, {who}.")
    rolled = runbook.rolled_back(journal.facts)
    if rolled:
        out.append(f"tvps was rolled back to `{cell(image_repo)}:{cell(rolled.get('to'))}` at {cell(rolled.get('at'))}.")
    close = runbook.closeout(journal.facts)
    if close:
        out.append(f"The close-out line was pushed to {cell(close.get('branch'))} ({cell(close.get('commit'))[:12]}).")
    out.append(f"DuckDB warehouse: {cell(_db_line(journal))}.")
    line, _ = root_cause(journal)
    if line:
        out.append(f"Root cause: {cell(line, 600)}.")
    return [" ".join(out)]


def decision(journal: Any) -> list[str]:
    last = journal.last(Steps.DECIDE)
    if last is None:
        return ["Not reached."]
    d = runbook.cutover_state(journal.facts).get("decision") or {}
    ev = last.evidence
    out = [f"**{cell(ev.get('verdict'))}** — {cell(cause(str(ev.get('reason') or '')), 1000)}", "",
           f"- confirmed by: {cell(d.get('confirmed_by') or 'nobody')} ({cell(d.get('how') or 'not confirmed')}) "
           f"at {cell(d.get('at') or '-')}"]
    earlier = [s for s in journal.steps if s.name == Steps.DECIDE][:-1]
    for s in earlier:
        out.append(f"- earlier, at {cell(s.ended_at or s.started_at)}: {cell(s.evidence.get('verdict') or s.note)}, "
                   "not confirmed (the operator said no, or no one was asked)")
    out.append("")
    out += _table(("input", "state", "journal says", "recorded"),
                  ([i.get("title"), i.get("state"),
                    str(i.get("summary")) + (f" ({i.get('run')})" if str(i.get("run") or "").startswith("not needed") else ""),
                    i.get("at") or "-"]
                   for i in ev.get("inputs", []) if isinstance(i, dict)))
    return out


def follow_up(journal: Any, image_repo: str) -> list[str]:
    """The issue to file after a rollback or a fix-forward (runbook §2.4, §4), as a fenced block."""
    c = runbook.cutover_state(journal.facts)
    rolled = runbook.rolled_back(journal.facts) or {}
    outcome = str(c.get("outcome") or "")
    if not rolled and outcome != "fix-forward":
        return []
    f = journal.facts
    line, logs = root_cause(journal)
    what = "rolled back" if rolled else "fix forward"
    text = [f"Title: W4 /price cutover {journal.version} {what} — {line or rolled.get('trigger') or outcome}"[:200], "",
            f"Root cause: {line or 'see the evidence'}",
            *([f"Trigger: {rolled.get('trigger')}", f"Rolled back at: {rolled.get('at')} to {image_repo}:{rolled.get('to')}"]
              if rolled else []),
            f"Cutover commit: {f.get(Fact.CUTOVER_COMMIT, '?')}",
            f"Pre-cutover digest (T+00:00): {f.get(Fact.PRE_DIGEST, '?')}",
            f"Deployed digest: {f.get(Fact.POST_DIGEST, '?')}",
            f"DuckDB warehouse: {_db_line(journal)}",
            *(["", "Backend log:", *(f"    {ln}" for ln in logs)] if logs else []),
            "", ("Do not retry the cutover today (runbook §2.4)." if rolled
                 else "Do not roll back to mask it (runbook §4): fix forward, W4 stays deployed.")]
    safe = [printable(t).replace("```", "'''") for t in text]
    return ["```text", *safe, "```"]


# ---------------------------------------------------------------- checks and the appendix


def _checks(journal: Any) -> list[str]:
    out: list[str] = []
    pre = _preflight(journal)
    if pre is not None:
        out += ["### §0 prerequisites (preflight)", ""]
        out += _table(("check", "status", "evidence"),
                      ([runbook.PREFLIGHT_TITLES.get(str(c.get("id")), c.get("id")), c.get("status"), c.get("reason")]
                       for c in pre.evidence.get("checks", [])))
        out.append("")
    snap = runbook.snapshot(journal.facts)
    if snap:
        out += ["### T+00:00 snapshot", "", f"- `{cell(posixpath.basename(str(snap.get('host_path') or '')))}`, "
                f"{cell(snap.get('bytes'))} bytes, tables {cell(', '.join(map(str, snap.get('tables') or [])))}",
                f"- sha256 `{cell(snap.get('sha256'))}`, taken {cell(snap.get('taken_at') or '-')}", ""]
    tag = journal.last(Steps.TAG_PUSH)
    if tag is not None:
        ev = tag.evidence
        out += ["### T+00:05 tag and publish", "", f"- commit `{cell(str(ev.get('commit') or '')[:12])}` tagged "
                f"{cell(journal.version)}; CI published `{cell(ev.get('digest'))}` after {cell(ev.get('waited_s'))} s",
                f"- CI run: {cell(ev.get('run_url'))}", ""]
    n = runbook.deploy_attempt(journal.facts)
    if n or journal.last(Steps.DEPLOY_NOOP) is not None:
        out += ["### T+00:05 deploy", ""]
        for a in range(1, n + 1):
            parts = [s for s in journal.steps if s.name.startswith(Steps.deploy_parts(a))]
            said = ", ".join(f"{s.name.split(':', 1)[1]} {s.outcome}" for s in parts) or "no step recorded"
            done = journal.last(Steps.deploy(a))
            out.append(f"- attempt {a}: {cell(said, 600)}" + ("; healthy" if done is not None and done.outcome == "ok" else ""))
        noop = journal.last(Steps.DEPLOY_NOOP)
        if noop is not None:
            out.append(f"- {cell(noop.note or 'already running healthy')}")
        out.append("")
    for name, title in ((Steps.SMOKE_W4, "T+00:15 server smoke"), (Steps.SMOKE_LEGACY, "§2.4 post-rollback smoke")):
        s = journal.last(name)
        if s is not None:
            ev = s.evidence
            flags = "; ".join(f"{f.get('message') or f.get('code')}" for f in ev.get("red_flags", []) if isinstance(f, dict))
            out += [f"### {title}", "", f"- HTTP {cell(ev.get('status'))}, envelope {cell(ev.get('envelope'))}, "
                    f"verdict **{cell(ev.get('verdict'))}**", f"- red flags: {cell(flags or 'none', 1000)}", ""]
    hv = journal.last(Steps.HERMES_VERIFY)
    if hv is not None:
        out += ["### T+00:25 Hermes skill", ""]
        out += _table(("check", "status", "evidence"),
                      ([runbook.HERMES_TITLES.get(str(c.get("id")), c.get("id")), c.get("status"), c.get("reason")]
                       for c in hv.evidence.get("checks", [])))
        out.append("")
    ag = journal.last(Steps.AGENT_SMOKE)
    if ag is not None:
        out += ["### T+00:35 agent checks", ""]
        out += _table(("check", "level", "status", "red flags", "evidence"),
                      ([runbook.AGENT_TITLES.get(str(c.get("id")), c.get("id")), c.get("level"), c.get("status"),
                        ", ".join(str(f.get("code")) for f in c.get("red_flags", [])),
                        (c.get("evidence") or {}).get("reason", "")] for c in ag.evidence.get("checks", [])))
        out.append("")
    close = journal.last(Steps.CLOSEOUT)
    if close is not None:
        ev = close.evidence
        out += ["### T+00:55 close-out", "", f"- {cell(close.outcome)}: {cell(ev.get('line') or cause(close.note), 600)}",
                f"- committed: {cell(ev.get('committed', '-'))}, pushed: {cell(ev.get('pushed', '-'))} "
                f"(branch {cell(ev.get('branch', '-'))})", ""]
    return out


def _preflight(journal: Any) -> Any:
    pre = journal.last(Steps.PREFLIGHT)
    stopped = journal.last(Steps.cutover(Phases.PREFLIGHT))
    if stopped is not None and stopped.evidence.get("checks") and (pre is None or pre.started_at < stopped.started_at):
        pre = stopped             # a NO-GO: the checks are in the cutover's step only
    return pre


def rollback(journal: Any, image_repo: str) -> list[str]:
    rb = [s for s in journal.steps if Steps.is_rollback(s.name)]
    rolled = runbook.rolled_back(journal.facts)
    plan = journal.facts.get(Fact.DATA_PLAN) or {}
    if not rb and not rolled and not plan:
        return []
    out = ["## Rollback (§2)", ""]
    if rolled:
        out += [f"- running now: `{cell(image_repo)}:{cell(rolled.get('to'))}` (since {cell(rolled.get('at'))})",
                f"- trigger: {cell(rolled.get('trigger'), 600)}"]
    out += [f"- DuckDB warehouse: {cell(_db_line(journal))}"]
    stray = rb[-1].evidence.get("left_behind") if rb else None
    if stray:            # the rolled-back release's tag, still on origin: named, never deleted for the operator
        out.append(f"- left behind: {cell(_no_local_path(str(stray)), 600)} (in the twilight-drive checkout)")
    out.append("")
    if plan:
        out += ["### §2.3 data plan", "", f"- evidence: {cell(plan.get('line'), 600)}",
                f"- done: {cell(DB_DONE.get(str(plan.get('done')), plan.get('done')))}"]
        restore = journal.facts.get(Fact.DB_RESTORE) or {}
        if plan.get("done") == "restored" and restore:
            out.append(f"- the replaced file is kept as `{cell(posixpath.basename(str(restore.get('failed') or '')))}`")
        for f in _exports(journal):
            out.append(f"- exported {cell(f.get('rows'))} rows of {cell(f.get('table'))} written since T+00:00 "
                       f"({cell(f.get('first') or '?')} … {cell(f.get('last') or '?')}) to "
                       f"`{cell(posixpath.basename(str(f.get('path') or '')))}`")
        out.append("")
    if rb:
        out += _table(("step", "seconds", "budget", "how"),
                      ([x.get("name"), x.get("seconds"), f"{x.get('budget_min')} min", x.get("how")]
                       for x in rb[-1].evidence.get("steps", [])))
        out.append("")
    return out


def _no_local_path(line: str) -> str:
    """A printed `git -C <local repo> …` command as the report shows it: no path of the operator's machine."""
    import re

    return re.sub(r"git -C ('[^']*'|\S+) ", "git ", line)


def _exports(journal: Any) -> list[dict]:
    exports = [s for s in journal.steps if s.name.endswith(":" + Steps.DB_EXPORT)]
    return [f for f in (exports[-1].evidence.get("files", []) if exports else []) if isinstance(f, dict)]


def appendix(journal: Any) -> list[str]:
    out = ["## Appendix: machine details", "",
           "For whoever digs further: the journal's step names, the checks' ids and the paths on tvps.", "",
           "### Journal steps", ""]
    keys = ("digest", "healthy_after_s", "exited", "outcome", "verdict", "to")
    out += _table(("step", "started", "outcome", "note / evidence"),
                  ([s.name, s.started_at, s.outcome,
                    cause(s.note) or ", ".join(f"{k}={v}" for k, v in s.evidence.items() if k in keys)] for s in journal.steps))
    out.append("")
    pre = _preflight(journal)
    if pre is not None:
        out += ["### Preflight check ids", ""]
        out += _table(("id", "status", "reason"),
                      ([c.get("id"), c.get("status"), c.get("reason")] for c in pre.evidence.get("checks", [])))
        out.append("")
    f = journal.facts
    snap = runbook.snapshot(f) or {}
    paths = [("snapshot on tvps", snap.get("host_path")),
             ("replaced warehouse kept on tvps", (f.get(Fact.DB_RESTORE) or {}).get("failed")
              if (f.get(Fact.DATA_PLAN) or {}).get("done") == "restored" else None),
             *(("export on tvps", x.get("path")) for x in _exports(journal)),
             ("cutover commit", f.get(Fact.CUTOVER_COMMIT))]
    known = [f"- {name}: `{cell(value)}`" for name, value in paths if value]
    return out + (["### Ids and paths", "", *known] if known else [])


def markdown(journal: Any, budgets: Mapping[str, int], image_repo: str) -> str:
    f = journal.facts
    c = runbook.cutover_state(f)
    before = f.get(Fact.PRE_VERSION) or "?"
    elapsed = _elapsed(journal)
    arrow = f"{cell(before)} → " if f.get(Fact.PRE_VERSION) else ""      # unknown before preflight's T+00:00
    lines = [f"# W4 /price cutover: {arrow}{cell(journal.version)} on {cell(journal.host)}", "",
             f"- outcome: **{cell(c.get('outcome') or 'in progress')}**",
             f"- operator: {cell(c.get('operator') or journal.operator)}",
             f"- started: {cell(c.get('started_at') or journal.created_at)}"
             + (f" (resumed {cell(', '.join(c.get('resumed', [])))})" if c.get("resumed") else "")
             + f"; finished: {cell(c.get('finished_at') or 'not yet')}",
             *([f"- elapsed: {elapsed / 60:.1f} min of the runbook's {budgets.get('cutover', 60)} min"] if elapsed else []),
             f"- runbook and spec: [W4 /price route cutover]({spec_link()})", "",
             "## Summary", ""]
    lines += summary(journal, image_repo)
    lines += ["", "## Timeline", ""]
    lines += timeline(journal, budgets)
    lines += ["", "## Decision (T+00:50)", ""]
    lines += decision(journal)
    line, logs = root_cause(journal)
    if line:
        lines += ["", "## Root cause", "", cell(line[:1].upper() + line[1:], 1000)]
        if logs:
            lines += ["", "The backend's last error lines:", "", "```text",
                      *(printable(x).replace("```", "'''") for x in logs), "```"]
    lines += [""] + rollback(journal, image_repo)
    issue = follow_up(journal, image_repo)
    if issue:
        lines += ["## Follow-up issue", "", *issue, ""]
    lines += ["## Digests", "",
              f"- before (T+00:00): `{cell(f.get(Fact.PRE_DIGEST) or '-')}` ({cell(before)})",
              f"- published: `{cell(f.get(Fact.PUBLISHED_DIGEST) or '-')}`",
              f"- after deploy: `{cell(f.get(Fact.POST_DIGEST) or '-')}`"]
    rolled = runbook.rolled_back(f)
    if rolled:
        lines.append(f"- after rollback: `{cell(image_repo)}:{cell(rolled.get('to'))}`")
    lines += ["", "## Checks", ""]
    lines += _checks(journal)
    lines += appendix(journal)
    return "\n".join(lines).rstrip() + "\n"


def report_path(t: Any, version: str) -> Path:
    from .. import validate

    return t.settings.state_dir / "reports" / t.settings.host / f"{validate.journal_version(version)}.md"


def write(t: Any, journal: Any) -> Path:
    from ..journal import atomic_write

    path = report_path(t, journal.version)
    atomic_write(path, markdown(journal, t.settings.budgets, t.settings.image_repo).encode(), mode=0o644)
    return path


def show(text: str, console: Any) -> None:
    """`inv report V` on a terminal: the Markdown rendered by rich (the file itself: --raw)."""
    from rich.markdown import Markdown

    console.print(Markdown(text, hyperlinks=False))
