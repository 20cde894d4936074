"""Runbook §4 known failure modes as pure checks over recorded evidence.

Evidence is plain values: the monitor's `Metrics` (one probe pass; it carries
the status / chain-length / CanonicalUnitViolation aggregates these checks
need), /price responses as `Observation`, backend log text, agent transcripts.
Each check returns a `Finding` with the runbook's exact cause and action text
(and a `detail` saying what in the evidence matched), or None.

    diagnose(evidence) -> list[Finding]   in the order of the runbook table
"""
from __future__ import annotations

import dataclasses
import re
from collections import Counter
from typing import Any, Callable, Mapping, Sequence

from .monitor.metrics import Metrics

UNIT_VIOLATION = "CanonicalUnitViolation"


@dataclasses.dataclass(frozen=True)
class Finding:
    code: str
    symptom: str
    likely_cause: str
    action: str
    detail: str = ""

    def as_dict(self) -> dict[str, str]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Observation:
    """One /price call as observed: HTTP status and the parsed JSON body (or None)."""

    ts_code: str
    status: int
    body: Mapping[str, Any] | None = None

    @property
    def market_state(self) -> str | None:
        v = (self.body or {}).get("market_state")
        return v.lower() if isinstance(v, str) else None

    def text(self) -> str:
        return repr(self.body) if self.body is not None else ""


@dataclasses.dataclass(frozen=True)
class Evidence:
    metrics: Metrics | None = None
    responses: Sequence[Observation] = ()
    backend_log: str = ""
    expected_chain: Sequence[str] = ()          # spec §6.2 chain, e.g. ("akshare-spot", "tushare-daily")
    liquid_codes: Sequence[str] = ("600519.SH",)
    agent_transcripts: Sequence[str] = ()


# The runbook §4 table, word for word (symptom, likely cause, operator action).
RUNBOOK: dict[str, tuple[str, str, str]] = {
    "close_raw_null_qfq_set": (
        "close_raw null but close_qfq populated",
        "adj_factor math returning when raw not — should not happen",
        "Pull logs, file bug; rollback if recurring",
    ),
    "freshness_stuck_zero": (
        "freshness_seconds always 0 across calls",
        "Cache not hit (TTL bug or always-CLOSING state)",
        'Check MarketState resolver: select market_state, count(*) from provider_audit_log group by market_state'
        ' — if all "closing", the trade_cal seed is stale',
    ),
    "chain_exhausted_502": (
        "HTTP 502 on liquid codes during OPEN",
        "Composer exhausted chain (akshare + tushare both failing)",
        "Check docker compose logs backend --tail=200; if upstream issue, rollback won't help"
        " — write status page note and wait",
    ),
    "canonical_unit_violation": (
        "HTTP 500 with CanonicalUnitViolation",
        "Provider returned data in wrong units (spec §1 incidents 4-5 class)",
        "Cutover is exposing a real bug — do not roll back to mask it. File issue, fix forward",
    ),
    "source_chain_len_1_always": (
        "source_chain length 1 always",
        "Composer never falls back; could be by design (chain ends on first success) — verify against spec §6.2",
        "Check spec §6.2 chain entries vs. observed; no action unless a chain entry is provably skipped",
    ),
    "hermes_value_and_close_raw": (
        "Hermes agent emits both value and close_raw",
        "Old prompt template still has value mention",
        "Search Hermes prompts for hardcoded value; update SKILL.md back-compat usage",
    ),
}


def finding(code: str, detail: str) -> Finding:
    symptom, cause, action = RUNBOOK[code]
    return Finding(code, symptom, cause, action, detail)


def _codes(responses: Sequence[Observation]) -> str:
    return ", ".join(f"{c} ×{n}" if n > 1 else c for c, n in Counter(r.ts_code for r in responses).most_common(5))


# ---------------------------------------------------------------- checks

def close_raw_null_qfq_set(responses: Sequence[Observation]) -> Finding | None:
    hits = [
        r for r in responses
        if r.status == 200 and r.body is not None and r.body.get("close_raw") is None and r.body.get("close_qfq") is not None
    ]
    if not hits:
        return None
    recurring = "recurring: roll back" if len(hits) > 1 else "seen once"
    return finding("close_raw_null_qfq_set", f"{len(hits)} of {len(responses)} responses ({_codes(hits)}); {recurring}")


def freshness_stuck_zero(responses: Sequence[Observation], metrics: Metrics | None, min_samples: int = 2) -> Finding | None:
    """freshness_seconds 0 on every call; the audit's market_state says which cause."""
    samples = [
        r.body["freshness_seconds"] for r in responses
        if r.status == 200 and r.body is not None and isinstance(r.body.get("freshness_seconds"), (int, float))
    ]
    if len(samples) < min_samples or any(s != 0 for s in samples):
        return None
    states = metrics.market_state if metrics is not None else None
    if metrics is None or states is None:
        why = "market_state not recorded (no audit or older schema): run the resolver query by hand"
    elif not metrics.total:
        why = "no audited calls in the window: run the resolver query by hand"
    elif all((s.market_state or "").lower() == "closing" for s in states):
        why = f'market_state is "closing" on all {metrics.total} audited calls: the trade_cal seed is stale'
    else:
        seen = ", ".join(f"{s.market_state} {s.n}" for s in states)
        why = f"market_state is not all closing ({seen}): cache TTL bug"
    return finding("freshness_stuck_zero", f"freshness_seconds 0 on {len(samples)} calls; {why}")


