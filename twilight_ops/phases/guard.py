"""The §2 guard against tvps: each round's evidence, and --auto-rollback (`inv monitor --guard`).

    watch_rounds(t, hours, …)     rounds on the watch schedule until a trigger, the deadline or Ctrl-C
    GuardFetch(t, hours)          watch's fetch: the §3 probe (reconnecting), a live GET /price of
                                  each known-liquid code, the Hermes evidence -> guard.RoundEvidence
    auto_rollback(t, round, say)  the rollback `inv rollback --yes --reason '<trigger>'` runs,
                                  once per deploy attempt: journal step "guard-rollback#<attempt>";
                                  never when the journal already says rolled_back

The decisions are twilight_ops/guard.py (pure).
"""
from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any, Callable

from .. import api, envelope, runbook
from ..clock import now_utc
from ..guard import GuardRound, HermesEvidence, PriceProbe, RoundEvidence
from ..errors import BadInput
from ..runbook import RolledBack, Steps
from ..target import Target
from .monitor import ReconnectingFetch

LOG_TAIL_BYTES = 2 * 2**20        # the Hermes log is read from its last 2 MiB


def probe_prices(t: Target) -> tuple[PriceProbe, ...]:
    """GET /price of each known-liquid code from this machine, judged against the W4 contract."""
    s = t.settings
    out = []
    for code in s.liquid_codes:
        resp = api.get_price(s, t.token, code, attempts=2)
        verdict = envelope.evaluate(resp.status, resp.body, "w4", now_utc(s.clock_offset_seconds),
                                    s.thresholds.adj_tolerance, resp.transport_error)
        out.append(PriceProbe.from_verdict(code, verdict))
    return tuple(out)


def hermes_log(settings: Any) -> Path:
    from .hermes import startup_log

    return settings.guard_hermes_log or startup_log(settings)


def read_tail(path: Path, limit: int = LOG_TAIL_BYTES) -> tuple[str | None, str]:
    """(text, note): the file's last `limit` bytes, or (None, why not)."""
    try:
        with open(path, "rb") as f:
            f.seek(0, 2)
            size = f.tell()
            f.seek(max(0, size - limit))
            data = f.read()
    except FileNotFoundError:
        return None, f"Hermes log {path} does not exist"
    except OSError as e:
        return None, f"Hermes log {path} not read: {e.strerror}"
    text = data.decode("utf-8", errors="replace")
    if size > limit:
        text = text.split("\n", 1)[-1]          # drop the partial first line
    return text, ""


def hermes_evidence(t: Target) -> HermesEvidence:
    from .agent_smoke import latest_transcripts

    journal = t.journal()
    step = journal.last(Steps.AGENT_SMOKE)
    answers = tuple(latest_transcripts(journal))
    path = hermes_log(t.settings)
    text, note = read_tail(path)
    return HermesEvidence(answers, f"{Steps.AGENT_SMOKE} at {step.started_at}" if step is not None else "",
                          str(path), text, note)


class GuardFetch:
    """One guard round's evidence.  The probe reconnects after a dropped SSH (an Unreachable
    goes to the watch's retry); the /price calls and the Hermes reads never raise."""

    def __init__(self, t: Target, hours: float):
        self.t = t
        self.metrics = ReconnectingFetch(t, hours)

    @property
    def reconnects(self) -> int:
        return self.metrics.reconnects

    def __call__(self) -> RoundEvidence:
        m = self.metrics()
        return RoundEvidence(m, probe_prices(self.t), hermes_evidence(self.t))


class _Tripped(Exception):
    """A round tripped a trigger: the watch stops."""


@dataclasses.dataclass(frozen=True)
class Watched:
    tripped: GuardRound | None       # the round that tripped, or None (deadline, Ctrl-C)
    rounds: int
    stopped: str                     # "trigger" | "deadline" | "interrupted" | "one round"
    elapsed_s: float
    reconnects: int


