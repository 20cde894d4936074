"""§4 evidence against tvps: audit aggregates, live /price calls, the backend log tail.

    gather_evidence(t, hours) -> Gathered     then diagnose.diagnose(gathered.evidence) (pure)
    check(gathered, findings) -> CheckResult  FAIL a symptom found (or checks incomplete) ·
                                              UNREACHABLE the API did not answer · PASS clear
"""
from __future__ import annotations

import dataclasses
import json
import time
from typing import Any, Callable, Sequence

from .. import api
from ..builders.compose import compose_logs
from ..config import Settings
from ..diagnose import Evidence, Finding, Observation
from ..errors import BadInput, CheckFailed, TwilightError, Unreachable
from ..results import CheckResult, Status
from ..runbook import Steps
from ..secret import Secret, redact, scrub
from ..target import Target
from ..monitor.metrics import Metrics
from .monitor import fetch_metrics

UNKNOWN_CODE = "000000.SZ"    # well-formed, listed nowhere: what does the API answer for it?
FRESHNESS_GAP_S = 1.5         # freshness_seconds has 1 s resolution: two samples this far apart
LOG_TAIL = 200                # runbook §4: `docker compose logs backend --tail=200`


def _last(text: str) -> str:
    lines = text.strip().splitlines()
    return lines[-1][:200] if lines else "no output"


@dataclasses.dataclass(frozen=True)
class Call:
    """One live /price call as made for diagnose (never the token)."""

    ts_code: str
    purpose: str
    status: int | None
    elapsed_ms: float
    transport_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@dataclasses.dataclass(frozen=True)
class Gathered:
    evidence: Evidence
    calls: tuple[Call, ...]
    log_lines: int
    notes: tuple[str, ...]
    window_hours: float
    logs_read: bool = True

    @property
    def api_unreachable(self) -> bool:
        return bool(self.calls) and all(c.status is None for c in self.calls)

    @property
    def incomplete(self) -> bool:
        """The audit log or the backend logs could not be read: 'clear' would overclaim."""
        return self.evidence.metrics is None or not self.logs_read


def to_diagnose_response(code: str, resp: api.ApiResponse) -> Observation | None:
    """api.ApiResponse (text) -> diagnose.Observation (parsed body); None on a transport error."""
    if resp.status is None:
        return None
    try:
        body = json.loads(resp.body)
    except ValueError:
        body = None
    return Observation(code, resp.status, body if isinstance(body, dict) else None)


def live_calls(settings: Settings, token: Secret, *, sleep: Callable[[float], None] = time.sleep,
               get: Callable[..., api.ApiResponse] = api.get_price) -> list[tuple[Call, Observation | None]]:
    """A liquid code twice (FRESHNESS_GAP_S apart, so a cache hit shows freshness >= 1) and an unknown code."""
    liquid = settings.liquid_codes[0]
    plan = [(liquid, "liquid"), (liquid, "liquid, again for freshness"), (UNKNOWN_CODE, "unknown code")]
    out = []
    for i, (code, purpose) in enumerate(plan):
        if i == 1:
            sleep(FRESHNESS_GAP_S)   # a sampling interval, not a wait for a condition
        resp = get(settings, token, code, attempts=2)
        call = Call(code, purpose, resp.status, round(resp.elapsed_ms, 1), resp.transport_error)
        out.append((call, to_diagnose_response(code, resp)))
    return out


def gather_evidence(t: Target, hours: float, *, sleep: Callable[[float], None] = time.sleep) -> Gathered:
    """Audit aggregates first (so diagnose's own calls do not colour them), then live
    /price calls from this machine, then the backend's last 200 log lines."""
    notes: list[str] = []
    metrics: Metrics | None
    try:
        metrics = fetch_metrics(t, hours)
    except (BadInput, CheckFailed) as e:
        metrics = None
        notes.append(f"audit log not read: {e.line()}")
    except Unreachable as e:
        if "container is not running" not in e.message:
            raise
        metrics = None
        notes.append(f"audit log not read: {e.line()}")
    settings = t.settings
    token = t.token
    made = live_calls(settings, token, sleep=sleep)
    for call, _ in made:
        if call.transport_error:
            notes.append(f"GET /price?code={call.ts_code} failed: {call.transport_error}")
    logs = t.ssh.run(compose_logs(t.layout, LOG_TAIL), check=False, timeout=60)
    log_text = redact(scrub(logs.stdout + logs.stderr, token)) if logs.ok else ""
    if not logs.ok:
        notes.append(f"backend logs not read: {_last(logs.stderr)}")
    transcripts: list[str] = []
    try:   # the Hermes hook: the latest `inv agent-smoke` answers, when the journal has them
        from .agent_smoke import latest_transcripts

        transcripts = latest_transcripts(t.journal())
    except TwilightError as e:
        notes.append(f"{Steps.AGENT_SMOKE} transcripts not read: {e.line()}")
    evidence = Evidence(
        agent_transcripts=tuple(transcripts),
        metrics=metrics,
        responses=tuple(r for _, r in made if r is not None),
        backend_log=log_text,
        expected_chain=settings.expected_chain,
        liquid_codes=settings.liquid_codes,
    )
    return Gathered(evidence, tuple(c for c, _ in made), len(log_text.splitlines()), tuple(notes), hours,
                    logs_read=logs.ok)


def check(g: Gathered, findings: Sequence[Finding]) -> CheckResult:
    if findings:
        return CheckResult("diagnose", Status.FAIL, f"{len(findings)} known failure mode(s) found",
                           {"findings": [f.code for f in findings]}, findings[0].action)
    if g.api_unreachable:
        return CheckResult("diagnose", Status.UNREACHABLE, "the API could not be reached; checks incomplete",
                           {}, "check the API and the network, then re-run `inv diagnose`")
    if g.incomplete:
        return CheckResult("diagnose", Status.FAIL, "the audit log or backend logs were not read",
                           {"notes": list(g.notes)}, "see the notes, fix what stopped the read, re-run `inv diagnose`")
    return CheckResult("diagnose", Status.PASS, "no known failure mode found")
