"""The smoke phase (runbook §1 T+00:15, and §2.4 after a rollback).

Live: the operator token from tvps (a Secret, held by the target), GET /price from
this machine, judge the envelope; on a 5xx fetch the backend's last 200 log lines
into the journal.  Offline: judge a saved body (`--from-file`).
"""
from __future__ import annotations

import dataclasses
from importlib import import_module
from pathlib import Path

from ..clock import now_utc
from ..config import Settings
from ..envelope import Expect, Verdict, evaluate
from ..errors import BadInput
from ..results import CheckResult, Status
from ..runbook import Steps
from ..secret import redact, scrub
from ..target import Target

LOG_TAIL_SHOWN = 20
MAX_BODY_BYTES = 4 * 1024 * 1024   # --from-file: a /price body is a few kB


@dataclasses.dataclass(frozen=True)
class SmokeResult:
    verdict: Verdict
    logs: str = ""            # backend log tail, fetched on a 5xx
    journal_version: str = ""

    def check(self) -> CheckResult:
        """The verdict as the one result type: green PASS; only a transport error UNREACHABLE; else FAIL."""
        v = self.verdict
        if v.green:
            status = Status.PASS
        elif {f.code for f in v.red_flags} == {"transport_error"}:
            status = Status.UNREACHABLE
        else:
            status = Status.FAIL
        return CheckResult(Steps.smoke(v.expect), status, v.verdict, {"envelope": v.envelope, "http_status": v.status},
                           v.next_step)


def from_file(settings: Settings, path: str, status: int, expect: Expect) -> SmokeResult:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"--from-file {path!r} is not a readable file", "give the path of a saved /price response body")
    if not 100 <= status <= 599:
        raise BadInput(f"--status {status} is not an HTTP status", "give a number from 100 to 599")
    size = p.stat().st_size
    if size > MAX_BODY_BYTES:
        raise BadInput(f"--from-file {path!r} is {size} bytes, more than a /price body ({MAX_BODY_BYTES} bytes at most)",
                       "give the saved response body only")
    with p.open("rb") as fh:
        body = fh.read(MAX_BODY_BYTES + 1)   # a file that grew since stat() is still capped
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"--from-file {path!r} is larger than {MAX_BODY_BYTES} bytes", "give the saved response body only")
    return SmokeResult(evaluate(status, body, expect, now_utc(settings.clock_offset_seconds),
                                settings.thresholds.adj_tolerance))


def live(t: Target, code: str, expect: Expect) -> SmokeResult:
    t.ssh.open_soon()              # the handshake and the loop's start overlap the imports and the schema below
    from ..api import get_price
    from ..builders.compose import compose_logs
    from ..envelope import prepare

    prepare(expect)
    import_module("twilight_ops.journal")   # ≈ 18 ms, also while the link opens
    settings = t.settings
    token = t.token
    resp = get_price(settings, token, code)
    verdict = evaluate(resp.status, resp.body, expect, now_utc(settings.clock_offset_seconds),
                       settings.thresholds.adj_tolerance, resp.transport_error)
    logs = ""
    if resp.status is not None and resp.status >= 500:
        r = t.ssh.run(compose_logs(t.layout, 200), check=False, timeout=60)
        logs = redact(scrub(r.stdout + r.stderr, token))
    journal = t.journal()
    with t.journals.step(journal, Steps.smoke(expect)) as step:
        step.evidence.update(verdict.to_json())
        step.evidence["code"] = code
        step.evidence["next_step"] = verdict.next_step
        step.evidence["elapsed_ms"] = round(resp.elapsed_ms, 1)
        if logs:
            step.evidence["backend_logs_tail200"] = logs
        step.outcome = "ok" if verdict.green else "red"
        step.note = verdict.next_step
    flags = ",".join(f.code for f in verdict.red_flags)
    t.audit(Steps.smoke(expect), verdict.verdict, f"{code} HTTP {resp.status} {verdict.envelope} {flags}".strip())
    return SmokeResult(verdict, logs, t.version)
