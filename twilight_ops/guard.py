"""Runbook §2 rollback triggers, judged each guard round over plain values (pure).

    evaluate(state, evidence, config) -> (state', GuardRound)

The machine-checkable triggers of §2, in the runbook's order:

    price_5xx           "/price returns 5xx on >5% of agent traffic": the audited calls of the
                        window (provider_audit_log.status).  A 502 on a code outside the
                        known-liquid list is the designed answer to an unknown code (T+00:35
                        check 4) and is not counted; below `min_calls` audited calls the share
                        says nothing yet (unknown, never tripped).
    close_raw_null      "close_raw consistently null for known-liquid codes": this round's live
                        GET /price of each liquid code; tripped when one code answered a W4 body
                        with close_raw null or absent in `null_rounds` consecutive rounds.  A round
                        with close_raw present resets that code; a round without a W4 body
                        (transport error, non-200, legacy) neither counts nor resets.
    hermes_value_error  "Hermes profile reports `value` parse error from any prompt": the latest
                        `inv agent-smoke` answers in the journal and the Hermes log.
    w7_critical_diffs   listed every round as not applicable: v0.3.0 has no W7 TDX auditor
                        ("ignore in v0.3.0").

"Operator judgment" is the operator's.  States: ok · TRIPPED · unknown (the evidence could not
say; never tripped) · n/a.
"""
from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, Any, Literal, Sequence

from .diagnose import value_parse_error
from .monitor.metrics import Metrics
from .runbook import Steps

if TYPE_CHECKING:
    from .config import GuardSettings

TriggerState = Literal["ok", "tripped", "unknown", "n/a"]
TRIGGER_KEYS = ("price_5xx", "close_raw_null", "hermes_value_error", "w7_critical_diffs")
MAX_EVIDENCE = 8          # evidence lines kept per trigger


@dataclasses.dataclass(frozen=True)
class GuardConfig:
    max_5xx_pct: float = 5.0
    min_calls: int = 20
    null_rounds: int = 3

    @classmethod
    def from_settings(cls, s: GuardSettings) -> "GuardConfig":
        return cls(s.guard_5xx_pct, s.guard_min_calls, s.guard_null_rounds)


@dataclasses.dataclass(frozen=True)
class PriceProbe:
    """One live GET /price of a known-liquid code, as judged against the W4 contract."""

    ts_code: str
    status: int | None
    envelope: str                 # w4 | legacy | mixed | unknown
    close_raw_null: bool          # a W4 body whose close_raw is null or absent
    detail: str = ""

    @property
    def close_raw_present(self) -> bool:
        return self.status == 200 and self.envelope == "w4" and not self.close_raw_null

    @classmethod
    def from_verdict(cls, ts_code: str, verdict: Any) -> "PriceProbe":
        """From envelope.evaluate(..., "w4", ...)'s Verdict."""
        null = any(f.code == "close_raw_missing" for f in verdict.red_flags)
        if verdict.status is None:
            detail = "; ".join(f.detail for f in verdict.red_flags) or "no answer"
        elif null:
            detail = f"HTTP {verdict.status} {verdict.envelope}: " + next(f.detail for f in verdict.red_flags
                                                                          if f.code == "close_raw_missing")
        else:
            flags = ", ".join(f.code for f in verdict.red_flags)
            detail = f"HTTP {verdict.status} {verdict.envelope}" + (f" ({flags})" if flags else ": close_raw present")
        return cls(ts_code, verdict.status, verdict.envelope, null, detail)


@dataclasses.dataclass(frozen=True)
class HermesEvidence:
    answers: tuple[str, ...] = ()     # the latest agent-smoke answers in the journal
    answers_from: str = ""            # e.g. "agent-smoke at 2026-…"; "" when the journal has none
    log_path: str = ""
    log_text: str | None = None       # None: not read (log_note says why)
    log_note: str = ""


@dataclasses.dataclass(frozen=True)
class RoundEvidence:
    metrics: Metrics | None
    probes: tuple[PriceProbe, ...] = ()
    hermes: HermesEvidence = HermesEvidence()
    metrics_note: str = ""


