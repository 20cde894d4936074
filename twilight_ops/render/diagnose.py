"""`inv diagnose` output: which §4 checks could run, what they found (pure, plus printing).

    coverage(evidence)            {check code: "checked" | "not evaluated: why"}
    outcomes(evidence, findings)  {check code: "found" | "clear" | "not evaluated: why"}
    to_json(gathered, findings)   the `inv diagnose --json` object
    render(console, gathered, findings)

The exit code comes from phases.diagnose.check(gathered, findings) and results.exit_code.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any, Sequence

from rich.console import Console
from rich.text import Text

from ..diagnose import RUNBOOK, Evidence, Finding
from ..sanitize import printable
from .monitor import read_line

if TYPE_CHECKING:     # types only: render imports no phase at run time
    from ..phases.diagnose import Gathered

HERMES = "hermes_value_and_close_raw"
AGENT_PHASE = "not evaluated: no transcripts of the agent-smoke phase in the journal yet (`inv agent-smoke`, runbook T+00:35)"


def _w4_bodies(e: Evidence) -> list[dict]:
    return [dict(r.body) for r in e.responses if r.status == 200 and r.body is not None
            and ("close_raw" in r.body or "close_qfq" in r.body)]


def coverage(e: Evidence) -> dict[str, str]:
    """Whether each §4 check had the evidence it needs (in runbook order)."""
    m = e.metrics
    w4 = _w4_bodies(e)
    fresh = [b for b in w4 if isinstance(b.get("freshness_seconds"), (int, float))]
    out: dict[str, str] = {}
    out["close_raw_null_qfq_set"] = "checked" if w4 else "not evaluated: no W4 /price body among the live calls"
    out["freshness_stuck_zero"] = (
        "checked" if len(fresh) >= 2 else "not evaluated: fewer than 2 live bodies carry freshness_seconds"
    )
    out["chain_exhausted_502"] = "checked" if (e.responses or m is not None) else "not evaluated: no live call answered and no audit"
    out["canonical_unit_violation"] = (
        "checked" if (e.responses or m is not None) else "not evaluated: no live call answered and no audit"
    )
    if m is None:
        out["source_chain_len_1_always"] = "not evaluated: audit log not read"
    elif m.source_chain_len is None:
        out["source_chain_len_1_always"] = "not evaluated: source_chain not recorded (older schema)"
    elif not m.total:
        out["source_chain_len_1_always"] = "not evaluated: no audited calls in the window"
    elif len(e.expected_chain) < 2:
        out["source_chain_len_1_always"] = "not evaluated: the configured expected_chain has one entry"
    else:
        out["source_chain_len_1_always"] = "checked"
    out[HERMES] = "checked" if e.agent_transcripts else AGENT_PHASE
    return out


def outcomes(e: Evidence, findings: Sequence[Finding]) -> dict[str, str]:
    found = {f.code for f in findings}
    return {code: "found" if code in found else ("clear" if how == "checked" else how)
            for code, how in coverage(e).items()}


def to_json(g: Gathered, findings: Sequence[Finding]) -> dict[str, Any]:
    m = g.evidence.metrics
    return {
        "window_hours": g.window_hours,
        "read_via": m.read_via if m else None,
        "copied_at": m.copied_at if m else None,
        "findings": [f.as_dict() for f in findings],
        "checks": outcomes(g.evidence, findings),
        "calls": [c.as_dict() for c in g.calls],
        "backend_log_lines": g.log_lines,
        "notes": list(g.notes),
        "verdict": "symptoms" if findings else ("incomplete" if g.incomplete or g.api_unreachable else "clear"),
    }


def render(console: Console, g: Gathered, findings: Sequence[Finding]) -> None:
    e, m = g.evidence, g.evidence.metrics
    console.print(Text(f"§4 known failure modes — audit of the last {g.window_hours:g} h, {len(g.calls)} live /price calls, "
                       f"{g.log_lines} backend log lines", style="bold"))
    console.print(Text(f"audit {read_line(m)}" if m else "audit not read", style="dim"))
    for f in findings:
        console.print(Text.assemble(("SYMPTOM ", "bold red"), (f.symptom, "bold")))
        console.print(Text(f"  seen:         {printable(f.detail)}"))
        console.print(Text(f"  likely cause: {f.likely_cause}"))
        console.print(Text(f"  action:       {f.action}"))
    states = outcomes(e, findings)
    clear = [RUNBOOK[c][0] for c, s in states.items() if s == "clear"]
    skipped = [f"{RUNBOOK[c][0]} ({s.removeprefix('not evaluated: ')})" for c, s in states.items() if s.startswith("not evaluated")]
    if clear:
        console.print(Text("clear: " + "; ".join(clear), style="green"))
    if skipped:
        console.print(Text("not evaluated: " + "; ".join(skipped), style="dim"))
    calls = " · ".join(f"{c.ts_code} {c.status if c.status is not None else 'no answer'} {c.elapsed_ms:.0f} ms" for c in g.calls)
    console.print(Text(f"live calls: {calls}", style="dim"))
    for n in g.notes:
        console.print(Text(f"note: {printable(n)}", style="dim"))
    if findings:
        count = len(findings)
        console.print(Text.assemble(("verdict: ", "bold"), (f"{count} symptom{'s' if count > 1 else ''} found", "bold red")))
    elif g.api_unreachable:
        console.print(Text.assemble(("verdict: ", "bold"), ("the API could not be reached; checks incomplete", "bold yellow")))
    elif g.incomplete:
        console.print(Text.assemble(("verdict: ", "bold"),
                                    ("no symptom in what could be read, but the audit log or backend logs were not read (see notes)",
                                     "bold yellow")))
    else:
        console.print(Text.assemble(("verdict: ", "bold"), ("no known failure mode found", "bold green")))
