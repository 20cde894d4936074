"""A decision the operator has not confirmed yet (pure): what `inv cutover` says in red when the
answer is "no", and what `inv status` shows until someone acts on it.

    of(facts, steps) -> Pending | None
    live_for(deployed_at, now) -> "42 min"
    Pending.warning(host, now) -> the red line

A ROLLBACK that was not confirmed leaves the broken release serving: the line says so, with the
time it has been live, and the red flags the decision read.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
from typing import Any, Iterable

from .runbook import Fact, Steps, cutover_state

GO, ROLLBACK = "GO", "ROLLBACK"


@dataclasses.dataclass(frozen=True)
class Pending:
    version: str
    verdict: str                 # GO | ROLLBACK
    reason: str
    decided_at: str
    red_flags: tuple[str, ...]   # "smoke: close_raw_null" …
    deployed_at: str             # when the release went live ("" when not known)

    def trigger(self) -> str:
        return "; ".join(self.red_flags)[:200] or self.reason[:200]

    def warning(self, host: str, now: str) -> str:
        """The line an unconfirmed decision leaves (plain text; the caller colours it)."""
        live = f", live for {live_for(self.deployed_at, now)}" if self.deployed_at else ""
        if self.verdict == ROLLBACK:
            flags = f"; red flags: {self.trigger()}" if self.red_flags else ""
            return (f"NOT ROLLED BACK: {self.version} is still serving on {host}{live}{flags} — "
                    "the runbook says roll back now")
        return f"not closed out: {self.version} is serving on {host}{live}; GO is waiting for confirmation"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def live_for(since: str, now: str) -> str:
    """'42 min' / '1 h 05 min' from two ISO times; '?' when either cannot be read (pure)."""
    try:
        seconds = (dt.datetime.fromisoformat(now) - dt.datetime.fromisoformat(since)).total_seconds()
    except (TypeError, ValueError):
        return "?"
    minutes = max(0, int(seconds // 60))
    return f"{minutes} min" if minutes < 60 else f"{minutes // 60} h {minutes % 60:02d} min"


def red_flags(decide_evidence: dict[str, Any]) -> tuple[str, ...]:
    """The red inputs of a decide step's evidence, as 'id: flag, flag' (or its summary)."""
    out = []
    for i in decide_evidence.get("inputs") or []:
        if isinstance(i, dict) and i.get("state") == "red":
            flags = ", ".join(str(f) for f in i.get("flags") or []) or str(i.get("summary") or "")
            out.append(f"{i.get('id')}: {flags}"[:160])
    return tuple(out)


def of(version: str, facts: dict[str, Any], steps: Iterable[Any]) -> Pending | None:
    """The unconfirmed GO or ROLLBACK of this journal, if any: decided, not confirmed, and neither
    rolled back, closed out nor finished since (pure)."""
    st = cutover_state(facts)
    d = st.get("decision") or {}
    if d.get("verdict") not in (GO, ROLLBACK) or d.get("confirmed_by") or st.get("finished_at"):
        return None
    if facts.get(Fact.ROLLED_BACK) or facts.get(Fact.CLOSEOUT):
        return None
    decided = [s for s in steps if getattr(s, "name", "") == Steps.DECIDE]
    evidence = dict(getattr(decided[-1], "evidence", {}) or {}) if decided else {}
    return Pending(version=version, verdict=str(d["verdict"]), reason=str(d.get("reason") or ""),
                   decided_at=str(d.get("at") or ""), red_flags=red_flags(evidence),
                   deployed_at=str(facts.get(Fact.DEPLOYED_AT) or ""))