def chain_exhausted_502(responses: Sequence[Observation], metrics: Metrics | None, liquid_codes: Sequence[str]) -> Finding | None:
    liquid = set(liquid_codes)
    market_open = metrics is not None and bool(metrics.open_total)
    seen = [
        r for r in responses
        if r.status == 502 and r.ts_code in liquid and (r.market_state == "open" or (r.market_state is None and market_open))
    ]
    audited = (metrics.liquid_502_open or 0) if metrics is not None else 0
    if not seen and not audited:
        return None
    parts = []
    if seen:
        parts.append(f"{len(seen)} calls answered 502 ({_codes(seen)})")
    if audited:
        parts.append(f"{audited} audited 502s on liquid codes during OPEN")
    return finding("chain_exhausted_502", "; ".join(parts))


def canonical_unit_violation(responses: Sequence[Observation], metrics: Metrics | None, backend_log: str) -> Finding | None:
    answered_500 = [r for r in responses if r.status == 500]
    audited_500 = sum(s.n for s in (metrics.status or ()) if s.status == 500) if metrics is not None else 0
    if not answered_500 and not audited_500:
        return None
    in_log = backend_log.count(UNIT_VIOLATION)
    in_audit = metrics.unit_violation_errors if metrics is not None else 0
    in_body = sum(1 for r in answered_500 if UNIT_VIOLATION in r.text())
    if not (in_log or in_audit or in_body):
        return None
    where = [f"{n} {what}" for n, what in ((in_log, "log lines"), (in_audit, "audited errors"), (in_body, "500 bodies")) if n]
    return finding(
        "canonical_unit_violation",
        f"HTTP 500 on {len(answered_500) + audited_500} calls; {UNIT_VIOLATION} in " + ", ".join(where),
    )


def source_chain_len_1_always(metrics: Metrics | None, expected_chain: Sequence[str]) -> Finding | None:
    """Every audited call had a one-entry chain while the spec's chain is longer."""
    if metrics is None or not metrics.source_chain_len or len(expected_chain) < 2:
        return None
    if any(c.len != 1 for c in metrics.source_chain_len):
        return None
    errors_short = sum(c.n for c in (metrics.source_chain_len_errors or ()) if c.len == 1)
    expected = " → ".join(expected_chain)
    verdict = (
        f"{errors_short} failed calls stopped after one entry: a chain entry is provably skipped"
        if errors_short
        else "no failed call stopped early: consistent with ending on first success"
    )
    return finding(
        "source_chain_len_1_always",
        f"all {metrics.total} audited calls had a chain of length 1; spec chain is {expected} ({len(expected_chain)}); {verdict}",
    )


_LEGACY_VALUE = re.compile(r"`value`|\bvalue\s*[:=]|[\'\"]value[\'\"]", re.IGNORECASE)
_VALUE_PARSE_ERROR = re.compile(
    r"KeyError[:\s(]*[\'\"]?value\b|(?:no|missing|without)\s+(?:a\s+)?`?value`?\s+(?:field|key)"
    r"|(?:parse|parsing)\b[^.]*\bvalue\b|\bvalue\b[^.]*\b(?:parse|parsing) error", re.IGNORECASE)


def legacy_value_mention(answer: str) -> str | None:
    """What in one agent answer shows the old prompt template: `value` quoted beside close_raw,
    or a `value` parse error; None when neither."""
    if "close_raw" in answer:
        m = _LEGACY_VALUE.search(answer)
        if m:
            return f"quotes {m.group(0)!r} beside close_raw"
    m = _VALUE_PARSE_ERROR.search(answer)
    if m:
        return f"reports a value parse error ({m.group(0)!r})"
    return None


def value_parse_error(text: str) -> str | None:
    """The `value` parse error of runbook §2's third trigger in an agent answer or a Hermes log
    line (the matched words), or None.  Quoting `value` beside close_raw is §4's symptom, not this."""
    m = _VALUE_PARSE_ERROR.search(text)
    return m.group(0) if m else None


def hermes_value_and_close_raw(agent_transcripts: Sequence[str]) -> Finding | None:
    """The Hermes hook (agent smoke test, runbook T+00:35): the agent's answers, as recorded by
    `inv agent-smoke` in the journal.  A finding when an answer carries the old `value` beside
    the new `close_raw`, or reports a `value` parse error."""
    hits = [(i, why) for i, a in enumerate(agent_transcripts) if (why := legacy_value_mention(a))]
    if not hits:
        return None
    return finding("hermes_value_and_close_raw",
                   f"{len(hits)} of {len(agent_transcripts)} agent answers: " + "; ".join(w for _, w in hits[:3]))


def diagnose(evidence: Evidence) -> list[Finding]:
    """Every §4 symptom present in the evidence, in runbook order."""
    e = evidence
    checks: list[Callable[[], Finding | None]] = [
        lambda: close_raw_null_qfq_set(e.responses),
        lambda: freshness_stuck_zero(e.responses, e.metrics),
        lambda: chain_exhausted_502(e.responses, e.metrics, e.liquid_codes),
        lambda: canonical_unit_violation(e.responses, e.metrics, e.backend_log),
        lambda: source_chain_len_1_always(e.metrics, e.expected_chain),
        lambda: hermes_value_and_close_raw(e.agent_transcripts),
    ]
    return [f for f in (check() for check in checks) if f is not None]
