"""T+00:50, the decision point: go / rollback / fix-forward, a pure function over the journal.

    gather(journal, prefix) -> tuple[Input, ...]   the evidence the decision reads, one Input per source
    decide(inputs, version, prefix) -> Decision    GO | ROLLBACK | FIX-FORWARD | INCOMPLETE, with the reason

Every command it names is a runbook.next_step line that starts with `prefix` (Target.prefix: the
`-f FILE` and env of the run), so it aims at the same target; under a ROLLBACK or FIX-FORWARD a
missing input's `run` says it is not needed rather than suggesting a run.

The inputs (runbook T+00:50: "all four agent checks green + curl smoke green"):
  deploy   the latest deploy attempt: healthy with restart count 0 (deploy#N ok), or its failure
  smoke    the T+00:15 smoke (smoke-w4) recorded after that deploy
  hermes   the T+00:25 skill registration (hermes-verify) recorded after that deploy
  agent    the T+00:35 checks (agent-smoke) recorded after the skill was verified

Rules, in order:
  ROLLBACK     any red flag without a forward fix ("any red flag and no <5-min forward fix")
  FIX-FORWARD  only red flags of the CanonicalUnitViolation class: §4 says do not roll back
               to mask a real bug, file it and fix forward
  INCOMPLETE   evidence is missing, stale (recorded before the deploy it should judge) or
               could not be checked (a token or network problem): names what to run; never guesses.
               A deploy step that could not reach a part (registry, token server, dockerd, tvps) or
               was interrupted (Ctrl-C, a signal) is INCOMPLETE, never ROLLBACK: only evidence
               about the new release (unhealthy, a restart loop, red flags) rolls back
  GO           every input green
A red flag decides even when later evidence is missing: the runbook rolls back at T+00:15
without waiting for the agent checks.
"""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

from .journal import CUT_OFF
from . import runbook
from .runbook import Steps, next_step

GO, ROLLBACK, FIX_FORWARD, INCOMPLETE = "GO", "ROLLBACK", "FIX-FORWARD", "INCOMPLETE"
GREEN, RED, FIX, MISSING = "green", "red", "fix-forward", "missing"

# smoke flags that mean "the envelope was not checked": neither green nor a deploy red flag
UNCHECKED_FLAGS = frozenset({"unauthorized", "transport_error", "http_status"})

TITLES = {"deploy": "T+00:05 deploy health", "smoke": "T+00:15 server smoke", "hermes": "T+00:25 Hermes skill",
          "agent": "T+00:35 agent checks"}


@dataclasses.dataclass(frozen=True)
class Input:
    id: str                    # deploy | smoke | hermes | agent
    state: str                 # green | red | fix-forward | missing
    summary: str               # one line: what the journal says
    run: str = ""              # for missing: the command that produces it (or "not needed: the decision is …")
    at: str = ""               # when it was recorded (the step's end)
    flags: tuple[str, ...] = ()

    @property
    def title(self) -> str:
        return TITLES.get(self.id, self.id)

    def to_json(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title, "state": self.state, "summary": self.summary, "run": self.run,
                "at": self.at, "flags": list(self.flags)}


@dataclasses.dataclass(frozen=True)
class Decision:
    verdict: str               # GO | ROLLBACK | FIX-FORWARD | INCOMPLETE
    reason: str                # the runbook's reason
    next_step: str             # what to run or do next
    inputs: tuple[Input, ...]

    def to_json(self) -> dict[str, Any]:
        return {"verdict": self.verdict, "reason": self.reason, "next_step": self.next_step,
                "inputs": [i.to_json() for i in self.inputs]}

    @property
    def trigger(self) -> str:
        """One line for `inv rollback --reason`: the red inputs and their flags."""
        return trigger_of([i for i in self.inputs if i.state == RED]) or self.reason[:200]


def trigger_of(red: Sequence[Input]) -> str:
    return "; ".join(f"{i.id}: {', '.join(i.flags) or i.summary}" for i in red)[:200]


# ---------------------------------------------------------------- reading the journal

def _steps(journal: Any) -> list[Any]:
    return list(getattr(journal, "steps", []) or [])


def _last(journal: Any, pred) -> Any:
    for step in reversed(_steps(journal)):
        if pred(step):
            return step
    return None


def _after(step: Any, when: str) -> bool:
    """The step started at or after `when` (ISO 8601 UTC strings of one clock compare as text)."""
    return not when or (step.started_at or "") >= when


# how the hints of deploy's errors begin in a step's note (errors.TwilightError.line: "message — hint")
HINTS = (" — run: ", " — nothing to roll back; ", " — when it answers again: ")