@dataclasses.dataclass(frozen=True)
class Trigger:
    key: str
    title: str                        # the runbook's words
    state: TriggerState
    summary: str                      # one short line for the round line
    evidence: tuple[str, ...] = ()

    @property
    def tripped(self) -> bool:
        return self.state == "tripped"

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class GuardState:
    rounds: int = 0
    null_streaks: tuple[tuple[str, int], ...] = ()     # (ts_code, consecutive rounds with close_raw null)

    def streak(self, code: str) -> int:
        return dict(self.null_streaks).get(code, 0)


@dataclasses.dataclass(frozen=True)
class GuardRound:
    n: int
    at: str                           # the window's end (UTC), or "" without metrics
    triggers: tuple[Trigger, ...]

    @property
    def tripped(self) -> tuple[Trigger, ...]:
        return tuple(t for t in self.triggers if t.tripped)

    def reason(self) -> str:
        """The rollback's --reason: the first tripped trigger, one line, no quotes."""
        first = self.tripped[0] if self.tripped else None
        text = f"guard round {self.n}: {first.summary}" if first else f"guard round {self.n}: no trigger"
        return " ".join(text.replace("'", "").replace('"', "").split())[:150]

    def to_json(self) -> dict[str, Any]:
        return {"round": self.n, "at": self.at, "tripped": [t.key for t in self.tripped],
                "triggers": [t.to_json() for t in self.triggers]}


# ---------------------------------------------------------------- the triggers

def _pct(n: int, total: int) -> float:
    return 100.0 * n / total if total else 0.0


def check_5xx(m: Metrics | None, cfg: GuardConfig, note: str = "") -> Trigger:
    key, title = "price_5xx", f"/price returns 5xx on >{cfg.max_5xx_pct:g}% of traffic"
    if m is None:
        return Trigger(key, title, "unknown", "5xx: audit log not read", (note,) if note else ())
    window = f"in {m.window_hours:g} h"
    if m.total == 0:
        return Trigger(key, title, "unknown", f"5xx: no audited calls {window}",
                       ("no provider_audit_log rows in the window: no traffic, or the AuditLog is not writing",))
    if m.status is None:
        share = _pct(m.errors, m.total)
        if share <= cfg.max_5xx_pct:
            return Trigger(key, title, "ok", f"5xx ≤ {share:.1f}% ({m.errors} errors of {m.total} {window})",
                           ("no status column: errors bound the 5xx share",))
        return Trigger(key, title, "unknown", f"5xx: errors {share:.1f}% of {m.total}, no status column",
                       (f"{m.errors} errors of {m.total} calls {window}; without provider_audit_log.status 5xx "
                        "cannot be told from 4xx: check `docker compose logs backend --tail=200`",))
    server = {s.status: s.n for s in m.status if s.status is not None and 500 <= s.status <= 599}
    not_liquid = min(m.not_liquid_502 or 0, server.get(502, 0))
    counted = sum(server.values()) - not_liquid
    share = _pct(counted, m.total)
    ev = ["status " + ", ".join(f"{s.status if s.status is not None else 'null'} ×{s.n}" for s in m.status) + f" {window}"]
    if not_liquid:
        ev.append(f"{not_liquid} × 502 on codes outside the liquid list not counted (the unknown-code answer)")
    liquid_502 = server.get(502, 0) - not_liquid
    if liquid_502:
        ev.append(f"{liquid_502} × 502 on liquid codes: the Composer exhausted its chain; §4: if upstream is "
                  "failing, rollback won't help (check `docker compose logs backend --tail=200`)")
    if m.unit_violation_errors:
        ev.append(f"{m.unit_violation_errors} × CanonicalUnitViolation: §4 says fix forward, do not mask it with a rollback")
    own = f", {m.own.left_out} own left out" if m.own is not None and m.own.left_out else ""
    summary = f"5xx {share:.1f}% ({counted} of {m.total} calls {window}{own})"
    if m.own is not None:
        ev.append(m.own.said() + " (twilight-ops's own /price calls: the guard's probes, smoke, agent-smoke)")
    if m.total < cfg.min_calls:
        return Trigger(key, title, "unknown", f"{summary}: too few calls (< {cfg.min_calls})", tuple(ev))
    if share > cfg.max_5xx_pct:
        return Trigger(key, title, "tripped", f"/price 5xx {share:.1f}% > {cfg.max_5xx_pct:g}% "
                       f"({counted} of {m.total} calls {window})", tuple(ev))
    return Trigger(key, title, "ok", summary, tuple(ev))