def watch_rounds(t: Target, hours: float, every_s: float | None, until_s: float | None,
                 show: Callable[[GuardRound], None], on_retry: Callable[[int, Any, float], None] | None = None,
                 policy: Any = None) -> Watched:
    """Guard rounds (one without `every_s`) on the watch schedule until a trigger, the deadline or
    Ctrl-C; `show` gets every round as judged."""
    import time

    from ..guard import GuardConfig, GuardState, evaluate
    from ..monitor.watch import RetryPolicy, watch

    if t.version == "unknown":
        raise BadInput("cannot tell which cutover to guard (tvps runs no release tag and no lock names one)",
                       "give --version V, the cutover's release tag")
    cfg = GuardConfig.from_settings(t.settings.guard)
    fetch = GuardFetch(t, hours)
    state = GuardState()
    tripped: list[GuardRound] = []
    t0 = time.monotonic()

    def on_round(_n: int, _prev: Any, ev: RoundEvidence) -> None:
        nonlocal state
        state, rnd = evaluate(state, ev, cfg)
        show(rnd)
        if rnd.tripped:
            tripped.append(rnd)
            raise _Tripped()

    try:
        if every_s is None:
            on_round(1, None, fetch())
            return Watched(None, 1, "one round", time.monotonic() - t0, 0)
        summary = watch(fetch, every_s, until_s, time.monotonic, time.sleep, on_round,
                        retry=policy or RetryPolicy(), on_retry=on_retry)
        return Watched(None, summary.rounds, summary.stopped, summary.elapsed_s, fetch.reconnects)
    except _Tripped:
        return Watched(tripped[0], state.rounds, "trigger", time.monotonic() - t0, fetch.reconnects)


@dataclasses.dataclass(frozen=True)
class GuardRollback:
    outcome: str          # "rolled-back" | "already" (the journal said so; nothing done)
    detail: str
    report: Any = None    # rollback.RollbackReport when this run rolled back


def already(t: Target) -> RolledBack | None:
    """The journal's rolled_back fact when it is about the current deploy attempt (a forced
    redeploy after a rollback is a new attempt the guard watches afresh)."""
    facts = t.journal(fresh=True).facts      # another terminal may have rolled back meanwhile
    fact = runbook.rolled_back(facts)
    if fact and int(fact.get("attempt", 0) or 0) == runbook.deploy_attempt(facts):
        return fact
    return None


def step_name(journal) -> str:
    """One guard rollback per deploy attempt."""
    return Steps.guard_rollback(runbook.deploy_attempt(journal.facts))


def auto_rollback(t: Target, rnd: GuardRound, say: Callable[[str], None]) -> GuardRollback:
    """Roll back once for a tripped round, through rollback.drive (the `inv rollback` path)."""
    from . import rollback

    done = already(t)
    if done:
        return GuardRollback("already", said(done))
    journal = t.journal()
    reason = rnd.reason()
    holder: dict[str, Any] = {}

    def action(step) -> None:
        step.evidence.update({"trigger": reason, "round": rnd.n, "at": rnd.at,
                              "evidence": {tr.key: list(tr.evidence) for tr in rnd.tripped}})
        holder["report"] = rollback.drive(t, reason=reason, say=say)    # its steps land in the same journal
        step.evidence["to"] = holder["report"].pin

    def verify(step) -> bool:
        """An earlier guard was cut off mid-rollback: done if the journal says rolled back and
        tvps runs that digest."""
        fact = runbook.rolled_back(journal.facts) or {}
        svc = t.service(refresh=True)
        return bool(fact) and svc is not None and str(fact.get("to", "")).split("@")[-1] in svc.repo_digest

    step, how = t.journals.once(journal, step_name(journal), action, verify=verify)
    if how == "ran":
        return GuardRollback("rolled-back", f"rolled back to {holder['report'].pin}", holder["report"])
    return GuardRollback("already", step.note or f"step {step.name} already {step.outcome} at {step.ended_at}: "
                                               "the guard does not roll back again")


def said(fact: RolledBack) -> str:
    return (f"the journal says it was rolled back at {fact.get('at', '?')} to {fact.get('to', '?')} "
            f"(trigger: {fact.get('trigger', '?')}); the guard does not roll back again")