def cause(note: str) -> str:
    """A failed step's note without the hint its error carried (`… — roll back — run: inv … rollback …`):
    the decision names its own next step, once."""
    for hint in HINTS:
        note = note.split(hint, 1)[0]
    return note.removesuffix(" — roll back").strip()


def deploy_input(journal: Any, prefix: str = "inv") -> Input:
    n = runbook.deploy_attempt(getattr(journal, "facts", {}) or {})
    noop = _last(journal, lambda s: s.name == Steps.DEPLOY_NOOP)
    version = getattr(journal, "version", "V")
    if n == 0 and noop is None:
        return Input("deploy", MISSING, "no deploy recorded", next_step(prefix, "deploy", "--version", version))
    done = _last(journal, lambda s: s.name == Steps.deploy(n)) if n else None
    if noop is not None and (done is None or noop.started_at > done.started_at) and noop.outcome == "ok":
        return Input("deploy", GREEN, noop.note or "already running healthy", at=noop.ended_at or "")
    if done is not None and done.outcome == "ok":
        digest = str(done.evidence.get("digest", ""))
        return Input("deploy", GREEN, f"healthy, restart count 0, {digest}".rstrip(", "), at=done.ended_at or "")
    parts = [s for s in _steps(journal) if s.name.startswith(Steps.deploy_parts(n))]
    failed = [s for s in parts if s.outcome == "failed"]
    if parts and parts[-1].outcome in CUT_OFF:     # a part did not answer, or Ctrl-C: no evidence, resumable
        last = parts[-1]
        return Input("deploy", MISSING, f"deploy attempt {n}: {last.name.split(':', 1)[1]} {last.outcome}: {cause(last.note)}"[:300],
                     next_step(prefix, "cutover", "--version", version, "--resume"), at=last.ended_at or "")
    if failed:
        last = failed[-1]
        return Input("deploy", RED, f"{last.name.split(':', 1)[1]} failed: {cause(last.note)}"[:300],
                     at=last.ended_at or "", flags=("deploy_failed",))
    return Input("deploy", MISSING, f"deploy attempt {n} did not finish (cut off?)",
                 next_step(prefix, "cutover", "--version", version, "--resume"))


def smoke_input(journal: Any, since: str, prefix: str = "inv") -> Input:
    step = _last(journal, lambda s: s.name == Steps.SMOKE_W4)
    run = next_step(prefix, "smoke")
    if step is None:
        return Input("smoke", MISSING, "no smoke recorded", run)
    if not _after(step, since):
        return Input("smoke", MISSING, f"the latest smoke ({step.started_at}) is older than the deploy it should judge",
                     run)
    ev = step.evidence or {}
    codes = tuple(str(f.get("code")) for f in ev.get("red_flags", []) if isinstance(f, dict))
    if step.outcome == "ok" and ev.get("verdict") == "green":
        return Input("smoke", GREEN, f"HTTP {ev.get('status')}, {ev.get('envelope')} envelope, no red flag",
                     at=step.ended_at or "")
    if step.outcome not in ("ok", "red"):
        return Input("smoke", MISSING, f"the smoke step is {step.outcome}", run)
    messages = "; ".join(str(f.get("message", ""))[:160] for f in ev.get("red_flags", []) if isinstance(f, dict))
    advice = ev.get("next_step") or step.note
    if codes and set(codes) <= UNCHECKED_FLAGS:
        return Input("smoke", MISSING, f"the envelope was not checked: {messages}"[:300],
                     next_step(prefix, "smoke", first="fix the cause"), at=step.ended_at or "", flags=codes)
    state = FIX if advice == "fix-forward" else RED
    return Input("smoke", state, messages[:300] or "red", at=step.ended_at or "", flags=codes)


def hermes_input(journal: Any, since: str, prefix: str = "inv") -> Input:
    step = _last(journal, lambda s: s.name == Steps.HERMES_VERIFY)
    if step is None or not _after(step, since):
        return Input("hermes", MISSING, "the skill was not reinstalled and verified after the deploy",
                     next_step(prefix, "hermes-reinstall"))
    if step.outcome == "ok":
        return Input("hermes", GREEN, step.note or "skill registered, files match the repo", at=step.ended_at or "")
    return Input("hermes", MISSING, f"skill verification {step.outcome}: {step.note}"[:300],
                 next_step(prefix, "hermes-reinstall", first="fix it"), at=step.ended_at or "")