def check_close_raw(probes: Sequence[PriceProbe], state: GuardState, cfg: GuardConfig) -> tuple[GuardState, Trigger]:
    key, title = "close_raw_null", "close_raw consistently null for known-liquid codes"
    streaks = dict(state.null_streaks)
    ev: list[str] = []
    for p in probes:
        if p.close_raw_null:
            streaks[p.ts_code] = streaks.get(p.ts_code, 0) + 1
        elif p.close_raw_present:
            streaks[p.ts_code] = 0
        run = streaks.get(p.ts_code, 0)
        ev.append(f"{p.ts_code}: {p.detail}" + (f" — null {run} round(s) in a row" if run else ""))
    new = dataclasses.replace(state, null_streaks=tuple(sorted(streaks.items())))
    if not probes:
        return new, Trigger(key, title, "unknown", "close_raw: no /price probe this round", tuple(ev))
    worst = max(streaks.values(), default=0)
    codes = ", ".join(c for c, n in sorted(streaks.items()) if n == worst)
    if worst >= cfg.null_rounds:
        return new, Trigger(key, title, "tripped", f"close_raw null for {codes} in {worst} consecutive rounds "
                            f"(>= {cfg.null_rounds})", tuple(ev))
    if worst:
        return new, Trigger(key, title, "ok", f"close_raw null {worst}/{cfg.null_rounds} rounds ({codes})", tuple(ev))
    if not any(p.close_raw_present for p in probes):
        return new, Trigger(key, title, "unknown", f"close_raw: no W4 answer from {len(probes)} probe(s)", tuple(ev))
    return new, Trigger(key, title, "ok", f"close_raw present ({len(probes)} codes)", tuple(ev))


def check_hermes(h: HermesEvidence) -> Trigger:
    key, title = "hermes_value_error", "Hermes profile reports `value` parse error from any prompt"
    hits: list[str] = []
    for i, answer in enumerate(h.answers, 1):
        said = value_parse_error(answer)
        if said:
            hits.append(f"{h.answers_from or Steps.AGENT_SMOKE} answer {i}: reports a value parse error ({said!r})")
    lines = (h.log_text or "").splitlines()
    for no, line in enumerate(lines, 1):
        if value_parse_error(line):
            hits.append(f"{h.log_path}:{no}: {line.strip()[:200]}")
    if hits:
        return Trigger(key, title, "tripped", f"Hermes value parse error ({len(hits)} hit(s))", tuple(hits[:MAX_EVIDENCE]))
    read = []
    if h.answers:
        read.append(f"{len(h.answers)} agent answers ({h.answers_from or Steps.AGENT_SMOKE})")
    if h.log_text is not None:
        read.append(f"{h.log_path} ({len(lines)} lines)")
    notes = tuple(n for n in ((h.log_note,) if h.log_note else ()))
    if not read:
        return Trigger(key, title, "unknown", "Hermes: no agent-smoke answers, no Hermes log",
                       ("run `inv agent-smoke` (its answers are kept in the journal)", *notes))
    return Trigger(key, title, "ok", "no Hermes value parse error", (f"searched {', '.join(read)}", *notes))


def check_w7() -> Trigger:
    return Trigger("w7_critical_diffs", "AuditLog shows >10 critical diffs in 10 minutes", "n/a",
                   "W7 diffs: n/a in v0.3.0",
                   ("only relevant if the W7 TDX auditor is live; runbook §2: ignore in v0.3.0",))


def evaluate(state: GuardState, ev: RoundEvidence, cfg: GuardConfig) -> tuple[GuardState, GuardRound]:
    """One round: every trigger's state, and the state carried to the next round."""
    state = dataclasses.replace(state, rounds=state.rounds + 1)
    state, close_raw = check_close_raw(ev.probes, state, cfg)
    triggers = (check_5xx(ev.metrics, cfg, ev.metrics_note), close_raw, check_hermes(ev.hermes), check_w7())
    at = ev.metrics.window_end_utc if ev.metrics is not None else ""
    return state, GuardRound(state.rounds, at, triggers)