def agent_input(journal: Any, since: str, prefix: str = "inv") -> Input:
    step = _last(journal, lambda s: s.name == Steps.AGENT_SMOKE)
    if step is None or not _after(step, since):
        return Input("agent", MISSING, "no agent checks recorded after the skill was verified",
                     next_step(prefix, "agent-smoke"))
    checks = [c for c in (step.evidence or {}).get("checks", []) if isinstance(c, dict)]
    failing = [c for c in checks if c.get("status") in ("FAIL", "UNREACHABLE")]   # UNREACHABLE: no answer to judge
    if step.outcome == "ok" and not failing:
        passed = sum(c.get("status") == "PASS" for c in checks)
        return Input("agent", GREEN, f"{passed} checks passed, {len(checks) - passed} skipped", at=step.ended_at or "")
    flags = tuple(dict.fromkeys(str(f.get("code")) for c in failing for f in c.get("red_flags", []) if isinstance(f, dict)))
    names = ", ".join(f"{c.get('id')} ({c.get('level')})" for c in failing)
    if not flags:      # failures without a red flag: no answer, a source that did not reply
        reasons = "; ".join(str((c.get("evidence") or {}).get("reason", ""))[:120] for c in failing)
        return Input("agent", MISSING, f"could not be judged: {names}: {reasons}"[:300],
                     next_step(prefix, "agent-smoke", first="fix the cause (see the evidence)"), at=step.ended_at or "")
    return Input("agent", RED, f"red: {names}"[:300], at=step.ended_at or "", flags=flags)


def gather(journal: Any, prefix: str = "inv") -> tuple[Input, ...]:
    """The four inputs; `prefix` (Target.prefix) starts every command they name."""
    deploy = deploy_input(journal, prefix)
    since = deploy.at if deploy.state == GREEN else ""
    smoke = smoke_input(journal, since, prefix)
    hermes = hermes_input(journal, since, prefix)
    agent = agent_input(journal, hermes.at if hermes.state == GREEN else since, prefix)
    return deploy, smoke, hermes, agent


# ---------------------------------------------------------------- the decision

def not_needed(inputs: tuple[Input, ...], verdict: str) -> tuple[Input, ...]:
    """Missing inputs under a verdict they cannot change: their `run` says so instead of suggesting a run."""
    return tuple(dataclasses.replace(i, run=next_step("", "", not_needed=verdict)) if i.state == MISSING else i
                 for i in inputs)


def rollback_step(version: str, trigger: str, prefix: str = "inv") -> str:
    """The one command a ROLLBACK decision names (runbook §2)."""
    return next_step(prefix, "rollback", "--version", version, reason=trigger, note="runbook §2, budget 30 min")


def confirm_step(version: str, prefix: str, what: str) -> str:
    """Inside `inv cutover`: the one command that confirms the decision and acts on it (who confirmed is recorded)."""
    return next_step(prefix, "cutover", "--version", version, "--resume", "--yes", note=what)


def decide(inputs: Sequence[Input], version: str = "V", prefix: str = "inv", cutover: bool = False) -> Decision:
    """`cutover`: the decision of an `inv cutover` in progress, whose resume line (--yes) confirms it."""
    inputs = tuple(inputs)
    red = [i for i in inputs if i.state == RED]
    fix = [i for i in inputs if i.state == FIX]
    missing = [i for i in inputs if i.state == MISSING]
    if red:
        what = "; ".join(f"{i.title}: {i.summary}" for i in red)
        return Decision(ROLLBACK, f"red flag and no <5-min forward fix (runbook T+00:50): {what}",
                        confirm_step(version, prefix, "rolls back: runbook §2, budget 30 min") if cutover
                        else rollback_step(version, trigger_of(red), prefix), not_needed(inputs, ROLLBACK))
    if fix:
        what = "; ".join(f"{i.title}: {i.summary}" for i in fix)
        return Decision(FIX_FORWARD, "HTTP 500 with CanonicalUnitViolation: the cutover is exposing a real bug — "
                        f"do not roll back to mask it (runbook §4): {what}",
                        "file an issue with the response and `docker compose logs backend --tail=200`, fix forward; "
                        "W4 stays deployed", not_needed(inputs, FIX_FORWARD))
    if missing:
        what = "; ".join(f"{i.title}: {i.summary}" for i in missing)
        runs = list(dict.fromkeys(i.run for i in missing if i.run))
        return Decision(INCOMPLETE, f"evidence is missing: {what}", "run: " + " ; ".join(runs), inputs)
    return Decision(GO, "all four agent checks green + curl smoke green (runbook T+00:50)",
                    confirm_step(version, prefix, "closes out: T+00:55") if cutover
                    else next_step(prefix, "closeout", "--version", version, note="T+00:55"), inputs)
